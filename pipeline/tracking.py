"""MLflow set-up shared by train, evaluate and baseline.

The store defaults to ``sqlite:///<repo root>/mlflow.db`` with artifacts in ``<repo root>/mlruns``.
The root comes from ``DVC_ROOT`` when DVC runs the stage, so ``dvc exp run --temp`` and
``--queue`` (which run in a temporary copy) log to the same store as ``dvc repro``.
``MLFLOW_TRACKING_URI`` overrides it (a team server, for instance).
"""

from __future__ import annotations

import os
import subprocess
import warnings
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
    if dvc_experiment():
        tags["dvc_exp_name"] = dvc_experiment()
    return tags


def dvc_experiment() -> str | None:
    """The experiment's name under ``dvc exp run`` (DVC sets it, a random one when not given)."""
    return os.environ.get("DVC_EXP_NAME") or None


def dvc_md5(path: Path) -> str:
    """The md5 DVC records for ``path`` in dvc.lock (a folder's ``.dir`` hash without the suffix),
    computed with DVC's own hashing (dvc-data), so it matches ``dvc.lock`` even before DVC writes it."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem
    from dvc_objects.fs.memory import MemoryFileSystem

    _, _, obj = build(HashFileDB(MemoryFileSystem(), "/odb"), str(path), LocalFileSystem(), "md5", dry_run=True)
    return obj.hash_info.value.removesuffix(".dir")


def log_shard_datasets(shards_dir: Path, manifest: dict, contexts: dict[str, str], digest: str | None = None) -> None:
    """Log the shard splits as the run's input datasets (``{"train": "training", ...}``), each with
    the DVC hash of the shards folder as its digest: the same data has the same digest in every
    run, and it can be looked up in dvc.lock. (MLflow's own digest reads only the first rows.)
    ``digest``: that hash when the caller has it already (hashing reads every shard)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    digest = digest or dvc_md5(shards_dir)
    for split, context in contexts.items():
        with warnings.catch_warnings():
            # "file://" is registered twice (as "" and "file"), both as LocalArtifactDatasetSource
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            source = resolve_dataset_source((shards_dir / split).resolve().as_uri())
        dataset = MetaDataset(source, name=f"shards/{split}", digest=digest)
        rows = str(manifest["splits"][split]["rows"])
        mlflow.log_input(dataset, context=context, tags={"rows": rows, "dvc_path": str(shards_dir)})


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
