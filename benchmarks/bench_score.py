"""Reviews per second and peak memory of scoring a file of new reviews into Parquet, at N rows.

    uv run python benchmarks/bench_score.py --model models/model.pt --rows 100000 1000000

For each N: writes (once, kept in --work-dir) a CSV of N reviews (``id,text``) tiled from the
real Amazon subset's test reviews, scores it in a fresh process with the score stage's code
(``python -m pipeline.predict --file X.csv --output Y.parquet``, which calls the same
``pipeline.model.scoring.score_file``), checks that the output has one row per input row in the
input's order and that its first 500 rows equal ``Predictor.predict`` on the same texts, and
prints the seconds, reviews per second and the scoring process's peak RSS.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import itertools
import sys
import tempfile
from pathlib import Path

import polars as pl
from bench_prep import SHARED, timed

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a model file (models/model.pt)")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "lstm-sentiment-bench")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    predictor = Predictor.from_path(args.model)
    for rows in args.rows:
        source = tiled_csv(rows, args.work_dir)
        output = args.work_dir / f"scored-{rows}.parquet"
        command = [sys.executable, "-m", "pipeline.predict", "--model", str(args.model), "--file", str(source)]
        seconds, peak_gb = timed(command + ["--keep-column", "id", "--output", str(output)])
        scored = pl.read_parquet(output)
        assert scored["row"].to_list() == list(range(1, rows + 1)), "rows out of order or missing"
        assert scored["id"].to_list() == [f"r{i}" for i in range(rows)]
        head = pl.read_csv(source, n_rows=500)["text"].to_list()
        assert scored["probability"].head(500).to_list() == predictor.predict(head)["probability"]
        print(f"{rows} reviews: {seconds:.1f} s, {rows / seconds:.0f} reviews/s, peak RSS {peak_gb:.2f} GB", flush=True)


if __name__ == "__main__":
    main()
