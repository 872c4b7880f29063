"""train: shards -> LSTM classifier, tracked in MLflow.

One readable loop: shuffled mini-batches, each trimmed to its longest real review (padding
columns that no review in the batch uses are dropped, which is exact and much faster),
``BCEWithLogitsLoss``, Adam, grad-norm clipping, validation every ``eval_every`` steps and
at the end of each epoch, and the weights with the best validation loss kept.
CUDA is used when available (``train.device: auto``); every path also runs on the CPU.

Writes ``models/model.pt`` (weights + the config that rebuilds the model; load it with
``torch.load(..., weights_only=True)``), ``metrics/train.json`` and ``plots/training.csv``, and
logs one MLflow run with the params, the curves, the model and the vocabulary.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline import paths
from pipeline.common import StageError, atomic_path, run_main, sha256_file, stage_params, write_json
from pipeline.encode import load_split
from pipeline.model import LSTMClassifier, ModelConfig, count_parameters
from pipeline.params import TrainParams

HISTORY_FIELDS = ("step", "epoch", "train_loss", "val_loss", "val_accuracy")


@dataclass
class Split:
    """One split in tensors: ids ``[rows, seq_len]``, labels (float), lengths."""

    ids: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def from_numpy(cls, ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray, device: torch.device) -> Split:
        return cls(
            torch.from_numpy(ids).to(device),
            torch.from_numpy(labels.astype(np.float32)).to(device),
            torch.from_numpy(lengths.astype(np.int64)).to(device),
        )

    def __len__(self) -> int:
        return len(self.labels)


def trim_batch(ids: torch.Tensor, lengths: torch.Tensor, pad: str) -> torch.Tensor:
    """Drop the padding columns that no review in the batch reaches (exact: see pipeline.model)."""
    longest = max(int(lengths.max()), 1)
    return ids[:, ids.shape[1] - longest :] if pad == "left" else ids[:, :longest]


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise StageError("train.device is 'cuda' but PyTorch sees no CUDA device (use 'auto' or 'cpu')")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


@torch.no_grad()
def evaluate_split(model: nn.Module, split: Split, pad: str, batch_size: int) -> tuple[float, np.ndarray]:
    """Mean BCE loss and the positive-class probabilities for every row, in order."""
    model.eval()
    loss_sum = torch.zeros((), device=split.labels.device)
    probabilities = []
    for start in range(0, len(split), batch_size):
        rows = slice(start, start + batch_size)
        logits = model(trim_batch(split.ids[rows], split.lengths[rows], pad)).float()
        loss_sum += nn.functional.binary_cross_entropy_with_logits(logits, split.labels[rows], reduction="sum")
        probabilities.append(torch.sigmoid(logits))
    model.train()
    probs = torch.cat(probabilities).cpu().numpy() if probabilities else np.zeros(0, np.float32)
    return float(loss_sum) / max(len(split), 1), probs


def train_model(
    train: Split,
    val: Split,
    config: ModelConfig,
    params: TrainParams,
    on_eval: Callable[[dict], None] = lambda row: None,
) -> tuple[LSTMClassifier, list[dict], dict, dict]:
    """Train; return ``(model with the best validation weights, history, summary, speed)``.

    ``summary`` is reproducible (it goes to metrics/train.json); ``speed`` (seconds,
    samples/s) depends on the machine and goes to MLflow only."""
    torch.manual_seed(params.seed)
    device = train.ids.device
    model = LSTMClassifier(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    shuffle = torch.Generator(device="cpu").manual_seed(params.seed)
    steps_per_epoch = math.ceil(len(train) / params.batch_size)
    history: list[dict] = []
    best = {"val_loss": math.inf, "val_accuracy": 0.0, "step": 0, "state": None}
    running_loss, running_steps, step = torch.zeros((), device=device), 0, 0
    started = time.perf_counter()

    def validate(epoch: float) -> None:
        nonlocal running_loss, running_steps
        val_loss, probs = evaluate_split(model, val, config.pad, params.batch_size * 4)
        val_accuracy = float(((probs >= 0.5) == val.labels.cpu().numpy().astype(bool)).mean()) if len(val) else 0.0
        row = {
            "step": step,
            "epoch": round(epoch, 4),
            "train_loss": float(running_loss) / max(running_steps, 1),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
        }
        history.append(row)
        on_eval(row)
        running_loss, running_steps = torch.zeros((), device=device), 0
        if val_loss < best["val_loss"]:
            best.update(val_loss=val_loss, val_accuracy=val_accuracy, step=step)
            best["state"] = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})

    model.train()
    for epoch in range(params.epochs):
        order = torch.randperm(len(train), generator=shuffle).to(device)
        progress = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{params.epochs}", leave=False, disable=None)
        for batch_index in progress:
            rows = order[batch_index * params.batch_size : (batch_index + 1) * params.batch_size]
            ids = trim_batch(train.ids[rows], train.lengths[rows], config.pad)
            loss = loss_fn(model(ids), train.labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            optimizer.step()
            running_loss += loss.detach()
            running_steps += 1
            step += 1
            if params.eval_every and step % params.eval_every == 0 and batch_index + 1 < steps_per_epoch:
                validate(epoch + (batch_index + 1) / steps_per_epoch)
                progress.set_postfix(val_loss=f"{history[-1]['val_loss']:.4f}")
        validate(epoch + 1)
        print(
            f"epoch {epoch + 1}: train loss {history[-1]['train_loss']:.4f}, "
            f"val loss {history[-1]['val_loss']:.4f}, val accuracy {history[-1]['val_accuracy']:.4f}"
        )
    seconds = time.perf_counter() - started
    if best["state"] is None:
        raise StageError("training diverged: the validation loss was never finite (try a lower train.lr)")
    model.load_state_dict(best["state"])
    summary = {
        "best_val_loss": round(best["val_loss"], 6),
        "best_val_accuracy": round(best["val_accuracy"], 6),
        "best_step": best["step"],
        "steps": step,
        "epochs": params.epochs,
        "parameters": count_parameters(model),
    }
    speed = {"train_seconds": round(seconds, 2), "samples_per_second": round(len(train) * params.epochs / seconds, 1)}
    return model, history, summary, speed


def save_model(model: LSTMClassifier, path=paths.MODEL_FILE) -> None:
    """Weights and config only (plain tensors and primitives): loadable with weights_only=True."""
    payload = {
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path=paths.MODEL_FILE, device: str | torch.device = "cpu") -> LSTMClassifier:
    if not path.exists():
        raise StageError(f"{path}: not found (run the train stage first: dvc repro train)")
    payload = torch.load(path, map_location=device, weights_only=True)
    model = LSTMClassifier(ModelConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def write_history(history: list[dict], path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def log_model_to_mlflow(model: LSTMClassifier, example_ids: np.ndarray) -> None:
    import mlflow
    from mlflow.models import infer_signature

    model = copy.deepcopy(model).cpu().eval()  # MLflow exports (torch.export) from the CPU
    with torch.no_grad():
        output = model(torch.from_numpy(example_ids)).numpy()
    with warnings.catch_warnings():
        # torch.export notes that nn.LSTM keeps its flat weight list as plain attributes;
        # harmless here (the exported model is checked against this one in the tests).
        warnings.filterwarnings("ignore", message="The tensor attributes .* were assigned during export")
        mlflow.pytorch.log_model(
            model, name="model", input_example=example_ids, signature=infer_signature(example_ids, output)
        )


def main() -> None:
    import mlflow

    from pipeline.tracking import MODEL_HASH_TAG, run_tags, use_experiment

    params, params_file = stage_params(__doc__)
    device = pick_device(params.train.device)

    train_ids, train_labels, train_lengths, manifest = load_split(paths.SHARDS_DIR, "train")
    val_arrays = load_split(paths.SHARDS_DIR, "val")[:3]
    if len(train_labels) == 0:
        raise StageError("the train split is empty: nothing to train on")
    if len(val_arrays[1]) == 0:
        raise StageError("the validation split is empty: raise encode.val_fraction or use a larger test file")
    train = Split.from_numpy(train_ids, train_labels, train_lengths, device)
    val = Split.from_numpy(*val_arrays, device)
    config = ModelConfig(
        vocab_size=manifest["vocab_size"],
        embedding_dim=params.train.embedding_dim,
        hidden_size=params.train.hidden_size,
        num_layers=params.train.num_layers,
        dropout=params.train.dropout,
        bidirectional=params.train.bidirectional,
        pad=manifest["pad"],
        pad_id=manifest["pad_id"],
    )
    print(f"train: {len(train)} reviews, validation: {len(val)}, device: {device}")

    use_experiment(params.mlflow.experiment)
    with mlflow.start_run(tags=run_tags()) as run:
        mlflow.log_params(params.flat())
        mlflow.log_params({"model.parameters": count_parameters(LSTMClassifier(config))})

        def log_eval(row: dict) -> None:
            mlflow.log_metrics(
                {k: row[k] for k in ("train_loss", "val_loss", "val_accuracy", "epoch")}, step=row["step"]
            )

        model, history, summary, speed = train_model(train, val, config, params.train, on_eval=log_eval)
        save_model(model)
        write_history(history, paths.PLOTS_DIR / "training.csv")
        write_json(paths.METRICS_DIR / "train.json", summary)

        model_hash = sha256_file(paths.MODEL_FILE)
        mlflow.set_tag(MODEL_HASH_TAG, model_hash)
        mlflow.log_metrics({**summary, **speed})
        mlflow.set_tag("device", str(device))
        log_model_to_mlflow(model, train_ids[:2].copy())
        mlflow.log_artifact(str(paths.VOCAB_FILE))
        mlflow.log_artifact(str(params_file))
        mlflow.log_artifact(str(paths.SHARDS_DIR / "manifest.json"))
    print(
        f"train: best val loss {summary['best_val_loss']:.4f}, accuracy {summary['best_val_accuracy']:.4f} "
        f"({speed['samples_per_second']:.0f} samples/s on {device}); MLflow run {run.info.run_id}"
    )


if __name__ == "__main__":
    run_main(main)
