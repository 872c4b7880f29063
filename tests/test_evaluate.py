import numpy as np
import polars as pl
import pytest

from pipeline.report.metrics import (
    calibration_table,
    classification_metrics,
    evaluation_report,
    expected_calibration_error,
    length_buckets,
    roc_points,
)


def test_metrics_on_known_predictions():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    probs = np.array([0.9, 0.8, 0.4, 0.3, 0.2, 0.6, 0.1, 0.7])
    m = classification_metrics(labels, probs)
    assert (m["true_positives"], m["false_positives"], m["false_negatives"], m["true_negatives"]) == (3, 1, 1, 3)
    assert m["accuracy"] == 0.75 and m["precision"] == 0.75 and m["recall"] == 0.75 and m["f1"] == 0.75
    assert m["roc_auc"] == pytest.approx(15 / 16)
    expected_loss = -np.mean(labels * np.log(probs) + (1 - labels) * np.log(1 - probs))
    assert m["loss"] == pytest.approx(expected_loss, abs=1e-6)
    assert set(m) >= {"accuracy", "loss", "precision", "recall", "f1", "roc_auc"}


def test_single_class_has_no_roc_auc_rather_than_a_crash():
    m = classification_metrics(np.array([1, 1]), np.array([0.2, 0.9]))
    assert m["roc_auc"] is None and m["recall"] == 0.5


def test_roc_points_run_from_origin_to_corner():
    labels = np.array([0, 1] * 500)
    probs = np.linspace(0, 1, 1000)
    roc = roc_points(labels, probs)
    assert roc.row(0, named=True)["fpr"] == 0.0 and roc.row(-1, named=True)["tpr"] == 1.0
    assert roc["fpr"].is_sorted()


def test_pr_auc_and_calibration_error_on_known_predictions():
    labels = np.array([1, 0, 1, 0])
    probs = np.array([0.9, 0.8, 0.7, 0.1])
    m = classification_metrics(labels, probs)
    # ranked: 1 (P), 0 (N), 1 (P), 0: average precision = (1/1 + 2/3) / 2
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2, abs=1e-6)
    # bins: 0.9 -> [0.9, 1) gap 0.1; 0.8 -> gap 0.8; 0.7 -> gap 0.3; 0.1 -> gap 0.1: mean 0.325
    assert m["ece"] == pytest.approx(0.325, abs=1e-6)


def test_perfectly_calibrated_predictions_have_zero_ece_and_a_diagonal_reliability_curve():
    probs = np.repeat([0.05, 0.25, 0.75], 20)
    labels = np.concatenate([np.eye(20)[0], np.r_[np.ones(5), np.zeros(15)], np.r_[np.ones(15), np.zeros(5)]])
    table = calibration_table(labels, probs)
    assert table.columns == ["bin_start", "mean_predicted", "fraction_positive", "reviews"]
    assert table["bin_start"].to_list() == [0.0, 0.2, 0.7] and table["reviews"].to_list() == [20, 20, 20]
    assert table["fraction_positive"].to_list() == pytest.approx([0.05, 0.25, 0.75])
    assert expected_calibration_error(labels, probs) == pytest.approx(0.0, abs=1e-9)


def test_length_buckets_split_by_kept_length_and_leave_empty_buckets_null():
    lengths = np.array([3, 10, 30, 40, 200, 200])
    correct = np.array([True, False, True, True, False, True])
    buckets = length_buckets(lengths, correct, (25, 50, 100, 200))
    assert buckets["bucket"].to_list() == ["001-024", "025-049", "050-099", "100-199", "200+"]
    assert buckets["bucket"].to_list() == sorted(buckets["bucket"])  # plots sort labels as text
    assert buckets["metric"].to_list()[0] == "accuracy_len_1_24" and buckets["metric"][-1] == "accuracy_len_200_up"
    assert buckets["reviews"].to_list() == [2, 2, 0, 0, 2]
    assert buckets["accuracy"].to_list() == [0.5, 1.0, None, None, 0.5]


def test_evaluation_report_gives_flat_metrics_and_every_plot_table():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    probs = np.clip(labels * 0.6 + rng.random(300) * 0.4, 0, 1)
    lengths = rng.integers(1, 201, 300)
    result, tables = evaluation_report(labels, probs, lengths, 0.5, [25, 50, 100, 200])
    assert all(not isinstance(v, (dict, list)) for v in result.values())  # flat: dvc metrics diff shows each
    assert {"pr_auc", "ece", "accuracy_len_1_24", "accuracy_len_200_up"} <= set(result)
    assert set(tables) == {"confusion.csv", "calibration.csv", "length_buckets.csv", "roc.csv", "pr.csv"}
    assert tables["pr.csv"].columns == ["recall", "precision"] and tables["pr.csv"].height <= 201
    assert tables["length_buckets.csv"]["reviews"].sum() == 300


def test_report_figures_draw_every_plot():
    from pipeline.report.figures import report_figures

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.5 + rng.random(200) * 0.5, 0, 1)
    result, tables = evaluation_report(labels, probs, rng.integers(1, 120, 200), 0.5, [25, 50, 100, 200])
    history = pl.DataFrame(
        {"step": [10, 20], "train_loss": [0.6, 0.4], "val_loss": [0.5, 0.45], "val_accuracy": [0.7, 0.8]}
    )
    figures = report_figures(
        result, tables["roc.csv"], tables["pr.csv"], tables["calibration.csv"], tables["length_buckets.csv"], history
    )
    assert set(figures) == {
        "confusion.png",
        "calibration.png",
        "length_buckets.png",
        "roc.png",
        "pr.png",
        "training.png",
    }
    assert all(figure.axes for figure in figures.values())
