"""From a probability of "positive" to a label and a sentiment: the one place that decides.

A review is positive (label 1) when its probability is at or above the model's threshold
(``train.threshold``, stored in the model file); NumPy only, for metrics and serving alike.
"""

from __future__ import annotations

import numpy as np

SENTIMENTS = ("negative", "positive")  # by label


def labels_at(probs: np.ndarray, threshold: float) -> np.ndarray:
    """1 where ``probs >= threshold``, else 0 (int64)."""
    return (np.asarray(probs) >= threshold).astype(np.int64)


def sentiments(labels: np.ndarray) -> list[str]:
    return [SENTIMENTS[int(label)] for label in labels]
