import numpy as np
import pytest

from pipeline.evaluate import classification_metrics, roc_points


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
