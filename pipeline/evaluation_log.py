"""Evaluate's MLflow logging: on the run that trained the model file, the test metrics, the
report's figures, the test set as a dataset, and the raw-text pyfunc model, registered.

The training run is the one whose id the train stage left beside the model file
(``models/mlflow-run.json``, not a DVC output, so each DVC experiment's copy has its own), else
the newest run tagged with the model file's sha256 (no run id is ever written into a DVC output).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from pipeline import paths
from pipeline.files import sha256_file
from pipeline.params import Params
from pipeline.tracking import MODEL_HASH_TAG, log_shard_datasets, one_line_errors, run_tags, use_experiment


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


def log_evaluation(params: Params, result: dict, figures: dict, example_texts: list[str], manifest: dict) -> None:
    """On the MLflow run that produced models/model.pt: the test metrics (``test_*``), the
    report's figures, the test set as an input dataset, and the raw-text pyfunc model
    (registered when ``mlflow.registered_model`` is set)."""
    experiment_id = use_experiment(params.mlflow.experiment)
    model_hash = sha256_file(paths.MODEL_FILE)
    with one_line_errors():
        run_id = training_run_of(experiment_id, model_hash)
        if run_id is None:
            print("evaluate: no MLflow run trained this model file (store reset?); logging to a new run")
        new_run_tags = None if run_id else {**run_tags(), MODEL_HASH_TAG: model_hash}
        with mlflow.start_run(run_id=run_id, tags=new_run_tags):
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
