"""The evaluation report's numbers and plot tables, from labels and probabilities (no torch).

For the positive class at a decision threshold: loss (BCE), accuracy, precision, recall, F1, ROC
AUC, PR AUC (average precision), expected calibration error, the confusion matrix, and accuracy by
review length; plus the ROC, precision-recall, reliability and length tables for the plots.
For more than two classes (:func:`multiclass_metrics`): accuracy, macro and weighted F1, each
class's precision, recall and F1, log loss, the top class's calibration error, one-vs-rest ROC AUC
(macro), the confusion counts, and for ordinal classes the mean absolute error in classes and the
accuracy within one class. Evaluate and the TF-IDF baseline both report with it.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
from sklearn import metrics as skm

from pipeline.model.decision import SENTIMENTS, labels_at

CURVE_POINTS = 200  # ROC and PR curves are thinned to about this many points for plotting
CALIBRATION_BINS = 10  # equal-width probability bins for the reliability curve and ECE


def classification_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Loss, accuracy, precision, recall, F1, ROC AUC, PR AUC, expected calibration error and
    confusion counts (pure NumPy in, flat dict out)."""
    labels = labels.astype(int)
    predicted = labels_at(probs, threshold)
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


def class_key(name: str) -> str:
    """A class name as part of a metric's key: ``"5 stars"`` -> ``5_stars``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "class"


def multiclass_metrics(labels: np.ndarray, probs: np.ndarray, names: tuple[str, ...], ordinal: bool = False) -> dict:
    """The report for ``probs`` ``[reviews, classes]`` (flat dict: one key per number, so ``dvc
    metrics diff`` shows each)."""
    labels = labels.astype(int)
    ids = list(range(len(names)))
    predicted = labels_at(probs, 0.5)
    confidence = probs.max(axis=1)
    all_classes = len(np.unique(labels)) == len(names)
    result = {
        "loss": round(float(skm.log_loss(labels, np.asarray(probs, np.float64), labels=ids)), 6),
        "accuracy": round(float(skm.accuracy_score(labels, predicted)), 6),
        "f1": round(float(skm.f1_score(labels, predicted, labels=ids, average="macro", zero_division=0)), 6),
        "weighted_f1": round(
            float(skm.f1_score(labels, predicted, labels=ids, average="weighted", zero_division=0)), 6
        ),
        "roc_auc": round(float(skm.roc_auc_score(labels, probs, multi_class="ovr", labels=ids)), 6)
        if all_classes
        else None,
        "ece": round(expected_calibration_error((predicted == labels).astype(int), confidence), 6),
    }
    precision, recall, f1, support = skm.precision_recall_fscore_support(labels, predicted, labels=ids, zero_division=0)
    keys = [class_key(name) for name in names]
    for key, p, r, f, n in zip(keys, precision, recall, f1, support, strict=True):
        result |= {f"precision_{key}": round(float(p), 6), f"recall_{key}": round(float(r), 6)}
        result |= {f"f1_{key}": round(float(f), 6), f"rows_{key}": int(n)}
    counts = skm.confusion_matrix(labels, predicted, labels=ids)
    for (actual, guessed), n in np.ndenumerate(counts):
        result[f"confusion_{keys[actual]}_as_{keys[guessed]}"] = int(n)
    if ordinal:
        errors = np.abs(predicted - labels)
        result |= {
            "mae_classes": round(float(errors.mean()), 6),
            "accuracy_within_1": round(float((errors <= 1).mean()), 6),
        }
    result["rows"] = int(len(labels))
    return result


def confusion_counts(result: dict, names: tuple[str, ...]) -> np.ndarray:
    """The confusion matrix (rows actual, columns predicted) back from a report's flat keys."""
    if len(names) == 2 and "true_positives" in result:
        return np.array(
            [
                [result["true_negatives"], result["false_positives"]],
                [result["false_negatives"], result["true_positives"]],
            ]
        )
    keys = [class_key(name) for name in names]
    return np.array([[result[f"confusion_{a}_as_{b}"] for b in keys] for a in keys])


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


def evaluation_report(
    labels: np.ndarray,
    probs: np.ndarray,
    lengths: np.ndarray,
    threshold: float,
    bucket_edges: list[int],
    names: tuple[str, ...] = SENTIMENTS,
    ordinal: bool = False,
) -> tuple[dict, dict[str, pl.DataFrame]]:
    """The flat metrics of ``metrics/eval.json`` and the plot tables, by file name under ``plots/``
    (for more than two classes the reliability table is the top class's: its probability against
    the share of reviews it got right; the ROC and PR curves are one-vs-rest, micro-averaged)."""
    multiclass = np.ndim(probs) == 2
    predicted = labels_at(probs, threshold)
    if multiclass:
        result = multiclass_metrics(labels, probs, names, ordinal)
        calibration = calibration_table((predicted == labels).astype(int), probs.max(axis=1))
    else:
        result = classification_metrics(labels, probs, threshold)
        calibration = calibration_table(labels, probs)
    buckets = length_buckets(lengths, predicted == labels, tuple(bucket_edges))
    result.update(dict(zip(buckets["metric"], buckets["accuracy"], strict=True)))
    tables = {
        "confusion.csv": pl.DataFrame({"actual": labels.astype(int), "predicted": predicted}),
        "calibration.csv": calibration,
        "length_buckets.csv": buckets.drop("metric"),
    }
    if result["roc_auc"] is not None:  # more classes: micro-averaged, over every (review, class) pair
        is_class = (labels[:, None] == np.arange(probs.shape[1])) if multiclass else labels
        tables["roc.csv"] = roc_points(np.ravel(is_class), np.ravel(probs))
        tables["pr.csv"] = pr_points(np.ravel(is_class), np.ravel(probs))
    return result, tables
