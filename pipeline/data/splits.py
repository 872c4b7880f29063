"""One file's reviews split into train and test, for data that comes without a test file: of each
class a seeded random share to test, the rest to train, each split in the file's order (the same
labels, share and seed give the same split, so DVC's cache holds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def stratified_test_rows(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A mask of the rows that go to test: ``round(fraction * n)`` of each class's ``n`` rows."""
    is_test = np.zeros(len(labels), bool)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        is_test[rng.permutation(rows)[: round(fraction * len(rows))]] = True
    return is_test


def write_split(source: Path, out_dir: Path, is_test: np.ndarray, schema: pa.Schema) -> None:
    """``source``'s rows into ``out_dir``'s train.parquet and test.parquet by ``is_test``, a batch
    at a time."""
    start = 0
    with (
        pq.ParquetFile(source) as reviews,
        pq.ParquetWriter(out_dir / "train.parquet", schema, compression="zstd") as train,
        pq.ParquetWriter(out_dir / "test.parquet", schema, compression="zstd") as test,
    ):
        for batch in reviews.iter_batches(batch_size=100_000):
            chosen = pa.array(is_test[start : start + len(batch)])
            start += len(batch)
            test.write_table(pa.Table.from_batches([batch.filter(chosen)]).cast(schema))
            train.write_table(pa.Table.from_batches([batch.filter(pc.invert(chosen))]).cast(schema))
