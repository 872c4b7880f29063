"""train: shards -> LSTM classifier, tracked in MLflow.

One readable loop: shuffled mini-batches (optionally bucketed by length), each trimmed to its
longest real review (exact, see pipeline.model), ``BCEWithLogitsLoss``, Adam, grad-norm clipping,
an optional LR schedule, validation every ``eval_every`` steps and after each epoch, the weights
with the best validation loss kept, early stopping after ``patience`` validations without
improvement, and a checkpoint at every validation that ``train.resume`` continues from.

CUDA is used when available (``train.device: auto``), with the data moved to the GPU once
(or, when it does not fit, each batch copied from pinned host memory: ``train.data_placement``),
bf16/fp16 autocast (``train.precision``) and no host synchronisation per step: each epoch's
batches and their trimmed widths are planned on the host up front. Every path also runs on
the CPU, deterministically for a seed. Under ``torchrun`` (``WORLD_SIZE`` > 1) it trains with
DistributedDataParallel: every process takes its share of each batch (gloo on CPUs, nccl on GPUs).

Writes ``models/model.pt`` (weights, the config that rebuilds the model, the vocabulary and the
preprocessing settings, so that pipeline.predict scores raw text with it; load it with
``torch.load(..., weights_only=True)``), ``metrics/train.json`` and ``plots/training.csv``, and
logs one MLflow run (named after the DVC experiment, if any) with the params, the shards as
datasets, the curves, throughput and system metrics and the vocabulary; evaluate adds the
test metrics and the model to it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from pipeline import paths
from pipeline.common import StageError, atomic_path, run_main, sha256_file, stage_params, write_json
from pipeline.encode import load_split
from pipeline.model import LSTMClassifier, ModelConfig, count_parameters
from pipeline.params import TrainParams

HISTORY_FIELDS = ("step", "epoch", "lr", "train_loss", "val_loss", "val_accuracy")
BUCKET_BATCHES = 64  # with bucket_by_length, rows are sorted by length within runs of this many batches


@dataclass
class Split:
    """One split in tensors (ids ``[rows, seq_len]``, float labels, lengths) plus the lengths on
    the host, where batches are planned. Labels and lengths are on the training device; the ids
    too, unless ``ids_on_host`` (data too big for the GPU): then each batch is gathered on the host
    and copied over (see ``batch_to_device``)."""

    ids: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor
    host_lengths: np.ndarray
    ids_on_host: bool = False

    @classmethod
    def from_numpy(
        cls, ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray, device: torch.device, ids_on_host: bool = False
    ) -> Split:
        return cls(
            torch.from_numpy(ids) if ids_on_host else torch.from_numpy(ids).to(device),
            torch.from_numpy(labels.astype(np.float32)).to(device),
            torch.from_numpy(lengths.astype(np.int64)).to(device),
            lengths.astype(np.int64),
            ids_on_host,
        )

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, index: np.ndarray) -> Split:
        device_index = torch.from_numpy(index).to(self.labels.device)
        return Split(
            self.ids[torch.from_numpy(index) if self.ids_on_host else device_index],
            self.labels[device_index],
            self.lengths[device_index],
            self.host_lengths[index],
            self.ids_on_host,
        )


def trim_batch(ids: torch.Tensor, longest: int, pad: str) -> torch.Tensor:
    """Drop the padding columns that no review in the batch reaches (exact: see pipeline.model)."""
    longest = max(longest, 1)
    return ids[:, ids.shape[1] - longest :] if pad == "left" else ids[:, :longest]


def batch_to_device(ids: torch.Tensor, rows: np.ndarray, width: int, pad: str, device: torch.device) -> torch.Tensor:
    """``ids[rows]``, trimmed to ``width`` columns, from host memory onto ``device``.

    The rows are gathered on the host (only the kept columns), into page-locked memory on a GPU,
    so the copy is asynchronous: the host goes on to the next batch while the GPU still works on
    this one, which prefetches it. PyTorch's pinned-memory cache keeps the buffer until its copy
    is done."""
    batch = trim_batch(ids, width, pad)[torch.from_numpy(rows)]
    if device.type == "cuda":
        batch = batch.pin_memory()
    return batch.to(device, non_blocking=True)


def keep_ids_on_host(placement: str, nbytes: int, device: torch.device) -> bool:
    """Whether ``train.data_placement`` keeps ``nbytes`` of token ids on the host."""
    if placement != "auto":
        return placement == "host"
    if device.type != "cuda":
        return False  # host and device are the same memory
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes > free // 2  # leave the other half to the model, activations and cuDNN workspaces


def epoch_batches(lengths: np.ndarray, batch_size: int, bucket: bool, generator: torch.Generator) -> list[np.ndarray]:
    """One epoch's batches (row indices), shuffled with ``generator``.

    With ``bucket``, each run of ``BUCKET_BATCHES`` shuffled batches is sorted by length before it
    is cut into batches, and the batches are shuffled again: batches hold reviews of similar
    length, so trimming removes most of the padding, while every epoch still mixes the data."""
    order = torch.randperm(len(lengths), generator=generator).numpy()
    if not bucket:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    run = batch_size * BUCKET_BATCHES
    runs = np.split(order, range(run, len(order), run))
    order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in runs])
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise StageError("train.device is 'cuda' but PyTorch sees no CUDA device (use 'auto' or 'cpu')")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(choice)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.precision`` on ``device``; None means plain fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise StageError(f"train.precision {precision!r} needs a CUDA device (use 'auto' or 'fp32' on a CPU)")
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def first_working_autocast(model: nn.Module, ids: torch.Tensor, device: torch.device, dtype: torch.dtype):
    """``dtype`` if one forward and backward pass run under it, else fp16, else None (fp32).

    cuDNN gained bf16 LSTMs only recently (cuDNN 9.13); with an older one, ``precision: auto``
    falls back instead of failing the run."""
    for candidate in dict.fromkeys([dtype, torch.float16]):
        try:
            with autocast(device, candidate):
                model(ids).float().sum().backward()
            model.zero_grad(set_to_none=True)
            return candidate
        except RuntimeError as err:
            model.zero_grad(set_to_none=True)
            print(f"train: {candidate} autocast does not run here ({str(err).splitlines()[0]}); trying the next")
    return None


@torch.no_grad()
def score(
    model: nn.Module,
    ids: torch.Tensor,
    host_lengths: np.ndarray,
    pad: str,
    batch_size: int,
    dtype=None,
    ids_on_host: bool = False,
) -> torch.Tensor:
    """The logit of every row of ``ids``, in the rows' order, on the model's device.

    Rows are scored in order of length, so each batch is trimmed to nearly its real width; the
    logits are put back in row order on the device (no host synchronisation)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    by_length = np.argsort(host_lengths, kind="stable")
    logits = torch.zeros(len(host_lengths), device=device)
    for start in range(0, len(host_lengths), batch_size):
        rows_host = by_length[start : start + batch_size]
        rows = torch.from_numpy(rows_host).to(device)
        width = int(host_lengths[rows_host[-1]])
        if ids_on_host:
            batch = batch_to_device(ids, rows_host, width, pad, device)
        else:
            batch = trim_batch(ids, width, pad)[rows]
        with autocast(device, dtype):
            logits[rows] = model(batch).float()
    model.train(was_training)
    return logits


def evaluate_split(
    model: nn.Module, split: Split, pad: str, batch_size: int, dtype: torch.dtype | None = None
) -> tuple[float, np.ndarray]:
    """Mean BCE loss and the positive-class probabilities for every row, in the split's order."""
    logits = score(model, split.ids, split.host_lengths, pad, batch_size, dtype, split.ids_on_host)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, split.labels)
    return float(loss), torch.sigmoid(logits).cpu().numpy()


def world() -> tuple[int, int]:
    """``(rank, number of processes)``: ``(0, 1)`` unless running under torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce(values: list[float], device: torch.device) -> list[float]:
    if world()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def _make_scheduler(optimizer: torch.optim.Optimizer, params: TrainParams, total_steps: int):
    if params.lr_schedule == "cosine":  # stepped every batch, down to 0 at the last step
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if params.lr_schedule == "plateau":  # stepped at each validation: halve the LR when val loss stalls
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0)
    return None


def train_model(
    train: Split,
    val: Split,
    config: ModelConfig,
    params: TrainParams,
    on_eval: Callable[[dict], None] = lambda row: None,
    checkpoint: Path | None = None,
    fingerprint: str = "",
) -> tuple[LSTMClassifier, list[dict], dict, dict]:
    """Train; return ``(model with the best validation weights, history, summary, speed)``.

    ``summary`` is reproducible (it goes to metrics/train.json); ``speed`` (seconds,
    samples/s) depends on the machine and goes to MLflow only. With ``checkpoint``, the full
    training state is saved there at every validation, and with ``params.resume`` training
    continues from it when it was saved with the same ``fingerprint`` (params and data)."""
    rank, processes = world()
    torch.manual_seed(params.seed)
    device = train.labels.device
    model = LSTMClassifier(config).to(device)
    dtype = autocast_dtype(params.precision, device)
    if params.precision == "auto" and dtype is not None:
        dtype = first_working_autocast(model, train.ids[:2].to(device), device, dtype)
    trained = nn.parallel.DistributedDataParallel(model) if processes > 1 else model
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)  # fp16 needs loss scaling
    loss_fn = nn.BCEWithLogitsLoss()
    shuffle = torch.Generator().manual_seed(params.seed)  # host-side: batches are planned on the host
    steps_per_epoch = math.ceil(len(train) / params.batch_size)
    scheduler = _make_scheduler(optimizer, params, steps_per_epoch * params.epochs)
    # each process validates its share of the validation rows; the sums are all-reduced
    my_val = val.rows(np.arange(rank, len(val), processes)) if processes > 1 else val
    state = {"epoch": 0, "batch": 0, "step": 0, "history": [], "bad_validations": 0, "samples": 0, "stopped": False}
    best = {"val_loss": math.inf, "val_accuracy": 0.0, "step": 0, "state": None}
    epoch_start_shuffle = shuffle.get_state()

    if params.resume and checkpoint is not None and checkpoint.exists():
        # on the CPU: RNG states must be CPU tensors; load_state_dict moves weights and optimizer state
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if saved["fingerprint"] != fingerprint:
            print(f"train: not resuming from {checkpoint}: it was written with other params or data")
        else:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scaler.load_state_dict(saved["scaler"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            state, best = saved["state"], saved["best"]
            epoch_start_shuffle = saved["epoch_start_shuffle"]
            torch.set_rng_state(saved["rng"])
            if device.type == "cuda":
                torch.cuda.set_rng_state(saved["cuda_rng"], device)
            for row in state["history"]:
                on_eval(row)
            print(f"train: resumed from {checkpoint} at step {state['step']} (epoch {state['epoch'] + 1})")

    running_loss, running_steps = torch.zeros((), device=device), 0
    started = time.perf_counter()

    def validate(epoch: float) -> bool:
        """Validate, keep the best weights, save the checkpoint; True when it is time to stop."""
        nonlocal running_loss, running_steps
        loss, probs = evaluate_split(model, my_val, config.pad, params.batch_size * 4, dtype)
        correct = float(((probs >= 0.5) == my_val.labels.cpu().numpy().astype(bool)).sum())
        loss_sum, correct, rows, train_loss, train_steps = _all_reduce(
            [loss * len(my_val), correct, len(my_val), float(running_loss), running_steps], device
        )
        row = {
            "step": state["step"],
            "epoch": round(epoch, 4),
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": train_loss / max(train_steps, 1),
            "val_loss": loss_sum / max(rows, 1),
            "val_accuracy": correct / max(rows, 1),
        }
        state["history"].append(row)
        running_loss, running_steps = torch.zeros((), device=device), 0
        if row["val_loss"] < best["val_loss"]:
            best.update(val_loss=row["val_loss"], val_accuracy=row["val_accuracy"], step=state["step"])
            best["state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            state["bad_validations"] = 0
        else:
            state["bad_validations"] += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(row["val_loss"])
        state["stopped"] = params.patience > 0 and state["bad_validations"] >= params.patience
        if checkpoint is not None and rank == 0:
            save_checkpoint(
                checkpoint,
                fingerprint=fingerprint,
                model=model.state_dict(),
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict() if scheduler is not None else None,
                scaler=scaler.state_dict(),
                state=state,
                best=best,
                epoch_start_shuffle=epoch_start_shuffle,
                rng=torch.get_rng_state(),
                cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            )
        on_eval(row)
        return state["stopped"]

    model.train()
    stop = state["stopped"]
    while state["epoch"] < params.epochs and not stop:
        epoch = state["epoch"]
        shuffle.set_state(epoch_start_shuffle)
        batches = epoch_batches(train.host_lengths, params.batch_size, params.bucket_by_length, shuffle)
        # this process's share of every batch, and each share's trimmed width, planned on the host
        shares = [batch[rank::processes] for batch in batches if len(batch) >= processes]
        widths = [int(train.host_lengths[share].max()) for share in shares]
        host_order = np.concatenate(shares)
        order = torch.from_numpy(host_order).to(device)  # one copy per epoch, no per-step sync
        starts = np.cumsum([0] + [len(share) for share in shares]).tolist()
        progress = tqdm(
            range(state["batch"], len(shares)),
            desc=f"epoch {epoch + 1}/{params.epochs}",
            leave=False,
            disable=None if rank == 0 else True,
        )
        for batch_index in progress:
            begin, end = starts[batch_index], starts[batch_index + 1]
            rows = order[begin:end]
            if train.ids_on_host:
                ids = batch_to_device(train.ids, host_order[begin:end], widths[batch_index], config.pad, device)
            else:
                ids = trim_batch(train.ids, widths[batch_index], config.pad)[rows]  # gathers only the kept columns
            with autocast(device, dtype):
                loss = loss_fn(trained(ids).float(), train.labels[rows])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if params.lr_schedule == "cosine":
                scheduler.step()
            running_loss += loss.detach()
            running_steps += 1
            state["step"] += 1
            state["samples"] += len(rows)
            state["batch"] = batch_index + 1
            last = batch_index + 1 == len(shares)
            if last:
                state["epoch"], state["batch"] = epoch + 1, 0
                epoch_start_shuffle = shuffle.get_state()
            if last or (params.eval_every and state["step"] % params.eval_every == 0):
                stop = validate(epoch + (batch_index + 1) / len(shares))
                progress.set_postfix(val_loss=f"{state['history'][-1]['val_loss']:.4f}")
                if stop:
                    break
        progress.close()
        row = state["history"][-1] if state["history"] else None
        if rank == 0 and row is not None:
            print(
                f"epoch {epoch + 1}: train loss {row['train_loss']:.4f}, "
                f"val loss {row['val_loss']:.4f}, val accuracy {row['val_accuracy']:.4f}"
                + (f" (early stop: {params.patience} validations without improvement)" if stop else "")
            )
    seconds = time.perf_counter() - started
    if best["state"] is None:
        raise StageError("training diverged: the validation loss was never finite (try a lower train.lr)")
    model.load_state_dict(best["state"])
    samples = int(_all_reduce([state["samples"]], device)[0])
    summary = {
        "best_val_loss": round(best["val_loss"], 6),
        "best_val_accuracy": round(best["val_accuracy"], 6),
        "best_step": best["step"],
        "steps": state["step"],
        "epochs_run": state["epoch"],
        "samples_seen": samples,
        "stopped_early": stop,
        "parameters": count_parameters(model),
    }
    speed = {"train_seconds": round(seconds, 2), "samples_per_second": round(samples / max(seconds, 1e-9), 1)}
    return model, state["history"], summary, speed


def save_checkpoint(path: Path, **payload) -> None:
    """Everything needed to continue exactly where training stopped: weights, optimizer,
    scheduler, RNG states, progress (plain tensors and primitives: loads with weights_only=True)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def checkpoint_fingerprint(params: TrainParams, manifest: dict) -> str:
    """What a checkpoint must have been written with to be resumed: every train param except
    ``resume`` itself and ``data_placement`` (where the ids live does not change a step), and the
    same shards."""
    ignored = ("resume", "data_placement")
    described = {"train": {k: v for k, v in asdict(params).items() if k not in ignored}, "shards": manifest}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def save_model(model: LSTMClassifier, path=paths.MODEL_FILE, **extras) -> None:
    """Weights, the config to rebuild the model and ``extras`` (for the train stage: the vocabulary
    and the preprocessing settings, so that the file alone turns raw text into predictions; see
    pipeline.predict). Plain tensors and primitives only: loadable with ``weights_only=True``."""
    payload = {
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extras,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_model_file(path=paths.MODEL_FILE) -> dict:
    if not Path(path).exists():
        raise StageError(f"{path}: not found (run the train stage first: dvc repro train)")
    return torch.load(path, map_location="cpu", weights_only=True)


def model_from_payload(payload: dict, device: str | torch.device = "cpu") -> LSTMClassifier:
    model = LSTMClassifier(ModelConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def load_model(path=paths.MODEL_FILE, device: str | torch.device = "cpu") -> LSTMClassifier:
    return model_from_payload(read_model_file(path), device)


def write_history(history: list[dict], path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def main() -> None:
    import mlflow

    from pipeline.predict import preprocessing_settings
    from pipeline.tracking import MODEL_HASH_TAG, dvc_experiment, log_shard_datasets, run_tags, use_experiment
    from pipeline.vocab import load_vocab

    params, params_file = stage_params(__doc__)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun
        use_cuda = params.train.device == "cuda" or (params.train.device == "auto" and torch.cuda.is_available())
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank, processes = world()
    device = pick_device(params.train.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)

    train_ids, train_labels, train_lengths, manifest = load_split(paths.SHARDS_DIR, "train")
    val_arrays = load_split(paths.SHARDS_DIR, "val")[:3]
    if len(train_labels) == 0:
        raise StageError("the train split is empty: nothing to train on")
    if len(val_arrays[1]) == 0:
        raise StageError("the validation split is empty: raise encode.val_fraction or use a larger test file")
    on_host = keep_ids_on_host(params.train.data_placement, train_ids.nbytes + val_arrays[0].nbytes, device)
    train = Split.from_numpy(train_ids, train_labels, train_lengths, device, on_host)
    val = Split.from_numpy(*val_arrays, device, on_host)
    config = ModelConfig(
        vocab_size=manifest["vocab_size"],
        embedding_dim=params.train.embedding_dim,
        hidden_sizes=params.train.layer_widths(),
        dropout=params.train.dropout,
        embedding_dropout=params.train.embedding_dropout,
        bidirectional=params.train.bidirectional,
        pooling=params.train.pooling,
        pad=manifest["pad"],
        pad_id=manifest["pad_id"],
    )
    fingerprint = checkpoint_fingerprint(params.train, manifest)
    if rank != 0:  # the other processes train in step with rank 0; only rank 0 writes and logs
        train_model(train, val, config, params.train, checkpoint=paths.CHECKPOINT_FILE, fingerprint=fingerprint)
        dist.destroy_process_group()
        return
    print(
        f"train: {len(train)} reviews, validation: {len(val)}, device: {device}, processes: {processes}"
        + (", token ids on the host" if on_host and device.type == "cuda" else "")
    )

    use_experiment(params.mlflow.experiment)
    run_name = dvc_experiment()  # None: MLflow picks a name
    with mlflow.start_run(run_name=run_name, tags={**run_tags(), "model_type": "lstm"}, log_system_metrics=True) as run:
        mlflow.log_params(params.flat())
        mlflow.log_params({"model.parameters": count_parameters(LSTMClassifier(config)), "processes": processes})
        log_shard_datasets(paths.SHARDS_DIR, manifest, {"train": "training", "val": "validation"})

        def log_eval(row: dict) -> None:
            mlflow.log_metrics({k: row[k] for k in HISTORY_FIELDS if k != "step"}, step=row["step"])

        model, history, summary, speed = train_model(
            train, val, config, params.train, log_eval, paths.CHECKPOINT_FILE, fingerprint
        )
        # the vocabulary and preprocessing travel in the model file: it alone scores raw text
        save_model(model, vocab=load_vocab(paths.VOCAB_FILE), preprocessing=preprocessing_settings(params, manifest))
        write_history(history, paths.PLOTS_DIR / "training.csv")
        write_json(paths.METRICS_DIR / "train.json", summary)

        mlflow.set_tag(MODEL_HASH_TAG, sha256_file(paths.MODEL_FILE))
        mlflow.log_metrics({**summary, **speed})
        mlflow.set_tag("device", str(device))
        mlflow.log_artifact(str(paths.VOCAB_FILE))
        mlflow.log_artifact(str(params_file))
        mlflow.log_artifact(str(paths.SHARDS_DIR / "manifest.json"))
    if processes > 1:
        dist.destroy_process_group()
    print(
        f"train: best val loss {summary['best_val_loss']:.4f}, accuracy {summary['best_val_accuracy']:.4f} "
        f"({speed['samples_per_second']:.0f} samples/s on {device}); MLflow run {run.info.run_id}"
    )


if __name__ == "__main__":
    run_main(main)
