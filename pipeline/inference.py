"""Scoring with a trained model: logits for id matrices, and raw text -> probability, label, sentiment.

:func:`score` runs the rows in order of length, so each batch is trimmed to nearly its real
width, and puts the logits back in row order. :class:`Predictor` is a model file ready for raw
text; evaluate (its raw-text check), ``python -m pipeline.predict`` and the MLflow model
(pipeline.mlflow_model) all use it, so they give the same probabilities and labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.artifact import ModelFile, load_model_file
from pipeline.batching import Split, gather
from pipeline.decision import labels_at, sentiments
from pipeline.devices import autocast
from pipeline.model import LSTMClassifier

BATCH_SIZE = 256


@torch.no_grad()
def score(model: LSTMClassifier, split: Split, batch_size: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The logit of every row of ``split``, in the split's order, on the model's device (no host
    synchronisation). The model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    by_length = np.argsort(split.host_lengths, kind="stable")
    logits = torch.zeros(len(split), device=device)
    for start in range(0, len(split), batch_size):
        host_rows = by_length[start : start + batch_size]
        rows = torch.from_numpy(host_rows).to(device)
        ids = gather(split, host_rows, rows, int(split.host_lengths[host_rows[-1]]), model.config.pad)
        with autocast(device, dtype):
            logits[rows] = model(ids).float()
    model.train(was_training)
    return logits


def evaluate_split(
    model: LSTMClassifier, split: Split, batch_size: int, dtype: torch.dtype | None = None
) -> tuple[float, np.ndarray]:
    """Mean BCE loss and the positive-class probabilities for every row, in the split's order."""
    logits = score(model, split, batch_size, dtype)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, split.labels)
    return float(loss), torch.sigmoid(logits).cpu().numpy()


class Predictor:
    """A model file ready to score raw review text."""

    def __init__(self, model_file: ModelFile, device: str | torch.device = "cpu", batch_size: int = BATCH_SIZE):
        self.file = model_file
        self.model = model_file.build(device)
        self.device = torch.device(device)
        self.batch_size = batch_size

    @classmethod
    def from_path(cls, path: str | Path, device: str | torch.device = "cpu") -> Predictor:
        return cls(load_model_file(path), device)

    @property
    def threshold(self) -> float:
        return self.file.threshold

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids [rows, seq_len], lengths)`` exactly as the data stages made the training data."""
        return self.file.preprocessing.encode(texts, self.file.vocab)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Probability that each review is positive, in the order given."""
        if not texts:
            return np.zeros(0, np.float32)
        ids, lengths = self.encode(texts)
        unlabelled = Split.from_numpy(ids, np.zeros(len(texts), np.float32), lengths, self.device)
        return torch.sigmoid(score(self.model, unlabelled, self.batch_size)).cpu().numpy()

    def predict(self, texts: list[str], threshold: float | None = None) -> dict[str, list]:
        """``probability``, ``label`` and ``sentiment`` per review, at the model's threshold
        unless another is given."""
        probs = self.probabilities(texts)
        labels = labels_at(probs, self.threshold if threshold is None else threshold)
        return {
            "probability": probs.astype(np.float64).tolist(),
            "label": labels.tolist(),
            "sentiment": sentiments(labels),
        }
