"""Every MLflow call of the pipeline: the store, the training run, the evaluation and the model.

The store defaults to ``sqlite:///<repo root>/mlflow.db`` with artifacts in ``<repo root>/mlruns``.
The root comes from ``DVC_ROOT`` when DVC runs the stage, so ``dvc exp run --temp`` and
``--queue`` (which run in a temporary copy) log to the same store as ``dvc repro``.
``MLFLOW_TRACKING_URI`` overrides it (a team server, for instance). Train opens one run per
training (:func:`training_run`); evaluate adds the test metrics, the report's figures and the
raw-text model to the run that trained the model file it evaluated, found by the file's sha256
(:func:`log_evaluation`); baseline logs its own run (:func:`log_baseline`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow

from pipeline import paths
from pipeline.files import sha256_file
from pipeline.params import Params

MODEL_HASH_TAG = "model_sha256"
DATASET_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}


def repo_root() -> Path:
    """The project root: ``DVC_ROOT`` when DVC runs us (also in ``dvc exp run --temp``),
    else the nearest folder upwards holding ``dvc.yaml``, else the working directory."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "dvc.yaml").exists():
            return folder
    return cwd


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
    if name := dvc_experiment():
        tags["dvc_exp_name"] = name
    return tags


def dvc_experiment() -> str | None:
    """The experiment's name under ``dvc exp run`` (DVC sets it, a random one when not given)."""
    return os.environ.get("DVC_EXP_NAME") or None


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip() or None


def dvc_md5(path: Path) -> str:
    """The md5 DVC records for ``path`` in dvc.lock (a folder's ``.dir`` hash without the suffix),
    computed with DVC's own hashing (dvc-data), so it matches ``dvc.lock`` even before DVC writes it."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem
    from dvc_objects.fs.memory import MemoryFileSystem

    _, _, obj = build(HashFileDB(MemoryFileSystem(), "/odb"), str(path), LocalFileSystem(), "md5", dry_run=True)
    return obj.hash_info.value.removesuffix(".dir")


def log_shard_datasets(shards_dir: Path, manifest: dict, splits: tuple[str, ...], digest: str | None = None) -> None:
    """Log shard splits as the run's input datasets, each with the DVC hash of the shards folder
    as its digest: the same data has the same digest in every run, and it can be looked up in
    dvc.lock. (MLflow's own digest reads only the first rows.) ``digest``: that hash when the
    caller has it already (hashing reads every shard)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    digest = digest or dvc_md5(shards_dir)
    for split in splits:
        with warnings.catch_warnings():
            # "file://" is registered twice (as "" and "file"), both as LocalArtifactDatasetSource
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            source = resolve_dataset_source((shards_dir / split).resolve().as_uri())
        dataset = MetaDataset(source, name=f"shards/{split}", digest=digest)
        rows = str(manifest["splits"][split]["rows"])
        mlflow.log_input(dataset, context=DATASET_CONTEXTS[split], tags={"rows": rows, "dvc_path": str(shards_dir)})


class TrainingRun:
    """The MLflow run of one training, as the train stage uses it; with no ``run_id`` (processes
    other than rank 0 under torchrun) every call does nothing."""

    def __init__(self, run_id: str | None):
        self.run_id = run_id

    def log_validation(self, row: dict) -> None:
        if self.run_id:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "step"}, step=row["step"])

    def log_result(self, model_file: Path, metrics: dict, device, artifacts: list[Path]) -> None:
        """The trained model's hash (how evaluate finds this run), the summary and speed metrics,
        the device and the files that describe the run."""
        if not self.run_id:
            return
        mlflow.set_tag(MODEL_HASH_TAG, sha256_file(model_file))
        mlflow.log_metrics(metrics)
        mlflow.set_tag("device", str(device))
        for path in artifacts:
            mlflow.log_artifact(str(path))


@contextlib.contextmanager
def training_run(params: Params, manifest: dict, extra_params: dict, enabled: bool = True) -> Iterator[TrainingRun]:
    """An MLflow run (named after the DVC experiment, if any) with every param, ``extra_params``,
    the train and validation shards as datasets, and system metrics."""
    if not enabled:
        yield TrainingRun(None)
        return
    use_experiment(params.mlflow.experiment)
    tags = {**run_tags(), "model_type": "lstm"}
    with mlflow.start_run(run_name=dvc_experiment(), tags=tags, log_system_metrics=True) as run:
        mlflow.log_params(params.flat())
        mlflow.log_params(extra_params)
        log_shard_datasets(paths.SHARDS_DIR, manifest, ("train", "val"))
        yield TrainingRun(run.info.run_id)


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


def log_evaluation(params: Params, result: dict, figures: dict, example_texts: list[str], manifest: dict) -> None:
    """On the MLflow run that produced models/model.pt: the test metrics (``test_*``), the
    report's figures, the test set as an input dataset, and the raw-text pyfunc model
    (registered when ``mlflow.registered_model`` is set)."""
    experiment_id = use_experiment(params.mlflow.experiment)
    model_hash = sha256_file(paths.MODEL_FILE)
    run_id = find_run_by_model_hash(experiment_id, model_hash)
    if run_id is None:
        print("evaluate: no MLflow run trained this model file (store reset?); logging to a new run")
    with mlflow.start_run(run_id=run_id, tags=None if run_id else {**run_tags(), MODEL_HASH_TAG: model_hash}):
        mlflow.log_metrics({f"test_{k}": v for k, v in result.items() if v is not None})
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}")
        # the training run logged the shards' DVC hash already: no second pass over them
        trained_on = mlflow.get_run(run_id).inputs.dataset_inputs if run_id else []
        digest = next((i.dataset.digest for i in trained_on if i.dataset.name.startswith("shards/")), None)
        log_shard_datasets(paths.SHARDS_DIR, manifest, ("test",), digest)
        log_text_model(params.mlflow.registered_model, example_texts)


def log_text_model(registered_model: str | None, example_texts: list[str]) -> None:
    """models/model.pt as a pyfunc that takes raw text (pipeline/mlflow_model.py, "models from
    code", with the pipeline package as its code), registered as ``registered_model``."""
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    package = Path(__file__).parent
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema([ColSpec("double", "probability"), ColSpec("long", "label"), ColSpec("string", "sentiment")]),
    )
    mlflow.pyfunc.log_model(
        name="model",
        python_model=str(package / "mlflow_model.py"),
        artifacts={"model": str(paths.MODEL_FILE)},
        code_paths=[str(package)],
        signature=signature,
        input_example=pd.DataFrame({"text": example_texts}),
        pip_requirements=pinned_requirements(),
        registered_model_name=registered_model,
    )


def pinned_requirements() -> list[str]:
    """What the pyfunc model imports, at the installed versions (MLflow would otherwise load the
    model in a subprocess to guess them)."""
    from importlib.metadata import version

    return [
        f"{name}=={version(name)}" for name in ("mlflow", "torch", "polars", "pyarrow", "numpy", "pandas", "pyyaml")
    ]


def log_baseline(params: Params, run_name: str, metrics: dict) -> None:
    """The baseline's run, beside the LSTM runs in the same experiment: the params that shaped
    its data and model, and its metrics (the same ``test_*`` names as the LSTM's)."""
    use_experiment(params.mlflow.experiment)
    with mlflow.start_run(run_name=run_name, tags={**run_tags(), "model_type": run_name}):
        sections = ("data.", "clean.", "tokenize.", "encode.", "baseline.")
        mlflow.log_params({k: v for k, v in params.flat().items() if k.startswith(sections)})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None})
