"""PNG figures of the evaluation report, for the MLflow run (DVC draws its own from plots/*.csv).

Each function takes the same tables the evaluate stage writes under ``plots/`` and returns a
Matplotlib figure; ``report_figures`` returns them all by file name.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure  # not pyplot: no display, no backend, nothing kept open

from pipeline.model.decision import SENTIMENTS
from pipeline.report.metrics import confusion_counts

SIZE = (5, 4)


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def roc_figure(roc: pl.DataFrame, auc: float | None) -> Figure:
    figure, axes = _figure(
        f"ROC (AUC {auc:.3f})" if auc is not None else "ROC", "false positive rate", "true positive rate"
    )
    axes.plot(roc["fpr"], roc["tpr"])
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    return figure


def pr_figure(pr: pl.DataFrame, auc: float | None) -> Figure:
    title = f"Precision-recall (AP {auc:.3f})" if auc is not None else "Precision-recall"
    figure, axes = _figure(title, "recall", "precision")
    axes.plot(pr["recall"], pr["precision"])
    axes.set_ylim(0, 1.02)
    return figure


def calibration_figure(calibration: pl.DataFrame, ece: float) -> Figure:
    figure, axes = _figure(f"Reliability (ECE {ece:.3f})", "mean predicted probability", "share of positives")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    axes.plot(calibration["mean_predicted"], calibration["fraction_positive"], marker="o", label="model")
    axes.legend(loc="upper left")
    return figure


def confusion_figure(counts: np.ndarray, names: tuple[str, ...]) -> Figure:
    """Rows actual, columns predicted, in the classes' order."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if count > counts.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    ticks = list(range(len(names)))
    axes.set(
        title="Confusion matrix",
        xticks=ticks,
        yticks=ticks,
        xticklabels=list(names),
        yticklabels=list(names),
        xlabel="predicted",
        ylabel="actual",
    )
    return figure


def length_figure(buckets: pl.DataFrame) -> Figure:
    figure, axes = _figure("Accuracy by review length", "tokens kept", "accuracy")
    shown = buckets.filter(pl.col("reviews") > 0)
    bars = axes.bar(shown["bucket"], shown["accuracy"])
    axes.bar_label(bars, labels=[f"n={n}" for n in shown["reviews"]], fontsize=8)
    axes.set_ylim(0, 1.05)
    return figure


def training_figure(history: pl.DataFrame) -> Figure:
    figure, axes = _figure("Training", "step", "loss")
    axes.plot(history["step"], history["train_loss"], label="train loss")
    axes.plot(history["step"], history["val_loss"], label="validation loss")
    accuracy = axes.twinx()
    accuracy.plot(history["step"], history["val_accuracy"], color="tab:green", label="validation accuracy")
    accuracy.set_ylabel("accuracy")
    handles = axes.get_legend_handles_labels()[0] + accuracy.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="center right")
    return figure


def report_figures(
    metrics: dict,
    roc: pl.DataFrame | None,
    pr: pl.DataFrame | None,
    calibration: pl.DataFrame,
    buckets: pl.DataFrame,
    history: pl.DataFrame | None,
    names: tuple[str, ...] = SENTIMENTS,
) -> dict[str, Figure]:
    figures = {
        "confusion.png": confusion_figure(confusion_counts(metrics, names), names),
        "calibration.png": calibration_figure(calibration, metrics["ece"]),
        "length_buckets.png": length_figure(buckets),
    }
    binary = len(names) == 2  # more classes: the curves are micro-averaged, the report's AUC is macro
    if roc is not None:
        figures["roc.png"] = roc_figure(roc, metrics["roc_auc"] if binary else None)
    if pr is not None:
        figures["pr.png"] = pr_figure(pr, metrics["pr_auc"] if binary else None)
    if history is not None and history.height:
        figures["training.png"] = training_figure(history)
    return figures
