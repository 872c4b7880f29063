"""Reviews per second and peak memory of the score stage, at N rows of real reviews.

    uv run python benchmarks/bench_score.py --model models/model.pt --rows 100000 1000000

For each N: writes (once, kept in --work-dir) a CSV of N reviews (``id,text``) tiled from the
real Amazon subset's test reviews, runs the score stage on it in a fresh process
(``python -m pipeline.score`` in a folder with ``data.score: [that CSV]``, ``data.keep_columns:
[id]`` and the model as ``models/model.pt``), checks that the output has one row per input row
in the input's order and that its probabilities and sentiments equal ``Predictor.predict``'s,
the code of ``python -m pipeline.predict``, on the same texts (every row up to --check-rows),
and prints the seconds, reviews per second and the stage process's peak RSS.
"""

from __future__ import annotations

from pipeline.core.cpu_math import pin_code_paths

pin_code_paths()  # as the stage and pipeline.predict do, before NumPy and PyTorch load

import argparse
import bz2
import csv
import itertools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import polars as pl
import yaml
from bench_prep import REPO, SHARED, timed

from pipeline.model.inference import Predictor


def tiled_csv(rows: int, work_dir: Path) -> Path:
    target = work_dir / f"amazon-tiled-{rows}.csv"
    if target.exists():
        return target
    with bz2.open(SHARED / "test.ft.txt.bz2", "rt", encoding="utf-8") as f:
        texts = [line.rstrip("\n").split(" ", 1)[1] for line in f]
    with target.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        writer.writerows([f"r{i}", text] for i, text in zip(range(rows), itertools.cycle(texts)))
    return target


def run_score_stage(model: Path, source: Path, folder: Path) -> tuple[float, float, Path]:
    """The score stage on ``source`` in ``folder``: ``(seconds, peak RSS in GB, output)``."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(model, folder / "models" / "model.pt")
    params = {"data": {"score": [str(source)], "keep_columns": ["id"]}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    os.environ["PYTHONPATH"] = str(REPO)
    seconds, peak_gb = timed([sys.executable, "-m", "pipeline.score"], cwd=folder)
    return seconds, peak_gb, folder / "data" / "predictions" / "scored.parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a model file (models/model.pt)")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--check-rows", type=int, default=100_000, help="rows compared with predict's answers")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "lstm-sentiment-bench")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    predictor = Predictor.from_path(args.model)
    for rows in args.rows:
        source = tiled_csv(rows, args.work_dir)
        with tempfile.TemporaryDirectory() as folder:
            seconds, peak_gb, output = run_score_stage(args.model, source.resolve(), Path(folder))
            scored = pl.read_parquet(output)
        assert scored["row"].to_list() == list(range(1, rows + 1)), "rows out of order or missing"
        assert scored["id"].to_list() == [f"r{i}" for i in range(rows)]
        checked = min(rows, args.check_rows)
        texts = pl.read_csv(source, n_rows=checked)["text"].to_list()
        expected = predictor.predict(texts)
        assert scored["probability"].head(checked).to_list() == expected["probability"]
        assert scored["sentiment"].head(checked).to_list() == expected["sentiment"]
        print(
            f"{rows} reviews: {seconds:.1f} s, {rows / seconds:.0f} reviews/s, peak RSS {peak_gb:.2f} GB "
            f"(first {checked} rows equal to predict's)",
            flush=True,
        )


if __name__ == "__main__":
    main()
