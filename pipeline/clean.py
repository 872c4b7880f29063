"""clean: review text -> normalised tokens (pipeline.data.text's cleaning and NLTK-faithful tokenizer).

Reads ``data/interim/reviews/{train,test}.parquet`` and writes ``data/interim/tokens/`` with the
same rows as ``(label, tokens)``, in batches of 20k reviews on every core; params.yaml ``clean``
switches each cleaning step and ``tokenize.level`` picks words or characters.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.core import paths
from pipeline.core.cli import StageError, run_main, stage_params
from pipeline.core.params import CleanParams, TokenizeParams
from pipeline.data.files import atomic_path, parquet_batches
from pipeline.data.text import text_tokens

BATCH_ROWS = 20_000
TOKEN_SCHEMA = pa.schema([("label", pa.int8()), ("tokens", pa.large_list(pa.large_string()))])


def tokenize(frame: pl.DataFrame, clean: CleanParams, tokenize: TokenizeParams) -> pl.DataFrame:
    """``(label, text)`` -> ``(label, tokens)``."""
    return frame.select(pl.col("label"), text_tokens(pl.col("text"), clean, tokenize).alias("tokens"))


def clean_file(source: Path, target: Path, clean: CleanParams, level: TokenizeParams) -> int:
    """Tokenize one reviews file into ``target``, batch by batch, in order.

    Batches are tokenized on a few threads at once (Polars releases the GIL, so this uses
    every core) with a bounded window of batches in flight: memory stays bounded by the batch
    size whatever the file size, and the output is the same bytes on every run."""
    if not source.exists():
        raise StageError(f"{source}: not found (run the ingest stage first: dvc repro ingest)")
    workers = os.cpu_count() or 1
    rows_in = pq.read_metadata(source).num_rows

    def work(batch: pa.RecordBatch) -> pa.Table:
        return tokenize(pl.from_arrow(batch), clean, level).to_arrow().cast(TOKEN_SCHEMA)

    rows = 0
    with (
        pq.ParquetWriter(target, TOKEN_SCHEMA, compression="lz4") as writer,
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=rows_in, unit=" reviews", desc=f"clean {source.stem}", disable=None) as bar,
    ):
        in_flight: deque[Future] = deque()
        batches = parquet_batches(source, BATCH_ROWS)
        while True:
            while len(in_flight) <= workers and (batch := next(batches, None)) is not None:
                in_flight.append(pool.submit(work, batch))
            if not in_flight:
                break
            table = in_flight.popleft().result()
            writer.write_table(table)
            rows += table.num_rows
            bar.update(table.num_rows)
    return rows


def main() -> None:
    params, _ = stage_params(__doc__)
    with atomic_path(paths.TOKENS_DIR) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        for split in paths.SPLITS:
            rows = clean_file(
                paths.REVIEWS_DIR / f"{split}.parquet", tmp_dir / f"{split}.parquet", params.clean, params.tokenize
            )
            print(f"clean {split}: {rows} reviews tokenized ({params.tokenize.level} level)")


if __name__ == "__main__":
    run_main(main)
