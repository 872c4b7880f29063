"""Scoring with a trained model: logits for id matrices, and raw text -> probability, label, sentiment.

:func:`score` runs the rows in order of length, so each batch is trimmed to nearly its real
width, and puts the logits back in row order. :class:`Predictor` is a model file ready for raw
text; evaluate (its raw-text check), ``python -m pipeline.predict`` and the MLflow model
(pipeline.tracking.pyfunc) all use it, so they give the same probabilities and labels. With an
n-gram part in the model file, the probability is the blend of the two (pipeline.model.ngrams); a
review none of whose tokens the LSTM's vocabulary knows still gets none.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.data.text import PAD_ID, UNK_ID
from pipeline.model.batching import Split, gather
from pipeline.model.decision import chosen_probability, labels_at, sentiments
from pipeline.model.devices import autocast
from pipeline.model.model_file import ModelFile, load_model_file
from pipeline.model.network import LSTMClassifier
from pipeline.model.ngrams import blend

BATCH_SIZE = 256
CHUNK_ROWS = 8_192  # reviews encoded at a time: bounds the id matrix's memory
NO_KNOWN_WORDS = "no known words"  # the sentiment of a review none of whose tokens the model knows


@torch.no_grad()
def score(model: LSTMClassifier, split: Split, batch_size: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The logit(s) of every row of ``split``, in the split's order, on the model's device (no host
    synchronisation). The model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    by_length = np.argsort(split.host_lengths, kind="stable")
    outputs = model.config.outputs
    logits = torch.zeros((len(split), outputs) if outputs > 1 else len(split), device=device)
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
    """The mean loss and the probabilities of every row, in the split's order: for two classes
    BCE and the positive class's probability, for more cross-entropy and ``[rows, classes]``."""
    logits = score(model, split, batch_size, dtype)
    return float(loss_of(logits, split.labels)), probabilities_of(logits).cpu().numpy()


def loss_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss: BCE on one logit per review, cross-entropy on one per class."""
    if logits.dim() == 1:
        return nn.functional.binary_cross_entropy_with_logits(logits, labels)
    return nn.functional.cross_entropy(logits, labels.long())


def probabilities_of(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, dim=1)


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
        """Probability that each review is positive (the blend's, when the model file has one), in
        the order given."""
        return self._scored(texts)[0]

    def _scored(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities, and whether each review has a token of the LSTM's vocabulary.
        The reviews are tokenized once, for the LSTM's ids and the n-grams alike."""
        preprocessing = self.file.preprocessing
        tokens = preprocessing.token_series(texts)
        ids, lengths = preprocessing.encode_tokens(tokens, self.file.vocab)
        known = ((ids != PAD_ID) & (ids != UNK_ID)).any(axis=1)
        probs = self.lstm_probabilities(ids, lengths)
        if self.file.ngrams is not None and self.file.blend_weight > 0:
            ngrams = self.file.ngrams.probabilities(tokens.to_list())
            probs = blend(probs, ngrams, self.file.blend_weight)
        return probs, known

    def lstm_probabilities(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        if not len(ids):
            outputs = self.model.config.outputs
            return np.zeros((0, outputs) if outputs > 1 else 0, np.float32)
        unlabelled = Split.from_numpy(ids, np.zeros(len(ids), np.float32), lengths, self.device)
        return probabilities_of(score(self.model, unlabelled, self.batch_size)).cpu().numpy()

    def predict(self, texts: list[str], threshold: float | None = None) -> dict[str, list]:
        """``probability``, ``label`` and ``sentiment`` per review, at the model's threshold
        unless another is given; for more than two classes ``probability`` is that of the chosen
        class, ``label`` its id, ``sentiment`` its name, and ``probabilities`` each class's, in
        the model's class order. A review without a single token of the vocabulary (empty once
        cleaned, or all unknown words) gets no probability or label and the sentiment ``"no
        known words"``: the model would only be guessing.

        The reviews go through in chunks of ``CHUNK_ROWS``, which bounds the memory, and which
        pipeline.model.scoring cuts a file into too: a review's batch then holds the same
        reviews either way, and gets the same bits (other batch shapes may move the last bit)."""
        chunks = [
            self._predict(texts[start : start + CHUNK_ROWS], threshold) for start in range(0, len(texts), CHUNK_ROWS)
        ]
        keys = self.output_columns()
        return {key: [value for chunk in chunks for value in chunk[key]] for key in keys}

    def output_columns(self) -> tuple[str, ...]:
        base = ("probability", "label", "sentiment")
        return base if self.model.config.outputs == 1 else (*base, "probabilities")

    def _predict(self, texts: list[str], threshold: float | None) -> dict[str, list]:
        probs, known = self._scored(texts)
        probs = probs.astype(np.float64)
        labels = labels_at(probs, self.threshold if threshold is None else threshold)
        chosen = chosen_probability(probs, labels)
        result = {
            "probability": [float(p) if k else None for p, k in zip(chosen, known, strict=True)],
            "label": [int(label) if k else None for label, k in zip(labels, known, strict=True)],
            "sentiment": [
                s if k else NO_KNOWN_WORDS for s, k in zip(sentiments(labels, self.file.classes), known, strict=True)
            ],
        }
        if probs.ndim == 2:
            result["probabilities"] = [
                [float(p) for p in row] if k else None for row, k in zip(probs, known, strict=True)
            ]
        return result


def check_texts(values: list) -> list[str]:
    """``values`` when each is a non-empty string, else ValueError naming the bad records (by
    0-based position, with their value as JSON)."""
    if not values:
        raise ValueError('no records to score: send at least one, e.g. {"text": "Great value."}')
    bad = [i for i, value in enumerate(values) if not isinstance(value, str) or not value.strip()]
    if bad:
        shown = ", ".join(f"record {i} is {_as_json(values[i])}" for i in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ValueError(f"'text' must be a non-empty string: {shown}{more}")
    return values


def _as_json(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
