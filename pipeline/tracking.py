"""MLflow set-up shared by train and evaluate.

The store defaults to ``sqlite:///<repo root>/mlflow.db`` with artifacts in ``<repo root>/mlruns``.
The root comes from ``DVC_ROOT`` when DVC runs the stage, so ``dvc exp run --temp`` and
``--queue`` (which run in a temporary copy) log to the same store as ``dvc repro``.
``MLFLOW_TRACKING_URI`` overrides it (a team server, for instance).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow

from pipeline.common import repo_root

MODEL_HASH_TAG = "model_sha256"


def tracking_uri(root: Path | None = None) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(root or repo_root()) / 'mlflow.db'}"


def use_experiment(name: str) -> str:
    """Point MLflow at our store and experiment (created with an absolute artifact root)."""
    root = repo_root()
    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        # An explicit absolute artifact root: the default is relative to the working
        # directory, which for `dvc exp run --temp` is a temporary copy that disappears.
        artifacts = (root / "mlruns").as_uri() if uri.startswith("sqlite:") else None
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def run_tags() -> dict[str, str]:
    """Tags linking a run to its code and its DVC experiment."""
    tags = {}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip() or None


def find_run_by_model_hash(experiment_id: str, model_hash: str) -> str | None:
    """The newest run whose trained model file has this sha256, if any."""
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.{MODEL_HASH_TAG} = '{model_hash}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None
