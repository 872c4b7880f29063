"""Raw text files (bz2, gzip or plain text) read a block of lines at a time, with bounded memory.

The ingest stage reads the review dumps with it, the pretrain stage its extra unlabelled text.
"""

from __future__ import annotations

import bz2
import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
from tqdm import tqdm

from pipeline.core.cli import StageError

BLOCK_BYTES = 16 << 20  # decompressed bytes parsed at a time


def open_input(path: Path, hint: str = "") -> tuple[BinaryIO, BinaryIO]:
    """``(compressed file, decompressed stream)`` for a bz2, gzip or plain-text input, told
    apart by their magic bytes, with a clear error for what cannot be read (``hint`` ends the
    one for a missing file)."""
    if not path.exists():
        raise StageError(f"{path}: input file not found{hint}")
    if path.is_dir():
        raise StageError(f"{path}: is a directory, expected a review file")
    if path.stat().st_size == 0:
        raise StageError(f"{path}: empty file, no reviews to read")
    raw = path.open("rb")
    magic = raw.read(3)
    raw.seek(0)
    if magic.startswith(b"BZh"):
        # indexed_bzip2 decodes bz2 blocks on every core; the standard module is the fallback
        try:
            import indexed_bzip2
        except ImportError:
            return raw, bz2.BZ2File(raw)
        return raw, indexed_bzip2.open(raw, parallelization=os.cpu_count() or 1)
    if magic.startswith(b"\x1f\x8b"):
        return raw, gzip.GzipFile(fileobj=raw)
    if path.suffix == ".bz2":
        raw.close()
        raise StageError(f"{path}: not a bz2 file (no bz2 header), though its name ends in .bz2")
    return raw, raw


def read_line_blocks(path: Path, hint: str = "") -> Iterator[pa.Array]:
    """Yield the file's lines (Arrow binary, each with its newline) a block at a time."""
    raw, stream = open_input(path, hint)
    size = path.stat().st_size
    progress = tqdm(total=size, unit="B", unit_scale=True, desc=f"read {path.name}", leave=False, disable=None)
    with raw, stream, progress:
        carry = b""
        while True:
            try:
                block = stream.read(BLOCK_BYTES)
            except (OSError, EOFError, ValueError, RuntimeError) as err:
                raise StageError(f"{path}: corrupt or truncated compressed data ({err})") from None
            progress.update(raw.tell() - progress.n)  # progress in compressed bytes read
            if not block:
                break
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0:  # a single line longer than the block: keep reading
                carry = data
                continue
            carry = data[cut + 1 :]
            yield split_lines(data[: cut + 1])
        if carry:  # last line without a trailing newline
            yield split_lines(carry)


def split_lines(data: bytes) -> pa.Array:
    """Arrow binary array of the lines in ``data``, each keeping its newline (zero-copy)."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n")) + 1
    if not len(ends) or ends[-1] != len(data):
        ends = np.append(ends, len(data))
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(ends), buffers)


def decode_lines(lines: pl.Series) -> pl.Series:
    """Binary lines -> String, null where a line is not valid UTF-8."""
    try:
        return lines.cast(pl.String)
    except pl.exceptions.ComputeError:  # rare: find the bad lines one by one (slow path)
        return pl.Series(lines.name, [_decode_or_none(raw) for raw in lines], pl.String)


def without_fasttext_label(text: pl.Expr) -> pl.Expr:
    """A line's text without its leading fastText label (``__label__2``, after a BOM if the line
    has one) and without surrounding whitespace."""
    return text.str.replace(r"^\ufeff?__label__\S*", "").str.strip_chars()


def _decode_or_none(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
