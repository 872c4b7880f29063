r"""Train several configs on existing shards and print validation and test accuracy for each.

    uv run python benchmarks/train_sweep.py SHARDS_DIR \
        "embedding_dim=128, hidden_size=256, bidirectional=True, pooling='mean', embedding_dropout=0.3" ...

SHARDS_DIR is an encode stage output (data/processed/shards of a run on the data you want).
Each argument is a set of ``train`` params (Python keyword syntax, TrainParams names) over the
defaults; each config calls ``pipeline.train.train_model`` exactly as the train stage does, on
the CPU or GPU (``device=...``), and scores the test split with the weights that had the best
validation loss. For the accuracy tables in RESULTS.md; nothing is logged to MLflow.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

from pipeline.core.params import TrainParams  # noqa: E402
from pipeline.data.shards import load_split  # noqa: E402
from pipeline.model.batching import Split  # noqa: E402
from pipeline.model.decision import labels_at  # noqa: E402
from pipeline.model.devices import pick_device  # noqa: E402
from pipeline.model.inference import evaluate_split  # noqa: E402
from pipeline.train import model_config, train_model  # noqa: E402


def parse_config(spec: str) -> dict:
    call = ast.parse(f"f({spec})", mode="eval").body
    return {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shards", type=Path)
    parser.add_argument("configs", nargs="+", help="train params, e.g. \"hidden_size=256, pooling='mean'\"")
    args = parser.parse_args()
    train_ids, train_labels, train_lengths, manifest = load_split(args.shards, "train")
    val = load_split(args.shards, "val")[:3]
    test_ids, test_labels, test_lengths, _ = load_split(args.shards, "test")
    for spec in args.configs:
        params = TrainParams(**parse_config(spec))
        device = pick_device(params.device)
        started = time.perf_counter()
        model, history, summary, speed = train_model(
            Split.from_numpy(train_ids, train_labels, train_lengths, device),
            Split.from_numpy(*val, device),
            model_config(params, manifest),
            params,
        )
        test = Split.from_numpy(test_ids, test_labels, test_lengths, device)
        _, probs = evaluate_split(model, test, 512)
        accuracy = float((labels_at(probs, params.threshold) == test_labels).mean())
        curve = [round(row["val_accuracy"], 4) for row in history]
        print(
            f"{spec} | val accuracy by validation {curve} | best val {summary['best_val_accuracy']:.4f} "
            f"| TEST {accuracy:.4f} | {speed['samples_per_second']:.0f} samples/s, "
            f"{time.perf_counter() - started:.0f} s on {device}",
            flush=True,
        )


if __name__ == "__main__":
    main()
