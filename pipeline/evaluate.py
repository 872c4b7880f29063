"""evaluate: trained model + test shards -> metrics/eval.json, plot data, predictions, MLflow model.

The report, for the positive class at ``evaluate.threshold``: loss (BCE), accuracy, precision,
recall, F1, ROC AUC, PR AUC (average precision), expected calibration error, the confusion
matrix and accuracy by review length (``evaluate.length_buckets``), as flat keys in
``metrics/eval.json``. Plot data for ``dvc plots show`` under ``plots/``: ``roc.csv``,
``pr.csv``, ``confusion.csv``, ``calibration.csv`` (reliability curve) and
``length_buckets.csv``. Every test review's probability is kept in
``data/predictions/test.parquet``.

On the MLflow run that trained this very model file (found by its sha256 tag, never by a run id
stored in a DVC output) it logs the metrics as ``test_*``, the report as PNG figures, the test
shards as a dataset, and the raw-text pyfunc model (pipeline.mlflow_model), registered as
``mlflow.registered_model`` after checking that it scores raw test reviews as the shards do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from sklearn import metrics as skm

from pipeline import paths
from pipeline.common import StageError, atomic_path, run_main, sha256_file, stage_params, write_json
from pipeline.encode import load_split, validation_mask
from pipeline.params import EncodeParams, EvaluateParams, Params
from pipeline.train import Split, evaluate_split, keep_ids_on_host, model_from_payload, pick_device, read_model_file

CURVE_POINTS = 200  # ROC and PR curves are thinned to about this many points for plotting
CALIBRATION_BINS = 10  # equal-width probability bins for the reliability curve and ECE
RAW_TEXT_CHECK_ROWS = 256  # test reviews re-scored from raw text to check the logged model


def classification_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Loss, accuracy, precision, recall, F1, ROC AUC, PR AUC, expected calibration error and
    confusion counts (pure NumPy in, flat dict out)."""
    labels = labels.astype(int)
    predicted = (probs >= threshold).astype(int)
    clipped = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    tn, fp, fn, tp = skm.confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    both_classes = len(np.unique(labels)) == 2
    return {
        "loss": round(float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))), 6),
        "accuracy": round(float(skm.accuracy_score(labels, predicted)), 6),
        "precision": round(float(skm.precision_score(labels, predicted, zero_division=0)), 6),
        "recall": round(float(skm.recall_score(labels, predicted, zero_division=0)), 6),
        "f1": round(float(skm.f1_score(labels, predicted, zero_division=0)), 6),
        "roc_auc": round(float(skm.roc_auc_score(labels, probs)), 6) if both_classes else None,
        # average precision: the area under the precision-recall curve, without interpolation
        "pr_auc": round(float(skm.average_precision_score(labels, probs)), 6) if both_classes else None,
        "ece": round(expected_calibration_error(labels, probs), 6),
        "true_negatives": int(tn),
        "false_positives": int(fp),
        "false_negatives": int(fn),
        "true_positives": int(tp),
        "rows": int(len(labels)),
    }


def calibration_table(labels: np.ndarray, probs: np.ndarray, bins: int = CALIBRATION_BINS) -> pl.DataFrame:
    """Reliability curve: per equal-width probability bin, the mean predicted probability, the
    share of positives and the number of reviews (empty bins left out)."""
    which = np.minimum((probs * bins).astype(int), bins - 1)
    table = (
        pl.DataFrame({"bin": which, "probability": probs.astype(np.float64), "label": labels.astype(np.float64)})
        .group_by("bin")
        .agg(
            pl.col("probability").mean().alias("mean_predicted"),
            pl.col("label").mean().alias("fraction_positive"),
            pl.len().alias("reviews"),
        )
        .sort("bin")  # group_by does not keep order
    )
    return table.with_columns(
        (pl.col("bin") / bins).round(6).alias("bin_start"),
        pl.col("mean_predicted").round(6),
        pl.col("fraction_positive").round(6),
    ).select("bin_start", "mean_predicted", "fraction_positive", "reviews")


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean over reviews of |mean predicted - share positive| in the review's bin (Guo et al. 2017)."""
    if len(labels) == 0:
        return 0.0
    table = calibration_table(labels, probs, bins)
    gaps = (table["mean_predicted"] - table["fraction_positive"]).abs() * table["reviews"]
    return float(gaps.sum() / len(labels))


def length_buckets(lengths: np.ndarray, correct: np.ndarray, edges: tuple[int, ...]) -> pl.DataFrame:
    """Accuracy by review length (tokens kept after truncation) in buckets cut at ``edges``:
    ``[1, e0)``, ``[e0, e1)``, ..., ``[e_last, ...)``; empty buckets have accuracy null. Bucket
    labels are zero-padded (``001-024``) so that plots, which sort labels as text, keep their order."""
    bounds = [1, *edges]
    width = len(str(bounds[-1]))
    rows = []
    for i, low in enumerate(bounds):
        high = bounds[i + 1] - 1 if i + 1 < len(bounds) else None
        inside = (lengths >= low) & (lengths <= high) if high else lengths >= low
        reviews = int(inside.sum())
        rows.append(
            {
                "bucket": f"{low:0{width}d}-{high:0{width}d}" if high else f"{low}+",
                "metric": f"accuracy_len_{low}_{high}" if high else f"accuracy_len_{low}_up",
                "accuracy": round(float(correct[inside].mean()), 6) if reviews else None,
                "reviews": reviews,
            }
        )
    return pl.DataFrame(
        rows, schema={"bucket": pl.String, "metric": pl.String, "accuracy": pl.Float64, "reviews": pl.Int64}
    )


def _thin(*columns: np.ndarray) -> list[np.ndarray]:
    keep = np.unique(np.linspace(0, len(columns[0]) - 1, min(CURVE_POINTS, len(columns[0]))).round().astype(int))
    return [column[keep] for column in columns]


def roc_points(labels: np.ndarray, probs: np.ndarray) -> pl.DataFrame:
    fpr, tpr, thresholds = _thin(*skm.roc_curve(labels.astype(int), probs, drop_intermediate=True))
    return pl.DataFrame({"fpr": fpr.round(6), "tpr": tpr.round(6), "threshold": np.clip(thresholds, 0, 1).round(6)})


def pr_points(labels: np.ndarray, probs: np.ndarray) -> pl.DataFrame:
    precision, recall, _ = skm.precision_recall_curve(labels.astype(int), probs, drop_intermediate=True)
    precision, recall = _thin(precision, recall)
    return pl.DataFrame({"recall": recall.round(6), "precision": precision.round(6)})


def write_csv(frame: pl.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        frame.write_csv(tmp)


def evaluate_predictions(
    labels: np.ndarray, probs: np.ndarray, lengths: np.ndarray, params: EvaluateParams
) -> tuple[dict, dict[str, pl.DataFrame]]:
    """The flat metrics of ``metrics/eval.json`` and the plot tables, by file name under ``plots/``."""
    result = classification_metrics(labels, probs, params.threshold)
    predicted = (probs >= params.threshold).astype(int)
    buckets = length_buckets(lengths, predicted == labels, tuple(params.length_buckets))
    result.update(dict(zip(buckets["metric"], buckets["accuracy"], strict=True)))
    tables = {
        "confusion.csv": pl.DataFrame({"actual": labels.astype(int), "predicted": predicted}),
        "calibration.csv": calibration_table(labels, probs),
        "length_buckets.csv": buckets.drop("metric"),
    }
    if result["roc_auc"] is not None:
        tables["roc.csv"] = roc_points(labels, probs)
        tables["pr.csv"] = pr_points(labels, probs)
    return result, tables


def rows_of_test_split(manifest: dict, params: EncodeParams) -> np.ndarray:
    """Row numbers in data/interim/reviews/test.parquet of the test split's reviews, in shard order."""
    rows = manifest["splits"]["val"]["rows"] + manifest["splits"]["test"]["rows"]
    return np.flatnonzero(~validation_mask(rows, params))


def check_raw_text_path(payload: dict, texts: list[str], expected: np.ndarray) -> None:
    """The logged model scores raw text; it must agree with the shards-based scores."""
    from pipeline.predict import TextClassifier

    got = TextClassifier(payload).predict_proba(texts)
    worst = float(np.abs(got - expected).max())
    if worst > 1e-4:
        raise StageError(
            f"the raw-text model disagrees with the encoded test split by up to {worst:.2g}: "
            "the preprocessing in model.pt does not match the shards (re-run the pipeline: dvc repro)"
        )


def main() -> None:
    params, _ = stage_params(__doc__)
    evaluate_params: EvaluateParams = params.evaluate
    device = pick_device(params.train.device)
    payload = read_model_file(paths.MODEL_FILE)
    model = model_from_payload(payload, device)
    ids, labels, lengths, manifest = load_split(paths.SHARDS_DIR, "test")
    if len(labels) == 0:
        raise StageError("the test split is empty: nothing to evaluate")
    on_host = keep_ids_on_host(params.train.data_placement, ids.nbytes, device)
    _, probs = evaluate_split(
        model, Split.from_numpy(ids, labels, lengths, device, on_host), manifest["pad"], evaluate_params.batch_size
    )
    result, tables = evaluate_predictions(labels, probs, lengths, evaluate_params)
    write_json(paths.METRICS_DIR / "eval.json", result)
    for name, table in tables.items():
        write_csv(table, paths.PLOTS_DIR / name)

    review_rows = rows_of_test_split(manifest, params.encode)
    predictions = pl.DataFrame(
        {
            "review": review_rows.astype(np.int64),  # row in data/interim/reviews/test.parquet
            "label": labels.astype(np.int8),
            "probability": probs,
            "predicted": (probs >= evaluate_params.threshold).astype(np.int8),
            "length": lengths,
        }
    )
    with atomic_path(paths.PREDICTIONS_FILE) as tmp:
        predictions.write_parquet(tmp)

    # the first test reviews lie near the top of the file: read only that far
    checked = review_rows[:RAW_TEXT_CHECK_ROWS]
    head = pl.scan_parquet(paths.REVIEWS_DIR / "test.parquet").select("text").head(int(checked[-1]) + 1).collect()
    sample_texts = head["text"].gather(checked).to_list()
    check_raw_text_path(payload, sample_texts, probs[: len(checked)])

    log_to_training_run(params, result, tables, sample_texts[:2], manifest)
    print(
        f"evaluate: accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}, F1 {result['f1']:.4f}, "
        f"ROC AUC {result['roc_auc']}, ECE {result['ece']:.4f} on {result['rows']} test reviews"
    )


def log_to_training_run(params: Params, result: dict, tables: dict, example_texts: list[str], manifest: dict) -> None:
    """On the MLflow run that produced models/model.pt: the test metrics, the report's figures,
    the test set as an input dataset, and the raw-text pyfunc model (registered when
    ``mlflow.registered_model`` is set)."""
    import mlflow

    from pipeline.figures import report_figures
    from pipeline.tracking import MODEL_HASH_TAG, find_run_by_model_hash, log_shard_datasets, run_tags, use_experiment

    experiment_id = use_experiment(params.mlflow.experiment)
    model_hash = sha256_file(paths.MODEL_FILE)
    run_id = find_run_by_model_hash(experiment_id, model_hash)
    if run_id is None:
        print("evaluate: no MLflow run trained this model file (store reset?); logging to a new run")
    history_file = paths.PLOTS_DIR / "training.csv"
    history = pl.read_csv(history_file) if history_file.exists() else None
    with mlflow.start_run(run_id=run_id, tags=None if run_id else {**run_tags(), MODEL_HASH_TAG: model_hash}):
        mlflow.log_metrics({f"test_{k}": v for k, v in result.items() if v is not None})
        figures = report_figures(
            result,
            tables.get("roc.csv"),
            tables.get("pr.csv"),
            tables["calibration.csv"],
            tables["length_buckets.csv"],
            history,
        )
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}")
        # the training run logged the shards' DVC hash already: no second pass over them
        trained_on = mlflow.get_run(run_id).inputs.dataset_inputs if run_id else []
        digest = next((i.dataset.digest for i in trained_on if i.dataset.name.startswith("shards/")), None)
        log_shard_datasets(paths.SHARDS_DIR, manifest, {"test": "testing"}, digest)
        log_text_model(params, example_texts)


def log_text_model(params: Params, example_texts: list[str]) -> None:
    import mlflow
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    import pipeline

    package = Path(pipeline.__file__).parent
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema([ColSpec("double", "probability"), ColSpec("long", "label"), ColSpec("string", "sentiment")]),
    )
    mlflow.pyfunc.log_model(
        name="model",
        python_model=str(package / "mlflow_model.py"),
        artifacts={"model": str(paths.MODEL_FILE)},
        code_paths=[str(package)],
        model_config={"threshold": params.evaluate.threshold},
        signature=signature,
        input_example=pd.DataFrame({"text": example_texts}),
        pip_requirements=pinned_requirements(),
        registered_model_name=params.mlflow.registered_model,
    )


def pinned_requirements() -> list[str]:
    """What the pyfunc model imports, at the installed versions (MLflow would otherwise load the
    model in a subprocess to guess them)."""
    from importlib.metadata import version

    return [
        f"{name}=={version(name)}" for name in ("mlflow", "torch", "polars", "pyarrow", "numpy", "pandas", "pyyaml")
    ]


if __name__ == "__main__":
    run_main(main)
