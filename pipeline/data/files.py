"""Reading and writing the pipeline's files: atomic outputs, JSON, hashes, Parquet in batches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.cli import StageError


def parquet_batches(path: str | Path, batch_rows: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of at most ``batch_rows`` rows, in file order, one row group at a time.

    One ``iter_batches`` reader per row group: a single reader over the whole file keeps memory
    it no longer needs (RSS grew linearly to 0.9 GB over a 3.6M-review token file; per row group
    it stays at 0.2 GB), the same family of leaks as apache/arrow#39808."""
    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):
        yield from parquet.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns)


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; rename it into place only on success.

    Works for files and directories, so an interrupted stage never leaves a half output; what a
    killed one left (a sibling named after a process that is gone) goes the next time.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for left in final.parent.glob(f".{final.name}.tmp-*"):
        pid = left.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _process_exists(int(pid)):
            _remove(left)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        _remove(final)
        os.replace(tmp, final)
    finally:
        _remove(tmp)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(path: str | Path, data: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> object:
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: not found (run the earlier stages first: dvc repro)")
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
