"""Training speed: a faithful tutorial-style loop vs ours, same shards, same architecture, one run.

The shards come from the real Amazon subset by default: this script runs ingest -> clean ->
vocab -> encode (seq_len 200) once into --work-dir. Then, on the same train/validation shards:

- the tutorial's loop: ``DataLoader`` over CPU tensors (shuffle, batch 400, drop_last), the model
  moved batch by batch, fp32, Linear + sigmoid applied to every time step and the last one read,
  the hidden state carried across batches, always the full padded length;
- ours: ``pipeline.train.train_model`` (data on the device once, or with ``--placement host``
  each batch copied from pinned host memory; length buckets, per-batch trimming, autocast on a
  GPU), validation after each epoch included in its time;

and prints samples/s for both, the ratio, and the validation accuracy each reached after the
same number of epochs. The process is a plain one with PyTorch's defaults, as a tutorial reader
runs it (importing the pipeline changes nothing global): the tutorial's LSTM takes whatever
kernels PyTorch picks, oneDNN's included; ours runs its LSTM as the train stage does (on the
portable paths, without oneDNN: pipeline.core.cpu_math; ``LSTM_SENTIMENT_CPU_MATH=native`` lifts
that).

    uv run python benchmarks/bench_train.py --config small     # the CPU comparison
    uv run python benchmarks/bench_train.py --config tutorial  # the GPU comparison (400/512/2 layers)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pipeline.core.params import TrainParams
from pipeline.data.shards import load_split
from pipeline.model.batching import Split
from pipeline.model.devices import pick_device
from pipeline.train import model_config, train_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "amazon_polarity"
CONFIGS = {
    # the CPU comparison
    "small": {"embedding_dim": 64, "hidden_size": 64, "num_layers": 1, "dropout": 0.5, "batch_size": 400},
    # the tutorial's own model
    "tutorial": {"embedding_dim": 400, "hidden_size": 512, "num_layers": 2, "dropout": 0.5, "batch_size": 400},
}


def build_shards(train_file: Path, test_file: Path, work_dir: Path) -> Path:
    """Run the four data stages into ``work_dir`` (skipped when its shards already exist)."""
    shards = work_dir / "data" / "processed" / "shards"
    if (shards / "manifest.json").exists():
        return shards
    work_dir.mkdir(parents=True, exist_ok=True)
    data = {"train": str(train_file.resolve()), "test": str(test_file.resolve())}
    params = {"data": data, "encode": {"seq_len": 200}}
    (work_dir / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("ingest", "clean", "vocab", "encode"):
        subprocess.run([sys.executable, "-m", f"pipeline.{stage}"], cwd=work_dir, check=True, stdout=subprocess.DEVNULL)
    return shards


class TutorialLSTM(nn.Module):
    """The tutorial's model, bugs included: sigmoid on every step, the last padded step read."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(
            embedding_dim, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0, batch_first=True
        )
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x, hidden):
        batch = x.size(0)
        out, hidden = self.lstm(self.embedding(x), hidden)
        out = torch.sigmoid(self.fc(self.dropout(out.contiguous().view(-1, self.hidden_size))))
        return out.view(batch, -1)[:, -1], hidden

    def init_hidden(self, batch: int, device):
        zeros = torch.zeros(self.num_layers, batch, self.hidden_size, device=device)
        return zeros, zeros.clone()


def tutorial_loop(train, val, vocab_size: int, config: dict, epochs: int, device, seed: int) -> tuple[float, float]:
    """``(train samples/s, validation accuracy)`` of the tutorial's training loop."""
    torch.manual_seed(seed)
    batch = config["batch_size"]
    model = TutorialLSTM(
        vocab_size, config["embedding_dim"], config["hidden_size"], config["num_layers"], config["dropout"]
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    loss_fn = nn.BCELoss()
    ids, labels = torch.from_numpy(train[0].astype(np.int64)), torch.from_numpy(train[1].astype(np.float32))
    loader = DataLoader(TensorDataset(ids, labels), shuffle=True, batch_size=batch, drop_last=True)
    samples, seconds = 0, 0.0
    for _ in range(epochs):
        model.train()
        hidden = model.init_hidden(batch, device)
        start = time.perf_counter()
        for inputs, targets in loader:
            hidden = tuple(h.data for h in hidden)  # carried over from the previous (unrelated) batch
            inputs, targets = inputs.to(device), targets.to(device)
            model.zero_grad()
            output, hidden = model(inputs, hidden)
            loss = loss_fn(output.squeeze(), targets)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5)
            optimizer.step()
            samples += len(targets)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start
    model.eval()
    correct = 0
    val_ids, val_labels = torch.from_numpy(val[0].astype(np.int64)), val[1]
    with torch.no_grad():
        for begin in range(0, len(val_labels), batch):
            chunk = val_ids[begin : begin + batch].to(device)
            output, _ = model(chunk, model.init_hidden(len(chunk), device))
            correct += int(((output.cpu().numpy() >= 0.5) == val_labels[begin : begin + batch].astype(bool)).sum())
    return samples / seconds, correct / len(val_labels)


def ours(
    train, val, manifest: dict, config: dict, epochs: int, device, seed: int, on_host: bool
) -> tuple[float, float]:
    params = TrainParams(**config, epochs=epochs, lr=0.005, seed=seed)
    _, _, summary, speed = train_model(
        Split.from_numpy(*train, device, on_host),
        Split.from_numpy(*val, device, on_host),
        model_config(params, manifest),
        params,
    )
    return speed["samples_per_second"], summary["best_val_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--train-file", type=Path, default=SHARED / "train.ft.txt.bz2")
    parser.add_argument("--test-file", type=Path, default=SHARED / "test.ft.txt.bz2")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/lstm-sentiment-bench/train-shards"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="one run of each loop per seed")
    parser.add_argument("--skip-tutorial", action="store_true", help="time ours only")
    parser.add_argument(
        "--placement",
        choices=["device", "host"],
        default="device",
        help="ours with the token ids on the device, or on the host with each batch copied (train.data_placement)",
    )
    args = parser.parse_args()
    if not args.train_file.exists():
        sys.exit(f"{args.train_file}: not found (the real data lives in ../shared/data; see DESIGN.md)")

    shards = build_shards(args.train_file, args.test_file, args.work_dir)
    train_ids, train_labels, train_lengths, manifest = load_split(shards, "train")
    val = load_split(shards, "val")[:3]
    train = (train_ids, train_labels, train_lengths)
    device = pick_device(args.device)
    config = CONFIGS[args.config]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.config} config {config}, {args.epochs} epoch(s), seq_len {manifest['seq_len']}")
    print(f"{len(train_labels):,} train / {len(val[1]):,} validation reviews; device: {name}")
    print(f"ours keeps the token ids on the {args.placement}")

    on_host = args.placement == "host"
    for seed in args.seeds:
        our_speed, our_accuracy = ours(train, val, manifest, config, args.epochs, device, seed, on_host)
        print(f"  seed {seed} ours     : {our_speed:9,.0f} samples/s   val accuracy {our_accuracy:.4f}", flush=True)
        if args.skip_tutorial:
            continue
        speed, accuracy = tutorial_loop(train, val, manifest["vocab_size"], config, args.epochs, device, seed)
        print(f"  seed {seed} tutorial : {speed:9,.0f} samples/s   val accuracy {accuracy:.4f}")
        print(f"  seed {seed} speed-up : {our_speed / speed:.2f}x", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
