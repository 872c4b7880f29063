"""The label space and the decision, from a model's probabilities to a class: the one place that decides.

Two classes (the default, negative and positive): the model gives one probability per review,
that of the second class, and a review is in it (label 1) when that probability is at or above
the model's threshold (``train.threshold``, stored in the model file). More classes: the model
gives each class's probability (``[reviews, classes]``, rows summing to 1) and a review is in its
most probable class (the first of a tie). Class ids follow ``data.classes``' order; NumPy only,
for metrics and serving alike.
"""

from __future__ import annotations

import numpy as np

SENTIMENTS = ("negative", "positive")  # the default classes' names, by label


def labels_at(probs: np.ndarray, threshold: float) -> np.ndarray:
    """The class id of each review (int64): for two classes (``probs`` one per review) 1 where
    ``probs >= threshold``, else 0; for more (``probs`` ``[reviews, classes]``) the most probable."""
    probs = np.asarray(probs)
    if probs.ndim == 2:
        return probs.argmax(axis=1).astype(np.int64)
    return (probs >= threshold).astype(np.int64)


def chosen_probability(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Two classes: ``probs`` as they are (the positive class's); more: the probability of each
    review's class in ``labels``."""
    probs = np.asarray(probs)
    return probs if probs.ndim == 1 else probs[np.arange(len(probs)), labels]


def sentiments(labels: np.ndarray, names: tuple[str, ...] = SENTIMENTS) -> list[str]:
    """Each class id's name."""
    return [names[int(label)] for label in labels]
