r"""Test accuracy of a recipe against the TF-IDF baseline on a real dataset, over several seeds.

    uv run python benchmarks/accuracy.py ../shared/data/imdb --recipe recipes/real-data.yaml --seeds 1 2 3
    uv run python benchmarks/accuracy.py ../shared/data/amazon_polarity --set train.init=random --seeds 1 2 3

DATA is a folder with ``train.ft.txt.bz2`` and ``test.ft.txt.bz2``, or one file of reviews that
ingest splits into train and test (``data.test`` set to it too; its format, columns and classes
as ``--set`` params):

    uv run python benchmarks/accuracy.py ../shared/data/twitter_entity/twitter_training.csv \
      --recipe recipes/real-data.yaml --set data.header=false --set 'data.columns=[id,entity,sentiment,text]' \
      --set data.label_column=sentiment --set data.max_reject_fraction=0.02 --set 'data.classes=[...]'

The pipeline itself runs, with DVC, in a work folder (a copy of this repository's tracked and
untracked files, kept between calls): per seed, ``dvc repro`` with the recipe's params (a YAML
mapping of dotted keys, then ``--set`` overrides) and ``train.seed`` set to that seed. Data,
pretrain, ngrams and baseline stages run once and come from DVC's cache for the other seeds. Prints
every seed's test accuracy (the test half of the test file, the same rows as the baseline's; for a
blended model also each part's), the mean, the sample standard deviation and the range, and the wall
time of each seed's run and of each stage it ran.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def parse_value(text: str) -> object:
    return yaml.safe_load(text)  # "0.003" -> float, "true" -> bool, "[128, 64]" -> list, as dvc exp run -S


def copy_repository(work: Path) -> None:
    """This repository's files into ``work``; into an existing work folder only the code and
    config, so the outputs and dvc.lock of earlier runs stay (DVC's cache then skips stages)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    outputs = ("dvc.lock", "metrics/", "plots/")
    fresh = not (work / "dvc.yaml").exists()
    for name in files:
        if (REPO / name).is_file() and (fresh or not name.startswith(outputs)):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, work / name)
    if not (work / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)


def set_params(work: Path, overrides: dict[str, object]) -> None:
    path = work / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        params[section][name] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def repro(work: Path) -> tuple[int, str, dict[str, float]]:
    """``dvc repro`` in ``work``: its exit status, its output, and the wall time of each stage it
    ran (from one "Running stage" line to the next, or to the end)."""
    process = subprocess.Popen(
        [str(BIN / "dvc"), "repro"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines, stage_seconds, current, since = [], {}, None, time.perf_counter()
    for line in process.stdout:
        lines.append(line)
        started = re.match(r"Running stage '(\w+)'", line)
        if started:
            now = time.perf_counter()
            if current:
                stage_seconds[current] = now - since
            current, since = started.group(1), now
    returncode = process.wait()
    if current:
        stage_seconds[current] = time.perf_counter() - since
    return returncode, "".join(lines), stage_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "data", type=Path, help="folder with train.ft.txt.bz2 and test.ft.txt.bz2, or one file that ingest splits"
    )
    parser.add_argument("--recipe", type=Path, help="YAML mapping of dotted params, e.g. recipes/real-data.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a param over the recipe")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--work-dir", type=Path, help="default: /tmp/lstm-sentiment-accuracy/<data folder name>")
    args = parser.parse_args()
    if args.data.is_file():  # no test file: data.test = data.train, ingest holds out data.test_fraction
        train_file = test_file = args.data
    else:
        train_file, test_file = (args.data / f"{split}.ft.txt.bz2" for split in ("train", "test"))
    if not train_file.exists() or not test_file.exists():
        sys.exit(f"{args.data}: needs train.ft.txt.bz2 and test.ft.txt.bz2, or is one file of reviews")
    overrides = yaml.safe_load(args.recipe.read_text()) if args.recipe else {}
    overrides.update((key, parse_value(value)) for key, value in (item.split("=", 1) for item in args.set))
    overrides.update({"data.train": str(train_file.resolve()), "data.test": str(test_file.resolve())})
    work = args.work_dir or Path("/tmp/lstm-sentiment-accuracy") / args.data.resolve().name.split(".")[0]
    work.mkdir(parents=True, exist_ok=True)
    copy_repository(work)
    print(f"{args.data}: {json.dumps({k: v for k, v in overrides.items() if k not in ('data.train', 'data.test')})}")

    accuracies = []
    for seed in args.seeds:
        set_params(work, {**overrides, "train.seed": seed})
        started = time.perf_counter()
        returncode, output, stage_seconds = repro(work)
        seconds = time.perf_counter() - started
        if returncode != 0:
            sys.exit(f"dvc repro failed for seed {seed}:\n{output[-6000:]}")
        ran = ", ".join(f"{stage} {took:.0f} s" for stage, took in stage_seconds.items())
        evaluation = json.loads((work / "metrics" / "eval.json").read_text())
        accuracy = evaluation["accuracy"]
        parts = (
            f"; the LSTM alone {evaluation['lstm_accuracy']:.4f}, the n-gram model alone "
            f"{evaluation['ngram_accuracy']:.4f}, blend weight {evaluation['blend_weight']:.2f}"
            if "blend_weight" in evaluation
            else ""
        )
        if "weighted_f1" in evaluation:  # more than two classes
            parts += f"; macro F1 {evaluation['f1']:.4f}"
        train = json.loads((work / "metrics" / "train.json").read_text())
        accuracies.append(accuracy)
        print(
            f"  seed {seed}: test accuracy {accuracy:.4f} (best val {train['best_val_accuracy']:.4f} "
            f"at step {train['best_step']}){parts}, {seconds:.0f} s: {ran or 'nothing run (cached)'}",
            flush=True,
        )
    baseline_metrics = json.loads((work / "metrics" / "baseline.json").read_text())
    baseline = baseline_metrics["test_accuracy"]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(
        f"test accuracy: mean {statistics.mean(accuracies):.4f}, sd {spread:.4f}, "
        f"range {min(accuracies):.4f}-{max(accuracies):.4f} over {len(accuracies)} seeds; "
        f"TF-IDF baseline {baseline:.4f}"
        + (f" (macro F1 {baseline_metrics['test_f1']:.4f})" if "weighted_f1" in evaluation else "")
    )


if __name__ == "__main__":
    main()
