"""train: shards -> LSTM classifier (``models/model.pt``), tracked in MLflow.

One readable loop (:func:`train_model`): shuffled mini-batches, optionally bucketed by length and
each trimmed to its longest review (pipeline.model.batching), ``BCEWithLogitsLoss`` (cross-entropy
for more than two classes), Adam, grad-norm clipping, an optional LR schedule, validation every
``eval_every`` steps and after each epoch, the weights with the best validation loss kept, early
stopping after ``patience`` validations without improvement, and a checkpoint at every
validation that ``train.resume`` continues from
(pipeline.model.checkpoint). On a GPU it uses autocast (``train.precision``) and no host
synchronisation per step; on a CPU it is deterministic for a seed. Under ``torchrun`` every
process takes its share of each batch with DistributedDataParallel (pipeline.model.devices); only rank
0 writes files and logs.

With ``train.blend``, the trained LSTM is then blended with the ngrams stage's model at the
weight (0..1) with the lowest validation loss (pipeline.model.ngrams), both in the model file.

Writes ``models/model.pt`` (pipeline.model.model_file: weights, config, vocabulary, the preprocessing
recorded in the shards' manifest, the decision threshold, the n-gram model and the blend weight),
``metrics/train.json`` and ``plots/training.csv``, and logs one MLflow run (pipeline.tracking.store)
that evaluate completes.
"""

from __future__ import annotations

from pipeline.core.cli import StageError, answer_help, run_main, stage_params
from pipeline.core.cpu_math import pin_code_paths

if __name__ == "__main__":  # run as a stage, not imported: nothing global changes on import
    answer_help(__doc__)  # at once: the imports below take seconds
    pin_code_paths()  # before NumPy and PyTorch load: they pick their code paths then

import csv
import io
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.core import paths
from pipeline.core.params import TrainParams
from pipeline.data.files import atomic_path, read_json, reading, write_json
from pipeline.data.pretrained import load_pretrained
from pipeline.data.shards import MANIFEST, available_memory, ids_fit, load_split, read_manifest
from pipeline.data.text import Preprocessing, load_vocab
from pipeline.model.adversarial import keeping_embedded, perturbation, perturbed
from pipeline.model.batching import EpochPlan, Split, keep_ids_on_host
from pipeline.model.checkpoint import TrainState, fingerprint, load_checkpoint, save_checkpoint
from pipeline.model.decision import labels_at
from pipeline.model.devices import all_reduce, autocast, end_processes, start_processes, training_autocast, world
from pipeline.model.inference import evaluate_split, loss_of
from pipeline.model.model_file import save_model_file
from pipeline.model.network import LSTMClassifier, ModelConfig, count_parameters, start_from
from pipeline.model.ngrams import blend_on_validation, load_ngram_stage
from pipeline.model.optimization import make_optimizer, make_scheduler

HISTORY_FIELDS = ("step", "epoch", "lr", "train_loss", "val_loss", "val_accuracy")


def model_config(params: TrainParams, manifest: dict, num_classes: int = 2) -> ModelConfig:
    """The network ``train`` params describe, for the shards of ``manifest``."""
    return ModelConfig(
        num_classes=num_classes,
        vocab_size=manifest["vocab_size"],
        embedding_dim=params.embedding_dim,
        hidden_sizes=params.layer_widths(),
        dropout=params.dropout,
        embedding_dropout=params.embedding_dropout,
        bidirectional=params.bidirectional,
        pooling=params.pooling,
        pad=manifest["pad"],
        pad_id=manifest["pad_id"],
    )


def validate(
    model: LSTMClassifier, val: Split, params: TrainParams, dtype, train_loss: float, train_steps: int
) -> dict:
    """This process's share of the validation, summed over every process: one history row
    (without ``step``, ``epoch`` and ``lr``, which the loop adds)."""
    loss, probs = evaluate_split(model, val, params.batch_size * 4, dtype)
    correct = float((labels_at(probs, params.threshold) == val.labels.cpu().numpy()).sum())
    loss_sum, correct, rows, train_loss, train_steps = all_reduce(
        [loss * len(val), correct, len(val), train_loss, train_steps], val.labels.device
    )
    return {
        "train_loss": train_loss / max(train_steps, 1),
        "val_loss": loss_sum / max(rows, 1),
        "val_accuracy": correct / max(rows, 1),
    }


def record(state: TrainState, row: dict, model: nn.Module, patience: int) -> None:
    """Add a validation to ``state``: keep the weights when they are the best so far, and stop
    after ``patience`` validations without a better loss (0: never)."""
    state.history.append(row)
    if row["val_loss"] < state.best_val_loss:
        state.best_val_loss = row["val_loss"]
        state.best_val_accuracy = row["val_accuracy"]
        state.best_step = row["step"]
        state.best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        state.bad_validations = 0
    else:
        state.bad_validations += 1
    state.stopped = patience > 0 and state.bad_validations >= patience


def train_model(
    train: Split,
    val: Split,
    config: ModelConfig,
    params: TrainParams,
    on_eval: Callable[[dict], None] = lambda row: None,
    checkpoint: Path | None = None,
    checkpoint_fingerprint: str = "",
    pretrained: np.ndarray | dict[str, np.ndarray] | None = None,
) -> tuple[LSTMClassifier, list[dict], dict, dict]:
    """Train; return ``(model with the best validation weights, history, summary, speed)``.

    ``on_eval`` gets each validation's row. With ``checkpoint``, the state is saved there at every
    validation, and with ``params.resume`` training continues from it when it was saved with the
    same ``checkpoint_fingerprint`` (pipeline.model.checkpoint.fingerprint). ``pretrained``: what
    to start from (see :func:`load_pretrained`)."""
    rank, processes = world()
    torch.manual_seed(params.seed)
    device = train.labels.device
    model = LSTMClassifier(config).to(device)
    pretrained_names = [] if pretrained is None else start_from(model, pretrained)
    dtype = training_autocast(params.precision, model, train.ids[:2])
    trained = nn.parallel.DistributedDataParallel(model) if processes > 1 else model
    optimizer = make_optimizer(model, pretrained_names, params)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)  # fp16 needs loss scaling
    scheduler = make_scheduler(optimizer, params, math.ceil(len(train) / params.batch_size) * params.epochs)
    parts = {"model": model, "optimizer": optimizer, "scaler": scaler, "scheduler": scheduler}
    shuffle = torch.Generator().manual_seed(params.seed)  # on the host, where batches are planned
    state = TrainState(epoch_shuffle=shuffle.get_state())
    if params.resume and checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, checkpoint_fingerprint, parts, device) or state
        for row in state.history:
            on_eval(row)
    my_val = val.share(rank, processes)
    adversarial = params.adversarial_epsilon > 0
    running_loss, running_steps = torch.zeros((), device=device), 0
    started = time.perf_counter()

    model.train()
    while state.epoch < params.epochs and not state.stopped:
        epoch = state.epoch
        shuffle.set_state(state.epoch_shuffle)
        plan = EpochPlan.make(train, params.batch_size, params.bucket_by_length, shuffle, rank, processes)
        progress = tqdm(
            range(state.batch, len(plan)),
            f"epoch {epoch + 1}/{params.epochs}",
            leave=False,
            disable=None if rank == 0 else True,  # None: a bar only in a terminal
        )
        for index in progress:
            ids, labels = plan.batch(train, index, config.pad)
            with autocast(device, dtype), keeping_embedded(model.embedding, adversarial) as embedded:
                loss = loss_of(trained(ids).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if adversarial:  # the same batch again, its embedded tokens pushed the way that raises the loss
                push = perturbation(embedded[0], params.adversarial_epsilon, model.embedding)
                with autocast(device, dtype), perturbed(model.embedding, push):
                    scaler.scale(loss_of(trained(ids).float(), labels)).backward()
            if epoch < params.freeze_pretrained_epochs:
                for name in pretrained_names:  # Adam leaves a parameter without a gradient as it is
                    model.get_parameter(name).grad = None
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if params.lr_schedule == "cosine":
                scheduler.step()
            running_loss, running_steps = running_loss + loss.detach(), running_steps + 1
            state.step, state.samples, state.batch = state.step + 1, state.samples + len(labels), index + 1
            last = state.batch == len(plan)
            if last:  # a run resumed from here starts the next epoch
                state.epoch, state.batch, state.epoch_shuffle = epoch + 1, 0, shuffle.get_state()
            if last or (params.eval_every and state.step % params.eval_every == 0):
                lr = optimizer.param_groups[0]["lr"]
                row = {"step": state.step, "epoch": round(epoch + (index + 1) / len(plan), 4), "lr": lr}
                row |= validate(model, my_val, params, dtype, float(running_loss), running_steps)
                running_loss, running_steps = torch.zeros((), device=device), 0
                record(state, row, model, params.patience)
                if params.lr_schedule == "plateau":
                    scheduler.step(row["val_loss"])
                if checkpoint is not None and rank == 0:
                    try:
                        save_checkpoint(checkpoint, checkpoint_fingerprint, state, parts, device)
                    except StageError as err:  # a convenience for resuming: never the end of a training
                        print(f"train: warning: {err}; training goes on without checkpoints", file=sys.stderr)
                        checkpoint = None
                on_eval(row)
                progress.set_postfix(val_loss=f"{row['val_loss']:.4f}")
                if state.stopped:
                    break
        progress.close()
        if rank == 0 and state.history:
            print_epoch(epoch, state, params.patience)
    return finish(model, state, time.perf_counter() - started, device)


def print_epoch(epoch: int, state: TrainState, patience: int) -> None:
    row = state.history[-1]
    print(
        f"epoch {epoch + 1}: train loss {row['train_loss']:.4f}, "
        f"val loss {row['val_loss']:.4f}, val accuracy {row['val_accuracy']:.4f}"
        + (f" (early stop: {patience} validations without improvement)" if state.stopped else "")
    )


def finish(
    model: LSTMClassifier, state: TrainState, seconds: float, device: torch.device
) -> tuple[LSTMClassifier, list[dict], dict, dict]:
    """The best weights loaded, and the summary (reproducible: metrics/train.json) and speed
    (machine-dependent: MLflow only) of the run."""
    if state.best_weights is None:
        raise StageError("training diverged: the validation loss was never finite (try a lower train.lr)")
    model.load_state_dict(state.best_weights)
    samples = int(all_reduce([state.samples], device)[0])
    summary = {
        "best_val_loss": round(state.best_val_loss, 6),
        "best_val_accuracy": round(state.best_val_accuracy, 6),
        "best_step": state.best_step,
        "steps": state.step,
        "epochs_run": state.epoch,
        "samples_seen": samples,
        "stopped_early": state.stopped,
        "parameters": count_parameters(model),
    }
    speed = {"train_seconds": round(seconds, 2), "samples_per_second": round(samples / max(seconds, 1e-9), 1)}
    return model, state.history, summary, speed


def write_history(history: list[dict], path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def load_splits(device: torch.device, placement: str) -> tuple[Split, Split, dict]:
    """The train and validation shards as splits on ``device`` (ids per ``placement``), once
    they are known to fit in memory."""
    manifest = read_manifest(paths.SHARDS_DIR)
    with reading(paths.SHARDS_DIR / MANIFEST):
        rows = manifest["splits"]["train"]["rows"] + manifest["splits"]["val"]["rows"]
    hint = "lower encode.seq_len, or train on a machine with more memory"
    ids_fit(rows, manifest["seq_len"], "the train and validation splits", available_memory(), "this machine", hint)
    train_ids, train_labels, train_lengths, manifest = load_split(paths.SHARDS_DIR, "train")
    val_ids, val_labels, val_lengths, _ = load_split(paths.SHARDS_DIR, "val")
    if len(train_labels) == 0:
        raise StageError("the train split is empty: nothing to train on")
    if len(val_labels) == 0:
        raise StageError("the validation split is empty: raise encode.val_fraction or use a larger test file")
    on_host = keep_ids_on_host(placement, train_ids.nbytes + val_ids.nbytes, device)
    train = Split.from_numpy(train_ids, train_labels, train_lengths, device, on_host)
    return train, Split.from_numpy(val_ids, val_labels, val_lengths, device, on_host), manifest


def main() -> None:
    from pipeline.tracking.training_run import training_run

    params, params_file = stage_params(__doc__)
    device = start_processes(params.train.device)
    rank, processes = world()
    train, val, manifest = load_splits(device, params.train.data_placement)
    classes = params.data.class_names()
    if int(max(train.labels.max(), val.labels.max())) >= len(classes):
        raise StageError(f"the shards hold more classes than data.classes' {len(classes)}: re-run dvc repro")
    config = model_config(params.train, manifest, len(classes))
    if rank == 0:
        where = ", token ids on the host" if train.ids_on_host and device.type == "cuda" else ""
        print(f"train: {len(train)} reviews, validation: {len(val)}, device: {device}, processes: {processes}{where}")
    # everything the outputs need is read before training, not after it
    vocab = load_vocab(paths.VOCAB_FILE)
    preprocessing = Preprocessing.from_dict(manifest)
    pretrained = load_pretrained(params.train, manifest["vocab_size"])
    blend = params.train.blend and len(classes) == 2
    if params.train.blend and not blend and rank == 0:
        print(f"train: {len(classes)} classes: the n-gram blend is for two, so the model is the LSTM alone")
    ngrams, ngram_val = load_ngram_stage(paths.NGRAMS_DIR, len(val)) if blend else (None, None)
    resume_key = fingerprint(params.train, manifest, pretrained)
    extra = {"model.parameters": count_parameters(LSTMClassifier(config)), "processes": processes}
    with training_run(params, manifest, extra, enabled=rank == 0) as run:
        model, history, summary, speed = train_model(
            train, val, config, params.train, run.log_validation, paths.CHECKPOINT_FILE, resume_key, pretrained
        )
        if rank == 0:
            if ngrams is not None:
                lstm_val = evaluate_split(model, val, params.train.batch_size * 4)[1]
                summary |= blend_on_validation(val.labels.cpu().numpy(), lstm_val, ngram_val, params.train.threshold)
            weight = summary.get("blend_weight", 0.0)
            save_model_file(
                paths.MODEL_FILE, model, vocab, preprocessing, params.train.threshold, ngrams, weight, classes
            )
            write_history(history, paths.PLOTS_DIR / "training.csv")
            write_json(paths.METRICS_DIR / "train.json", summary)
            artifacts = [paths.VOCAB_FILE, params_file, paths.SHARDS_DIR / "manifest.json"]
            metrics = {**summary, **speed}
            if pretrained is not None:  # the pretraining's own metrics (their params are the run's pretrain.*)
                metrics |= {f"pretrain_{k}": v for k, v in read_json(paths.METRICS_DIR / "pretrain.json").items()}
            if ngrams is not None:
                metrics |= {f"ngrams_{k}": v for k, v in read_json(paths.METRICS_DIR / "ngrams.json").items()}
            run.log_result(paths.MODEL_FILE, metrics, device, artifacts)
            print(
                f"train: best val loss {summary['best_val_loss']:.4f}, accuracy {summary['best_val_accuracy']:.4f} "
                f"({speed['samples_per_second']:.0f} samples/s on {device}); MLflow run {run.run_id}"
            )
            if ngrams is not None:
                print(
                    f"train: blended with the n-gram model at weight {weight:.2f}: "
                    f"val loss {summary['blend_val_loss']:.4f}, accuracy {summary['blend_val_accuracy']:.4f}"
                )
    end_processes()


if __name__ == "__main__":
    run_main(main)
