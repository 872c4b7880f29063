"""Evaluate's MLflow logging: on the run that trained the model file, the test metrics, the
report's figures, the test set as a dataset, and the raw-text pyfunc model, registered and, when
it is not worse than the current one on the same test reviews, aliased ``@champion``.

The training run is the one whose id the train stage left beside the model file
(``models/mlflow-run.json``, not a DVC output, so each DVC experiment's copy has its own), else
the newest run tagged with the model file's sha256 (no run id is ever written into a DVC output).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from pipeline.core import paths
from pipeline.core.params import Params
from pipeline.data.files import sha256_file
from pipeline.model.decision import SENTIMENTS
from pipeline.tracking.store import (
    MODEL_HASH_TAG,
    log_shard_datasets,
    one_line_errors,
    process_tags,
    run_tags,
)

CHAMPION = "champion"  # the registry alias to serve: models:/lstm-sentiment@champion


def training_run_of(experiment_id: str, model_hash: str) -> str | None:
    """The run that trained the model file with this sha256: the one the train stage recorded
    beside it (models/mlflow-run.json), else the newest run tagged with the hash, if any."""
    if paths.RUN_ID_FILE.exists():
        recorded = json.loads(paths.RUN_ID_FILE.read_text(encoding="utf-8"))
        if recorded.get(MODEL_HASH_TAG) == model_hash:
            return recorded["run_id"]
    return find_run_by_model_hash(experiment_id, model_hash)


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


def log_evaluation(
    params: Params,
    experiment_id: str,
    result: dict,
    figures: dict,
    example_texts: list[str],
    manifest: dict,
    test_split: str,
    names: tuple[str, ...] = SENTIMENTS,
) -> str | None:
    """On the MLflow run that produced models/model.pt (in ``experiment_id``, which the stage
    opened with use_experiment before writing anything): the test metrics (``test_*``), the
    report's figures, the test set as an input dataset, and the raw-text pyfunc model, registered
    when ``mlflow.registered_model`` is set (see :func:`register`; ``test_split`` names the test
    reviews). Returns what became of the registered version."""
    model_hash = sha256_file(paths.MODEL_FILE)
    with one_line_errors():
        run_id = training_run_of(experiment_id, model_hash)
        if run_id is None:
            print("evaluate: no MLflow run trained this model file (store reset?); logging to a new run")
        if run_id:
            # the run is RUNNING again while we log to it: under this process's id, or a stage of
            # another experiment would take it for one whose (training) process died and fail it
            for key, value in process_tags().items():
                mlflow.MlflowClient().set_tag(run_id, key, value)
        new_run_tags = None if run_id else {**run_tags(), **process_tags(), MODEL_HASH_TAG: model_hash}
        with mlflow.start_run(run_id=run_id, tags=new_run_tags) as run:
            mlflow.log_metrics({f"test_{k}": v for k, v in result.items() if v is not None})
            for name, figure in figures.items():
                mlflow.log_figure(figure, f"plots/{name}")
            # the training run logged the shards' DVC hash already: no second pass over them
            trained_on = mlflow.get_run(run_id).inputs.dataset_inputs if run_id else []
            digest = next((i.dataset.digest for i in trained_on if i.dataset.name.startswith("shards/")), None)
            log_shard_datasets(paths.SHARDS_DIR, manifest, ("test",), digest)
            model_info = log_text_model(example_texts, len(names))
            if params.mlflow.registered_model is None:
                return None
            return register(
                params.mlflow.registered_model,
                model_info,
                run.info.run_id,
                result["accuracy"],
                test_split,
                params.mlflow.champion_margin,
            )


def log_text_model(example_texts: list[str], classes: int = 2) -> mlflow.models.model.ModelInfo:
    """models/model.pt as a pyfunc that takes raw text (pipeline/tracking/pyfunc.py, "models from
    code", with the pipeline package as its code)."""
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.schema import Array

    package = Path(__file__).parents[1]  # pipeline/
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema(
            [ColSpec("double", "probability"), ColSpec("long", "label"), ColSpec("string", "sentiment")]
            + ([ColSpec(Array(DataType.double), "probabilities")] if classes > 2 else [])
        ),
    )
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(package / "tracking" / "pyfunc.py"),
        artifacts={"model": str(paths.MODEL_FILE)},
        code_paths=[str(package)],
        signature=signature,
        input_example=pd.DataFrame({"text": example_texts}),
        pip_requirements=pinned_requirements(),
    )


def register(name: str, model_info, run_id: str, accuracy: float, test_split: str, margin: float) -> str:
    """Register the logged model as a new version of ``name`` (tagged with its test accuracy and
    test reviews) and give it the alias ``champion`` unless the current champion, measured on the
    same test reviews, is better by more than ``margin``; the registry only moves forward."""
    client = mlflow.MlflowClient()
    if not client.search_registered_models(f"name = '{name}'"):
        try:
            client.create_registered_model(name)
        except mlflow.exceptions.MlflowException as error:
            # two evaluates at once (dvc queue start -j 2) can both find no model: one creates it
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    tags = {"test_accuracy": repr(accuracy), "test_split": test_split}
    version = client.create_model_version(name, model_info.model_uri, run_id, tags, model_id=model_info.model_id)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:  # no champion yet
        champion = None
    registered = f"registered {name} version {version.version}"
    if champion is not None and champion.tags.get("test_split") != test_split:
        return (
            f"{registered}; @{CHAMPION} stays version {champion.version}, which was tested on other reviews "
            f"(to move it: mlflow.MlflowClient().set_registered_model_alias({name!r}, {CHAMPION!r}, {version.version}))"
        )
    if champion is not None and accuracy < float(champion.tags["test_accuracy"]) - margin:
        return (
            f"{registered}; @{CHAMPION} stays version {champion.version} (test accuracy "
            f"{float(champion.tags['test_accuracy']):.4f}; this one {accuracy:.4f}, mlflow.champion_margin {margin})"
        )
    client.set_registered_model_alias(name, CHAMPION, version.version)
    return f"{registered}, now @{CHAMPION}"


def pinned_requirements() -> list[str]:
    """Every distribution the pyfunc model's code imports, at the installed (tested) version: a
    served model gets the versions it was tested with, not whichever another package pulls in
    (MLflow would otherwise load the model in a subprocess to guess them)."""
    from importlib.metadata import version

    served = ("mlflow", "torch", "polars", "pyarrow", "numpy", "pandas", "pyyaml", "pydantic", "psutil")
    served += ("scikit-learn", "scipy", "threadpoolctl")  # the n-gram model
    return [f"{name}=={version(name)}" for name in served]
