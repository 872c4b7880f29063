"""The n-gram part of the model, and its blend with the LSTM.

Wang & Manning's NBSVM with a logistic loss: each review's binary word 1- to ``ngram_max``-grams,
hashed into a fixed number of buckets (scikit-learn's ``HashingVectorizer``, which needs no
vocabulary), each bucket scaled by its naive-Bayes log-count ratio, into a logistic regression.
The ratio and the regression's coefficients multiply into one float32 weight per bucket, so the
whole model is an array and a bias: it rides in the model file as a tensor (no pickle) and the
same hashing of the same tokens scores new text.

The blend is in logit space, ``sigmoid((1 - w) * logit(p_lstm) + w * logit(p_ngrams))``, the
weight ``w`` in 0..1 (steps of 0.01) chosen on the validation split: of the weights whose log loss
is within one standard error of the lowest, the one nearest equal weights (0.5). A few hundred
validation reviews cannot tell 0.3 from 0.5 apart, and an estimated weight carries that noise
(equal weights are the hard-to-beat default of forecast combination); a part the validation
split shows to be clearly worse still gets its small weight. 0 is the LSTM alone, bit for bit.
(Logit space: on every seed measured its best validation loss was lower than a blend of the
probabilities', benchmarks/RESULTS.md.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from pipeline.core.cli import StageError
from pipeline.data.files import cure, read_json, reading
from pipeline.model.decision import labels_at

WEIGHTS_FILE = "weights.npy"  # float32 [buckets]
VALIDATION_FILE = "validation.npy"  # float64: the positive-class probability of each validation row
MODEL_FILE = "model.json"  # ngram_max, bias
BLEND_GRID = np.round(np.linspace(0, 1, 101), 2)


def _as_is(tokens):
    return tokens  # the tokens come from the clean stage's tokenizer, or the model file's preprocessing


def hashed_ngrams(token_lists: list[list[str]], ngram_max: int, buckets: int) -> sparse.csr_matrix:
    """Binary 1..``ngram_max``-gram indicators of each review, hashed into ``buckets`` columns."""
    vectorizer = HashingVectorizer(
        tokenizer=_as_is,
        preprocessor=_as_is,
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, ngram_max),
        n_features=buckets,
        binary=True,
        norm=None,
        alternate_sign=False,
        dtype=np.float32,
    )
    return vectorizer.transform(token_lists).tocsr()


@dataclass
class NgramModel:
    ngram_max: int
    weights: np.ndarray  # float32 [buckets]: NB ratio times the regression's coefficient
    bias: float

    def logits(self, token_lists: list[list[str]]) -> np.ndarray:
        if not len(token_lists):
            return np.zeros(0)
        features = hashed_ngrams(token_lists, self.ngram_max, len(self.weights)).astype(np.float64)
        return features @ self.weights.astype(np.float64) + self.bias

    def probabilities(self, token_lists: list[list[str]]) -> np.ndarray:
        """Probability that each review is positive (float64), in the order given."""
        return 1.0 / (1.0 + np.exp(-self.logits(token_lists)))


def fit_ngram_model(
    token_lists: list[list[str]], labels: np.ndarray, ngram_max: int, buckets: int, C: float, max_iter: int
) -> tuple[NgramModel, bool]:
    """The n-gram model fitted on these reviews, and whether the regression converged."""
    features = hashed_ngrams(token_lists, ngram_max, buckets)
    positive = np.asarray(features[labels == 1].sum(axis=0), np.float64).ravel() + 1.0  # add-one smoothing
    negative = np.asarray(features[labels == 0].sum(axis=0), np.float64).ravel() + 1.0
    ratio = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
    classifier = LogisticRegression(C=C, max_iter=max_iter)
    with threadpool_limits(1):  # one thread: the same sums, so the same weights, on every machine
        classifier.fit(features @ sparse.diags(ratio.astype(np.float32)), labels)
    converged = bool(classifier.n_iter_[0] < max_iter)
    weights = (classifier.coef_[0] * ratio).astype(np.float32)
    return NgramModel(ngram_max, weights, float(classifier.intercept_[0])), converged


def save_ngram_stage(folder: Path, model: NgramModel, validation: np.ndarray) -> None:
    """Into a new ``folder`` (the stage writes it whole or not at all: pipeline.data.files.atomic_path)."""
    folder.mkdir(parents=True)
    np.save(folder / WEIGHTS_FILE, model.weights)
    np.save(folder / VALIDATION_FILE, validation.astype(np.float64))
    (folder / MODEL_FILE).write_text(json.dumps({"ngram_max": model.ngram_max, "bias": model.bias}, indent=2) + "\n")


def load_ngram_stage(folder: Path, validation_rows: int) -> tuple[NgramModel, np.ndarray]:
    """The ngrams stage's model and its validation probabilities, which must cover ``validation_rows``."""
    settings = read_json(folder / MODEL_FILE, ("ngram_max", "bias"))
    with reading(folder / WEIGHTS_FILE):
        weights = np.load(folder / WEIGHTS_FILE, allow_pickle=False)
        validation = np.load(folder / VALIDATION_FILE, allow_pickle=False)
    if weights.dtype != np.float32 or weights.ndim != 1 or len(validation) != validation_rows:
        raise StageError(f"{folder}: does not match the validation split ({cure(folder)})")
    return NgramModel(int(settings["ngram_max"]), weights, float(settings["bias"])), validation


def blend(lstm: np.ndarray, ngrams: np.ndarray, weight: float) -> np.ndarray:
    """The blended probability (float32, as the LSTM's); weight 0 returns the LSTM's exactly."""
    if weight == 0:
        return lstm
    logits = (1 - weight) * _logit(lstm) + weight * _logit(ngrams)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def _logit(probs: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(probs, np.float64), 1e-7, 1 - 1e-7)  # float32 sigmoids reach 0 and 1
    return np.log(clipped) - np.log1p(-clipped)


def review_losses(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(probs, np.float64), 1e-7, 1 - 1e-7)
    return -(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(np.mean(review_losses(labels, probs)))


def choose_blend_weight(labels: np.ndarray, lstm: np.ndarray, ngrams: np.ndarray) -> float:
    """Of the grid's weights whose log loss on these (validation) reviews is within one standard
    error of the lowest, the one nearest 0.5 (the smaller on a tie). The standard error is that of
    the mean per-review difference from the best weight's loss."""
    losses = np.stack([review_losses(labels, blend(lstm, ngrams, w)) for w in BLEND_GRID])
    mean = losses.mean(axis=1)
    best = int(np.argmin(mean))
    differences = losses - losses[best]
    if len(labels) > 1:
        standard_error = differences.std(axis=1, ddof=1) / np.sqrt(len(labels))
    else:
        standard_error = np.zeros(len(BLEND_GRID))
    near = np.flatnonzero(mean - mean[best] <= standard_error)
    return float(BLEND_GRID[near[np.argmin(np.abs(BLEND_GRID[near] - 0.5))]])


def blend_on_validation(labels: np.ndarray, lstm: np.ndarray, ngrams: np.ndarray, threshold: float) -> dict:
    """The chosen weight and the blend's validation loss and accuracy (metrics/train.json's keys)."""
    labels = np.asarray(labels, np.float64)
    weight = choose_blend_weight(labels, lstm, ngrams)
    blended = blend(lstm, ngrams, weight)
    return {
        "blend_weight": weight,
        "blend_val_loss": round(log_loss(labels, blended), 6),
        "blend_val_accuracy": round(float(np.mean(labels_at(blended, threshold) == labels)), 6),
    }
