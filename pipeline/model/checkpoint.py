"""The training checkpoint (``models/checkpoint.pt``, not a DVC output): what a run resumes from.

:class:`TrainState` is where training stands; the checkpoint holds it with the weights, the
optimizer, scheduler and gradient-scaler states and the RNG states, so a resumed run continues to
the same weights an uninterrupted one reaches. Plain tensors and primitives only: it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.core.cli import StageError
from pipeline.core.params import TrainParams
from pipeline.data.files import atomic_path

FORMAT_VERSION = 2  # part of the fingerprint: a checkpoint of another layout is never resumed


@dataclass
class TrainState:
    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch finished
    step: int = 0
    samples: int = 0  # rows this process has trained on
    history: list[dict] = field(default_factory=list)  # one row per validation
    best_val_loss: float = math.inf
    best_val_accuracy: float = 0.0
    best_step: int = 0
    best_weights: dict[str, torch.Tensor] | None = None  # on the CPU
    bad_validations: int = 0  # validations since the best one
    stopped: bool = False  # early stop (train.patience)
    epoch_shuffle: torch.Tensor | None = None  # the batch shuffler's state when the current epoch began


def pretrained_digest(pretrained: np.ndarray | dict[str, np.ndarray] | None) -> str | None:
    if pretrained is None:
        return None
    arrays = sorted(pretrained.items()) if isinstance(pretrained, dict) else [("", pretrained)]
    digest = hashlib.sha256()
    for name, array in arrays:
        digest.update(name.encode() + array.tobytes())
    return digest.hexdigest()


def fingerprint(
    params: TrainParams, manifest: dict, pretrained: np.ndarray | dict[str, np.ndarray] | None = None
) -> str:
    """What a checkpoint must have been written with to be resumed: every train param except
    ``resume`` itself, ``data_placement`` (where the ids live does not change a step) and
    ``blend`` (what happens after training), the
    same shards and pretrained start, and this checkpoint layout."""
    ignored = ("resume", "data_placement", "blend")
    described = {
        "format": FORMAT_VERSION,
        "train": params.model_dump(exclude=set(ignored)),
        "shards": manifest,
        "pretrained": pretrained_digest(pretrained),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def save_checkpoint(path: Path, fingerprint: str, state: TrainState, parts: dict, device: torch.device) -> None:
    """``parts``: what has a ``state_dict`` (model, optimizer, scheduler, scaler), by name."""
    payload = {
        "fingerprint": fingerprint,
        "state": vars(state),
        "parts": {name: part.state_dict() for name, part in parts.items() if part is not None},
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, fingerprint: str, parts: dict, device: torch.device) -> TrainState | None:
    """The state saved at ``path``, with ``parts`` and the RNGs restored from it; None (and a
    message) when it was written with other params, data or code."""
    try:
        with warnings.catch_warnings():  # about the file's pickle protocol, before refusing it or not
            warnings.simplefilter("ignore")
            # on the CPU: RNG states must be CPU tensors; load_state_dict moves weights and optimizer state
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a truncated or corrupt file: PyTorch raises several types
        raise StageError(
            f"{path}: not a readable checkpoint (truncated or corrupt?): delete it to train from scratch"
        ) from None
    if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
        print(f"train: not resuming from {path}: it was written with other params, data or code")
        return None
    for name, part in parts.items():
        if part is not None:
            part.load_state_dict(saved["parts"][name])
    torch.set_rng_state(saved["rng"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(saved["cuda_rng"], device)
    state = TrainState(**saved["state"])
    print(f"train: resumed from {path} at step {state.step} (epoch {state.epoch + 1})")
    return state
