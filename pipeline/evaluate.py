"""evaluate: trained model + test shards -> metrics/eval.json, plot data and predictions.

Metrics: loss (BCE), accuracy, precision, recall, F1, ROC AUC and the confusion matrix, for
the positive class at ``evaluate.threshold``. Plot data for ``dvc plots show``:
``plots/roc.csv`` (fpr, tpr, threshold) and ``plots/confusion.csv`` (actual, predicted per
review). Every test review's probability is kept in ``data/predictions/test.parquet``.
The metrics are also logged, as ``test_*``, to the MLflow run that trained this very model
file (found by its sha256 tag, never by a run id stored in a DVC output).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn import metrics as skm

from pipeline import paths
from pipeline.common import StageError, atomic_path, run_main, sha256_file, stage_params, write_json
from pipeline.encode import load_split
from pipeline.params import EvaluateParams
from pipeline.train import Split, evaluate_split, load_model, pick_device

ROC_POINTS = 200  # the ROC curve is thinned to about this many points for plotting


def classification_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Loss, accuracy, precision, recall, F1, ROC AUC and confusion counts (pure NumPy in, dict out)."""
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
        "true_negatives": int(tn),
        "false_positives": int(fp),
        "false_negatives": int(fn),
        "true_positives": int(tp),
        "rows": int(len(labels)),
    }


def roc_points(labels: np.ndarray, probs: np.ndarray) -> pl.DataFrame:
    fpr, tpr, thresholds = skm.roc_curve(labels.astype(int), probs, drop_intermediate=True)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(ROC_POINTS, len(fpr))).round().astype(int))
    return pl.DataFrame(
        {"fpr": fpr[keep].round(6), "tpr": tpr[keep].round(6), "threshold": np.clip(thresholds[keep], 0, 1).round(6)}
    )


def write_csv(frame: pl.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        frame.write_csv(tmp)


def main() -> None:
    params, _ = stage_params(__doc__)
    evaluate_params: EvaluateParams = params.evaluate
    device = pick_device(params.train.device)
    model = load_model(paths.MODEL_FILE, device)
    ids, labels, lengths, manifest = load_split(paths.SHARDS_DIR, "test")
    if len(labels) == 0:
        raise StageError("the test split is empty: nothing to evaluate")
    _, probs = evaluate_split(
        model, Split.from_numpy(ids, labels, lengths, device), manifest["pad"], evaluate_params.batch_size
    )
    result = classification_metrics(labels, probs, evaluate_params.threshold)
    write_json(paths.METRICS_DIR / "eval.json", result)
    predicted = (probs >= evaluate_params.threshold).astype(int)
    predictions = pl.DataFrame(
        {
            "label": labels.astype(np.int8),
            "probability": probs,
            "predicted": predicted.astype(np.int8),
            "length": lengths,
        }
    )
    with atomic_path(paths.PREDICTIONS_FILE) as tmp:
        predictions.write_parquet(tmp)
    write_csv(pl.DataFrame({"actual": labels.astype(int), "predicted": predicted}), paths.PLOTS_DIR / "confusion.csv")
    if result["roc_auc"] is not None:
        write_csv(roc_points(labels, probs), paths.PLOTS_DIR / "roc.csv")
    log_to_training_run(params.mlflow.experiment, result)
    print(
        f"evaluate: accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}, F1 {result['f1']:.4f}, "
        f"ROC AUC {result['roc_auc']} on {result['rows']} test reviews"
    )


def log_to_training_run(experiment: str, result: dict) -> None:
    """Log test metrics on the MLflow run that produced models/model.pt."""
    import mlflow

    from pipeline.tracking import MODEL_HASH_TAG, find_run_by_model_hash, run_tags, use_experiment

    experiment_id = use_experiment(experiment)
    model_hash = sha256_file(paths.MODEL_FILE)
    run_id = find_run_by_model_hash(experiment_id, model_hash)
    if run_id is None:
        print("evaluate: no MLflow run trained this model file (store reset?); logging to a new run")
    with mlflow.start_run(run_id=run_id, tags=None if run_id else {**run_tags(), MODEL_HASH_TAG: model_hash}):
        mlflow.log_metrics({f"test_{k}": v for k, v in result.items() if v is not None})


if __name__ == "__main__":
    run_main(main)
