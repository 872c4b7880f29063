"""The model file (``models/model.pt``): everything that turns raw text into a prediction.

A dict of plain tensors and primitives (it loads with ``torch.load(..., weights_only=True)``):
``format_version``; ``model``, the config that rebuilds the network (pipeline.model.network), less the
padding side, which is the preprocessing's; ``weights``; ``vocab``, the tokens by id;
``preprocessing`` (pipeline.data.text.Preprocessing: cleaning, tokenizing, ``seq_len``, truncation,
padding, as the shards were made); ``threshold``, the probability from which a review is positive;
``classes``, the class names by id, unless they are the default negative and positive (the
network's config then has ``num_classes``, unless it is 2).
Format 3 adds the n-gram model blended with the LSTM (pipeline.model.ngrams): ``ngrams``
(``weights``, ``ngram_max``, ``bias``) and ``blend_weight``; a file of the LSTM alone stays format 2.
Predict, the MLflow model and evaluate read only this file, never params.yaml.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.core.cli import StageError
from pipeline.data.files import atomic_path
from pipeline.data.text import Preprocessing
from pipeline.model.decision import SENTIMENTS
from pipeline.model.network import LSTMClassifier, ModelConfig
from pipeline.model.ngrams import NgramModel

LSTM_ONLY_FORMAT = 2  # 1: the unversioned files written before, with the padding side stored twice
FORMAT_VERSION = 3  # with the n-gram model and its blend weight
RETRAIN = "re-run the train stage: dvc repro train"


@dataclass
class ModelFile:
    config: ModelConfig
    weights: dict[str, torch.Tensor]
    vocab: list[str]
    preprocessing: Preprocessing
    threshold: float
    ngrams: NgramModel | None = None
    blend_weight: float = 0.0  # of the n-gram model's probability in the blend
    classes: tuple[str, ...] = SENTIMENTS  # the class names, by id

    def build(self, device: str | torch.device = "cpu") -> LSTMClassifier:
        """The network with these weights, on ``device``, in eval mode."""
        model = LSTMClassifier(self.config)
        model.load_state_dict(self.weights)
        return model.to(device).eval()


def save_model_file(
    path: str | Path,
    model: LSTMClassifier,
    vocab: list[str],
    preprocessing: Preprocessing,
    threshold: float,
    ngrams: NgramModel | None = None,
    blend_weight: float = 0.0,
    classes: tuple[str, ...] = SENTIMENTS,
) -> None:
    if len(classes) != model.config.num_classes:
        raise ValueError(f"{len(classes)} class names for a model of {model.config.num_classes} classes")
    config = model.config.to_dict()
    if config.pop("pad") != preprocessing.pad:
        raise ValueError(f"the model pads on the {model.config.pad}, the preprocessing on the {preprocessing.pad}")
    payload = {
        "format_version": LSTM_ONLY_FORMAT if ngrams is None else FORMAT_VERSION,
        "model": config,
        "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "vocab": list(vocab),
        "preprocessing": preprocessing.to_dict(),
        "threshold": float(threshold),
    }
    if ngrams is not None:
        weights = torch.from_numpy(ngrams.weights)
        payload["ngrams"] = {"weights": weights, "ngram_max": ngrams.ngram_max, "bias": float(ngrams.bias)}
        payload["blend_weight"] = float(blend_weight)
    if tuple(classes) != SENTIMENTS:
        payload["classes"] = list(classes)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model_file(path: str | Path) -> ModelFile:
    """The model file at ``path``; a file that is missing, unreadable, from an older or newer
    version, or not a model at all stops with one line saying what to do."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: not found (run the train stage first: dvc repro train)")
    try:
        with warnings.catch_warnings():  # about the file's pickle protocol, before refusing it or not
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a truncated zip, random bytes, a pickle holding code: PyTorch raises several types
        raise StageError(f"{path}: not a readable model file (truncated or corrupt?): {RETRAIN}") from None
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version is None:
        if isinstance(payload, dict) and {"config", "state_dict"} <= payload.keys():
            raise StageError(f"{path}: a model file from an older version of this pipeline: {RETRAIN}")
        raise StageError(f"{path}: not a model file written by the train stage (for a model: {RETRAIN})")
    if version not in (LSTM_ONLY_FORMAT, FORMAT_VERSION):
        raise StageError(
            f"{path}: model file format {version}, but this code reads formats {LSTM_ONLY_FORMAT} and "
            f"{FORMAT_VERSION}: "
            f"use the version of lstm-sentiment that wrote it, or {RETRAIN}"
        )
    preprocessing = Preprocessing.from_dict(payload["preprocessing"])
    config = ModelConfig(**payload["model"], pad=preprocessing.pad)
    classes = tuple(payload.get("classes", SENTIMENTS))
    if len(classes) != config.num_classes or not all(isinstance(name, str) for name in classes):
        raise StageError(f"{path}: its class names do not match its {config.num_classes} classes: {RETRAIN}")
    return ModelFile(
        config=config,
        weights=payload["weights"],
        vocab=payload["vocab"],
        preprocessing=preprocessing,
        threshold=payload["threshold"],
        classes=classes,
        **(read_ngrams(path, payload) if version == FORMAT_VERSION else {}),
    )


def read_ngrams(path: Path, payload: dict) -> dict:
    """The n-gram part of a format-3 file, checked: a damaged one would score silently wrong."""
    try:
        part, weight = payload["ngrams"], payload["blend_weight"]
        weights, ngram_max, bias = part["weights"], part["ngram_max"], part["bias"]
        ok = (
            isinstance(weights, torch.Tensor)
            and weights.dtype == torch.float32
            and weights.dim() == 1
            and len(weights) > 0
            and bool(torch.isfinite(weights).all())
            and type(ngram_max) is int
            and ngram_max >= 1
            and isinstance(bias, float)
            and math.isfinite(bias)
            and isinstance(weight, float)
            and 0.0 <= weight <= 1.0
        )
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise StageError(f"{path}: its n-gram model or blend weight is damaged: {RETRAIN}")
    return {"ngrams": NgramModel(ngram_max, weights.numpy(), bias), "blend_weight": weight}
