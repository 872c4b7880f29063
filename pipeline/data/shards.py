"""The encode stage's output format: NumPy shards per split plus ``manifest.json``.

``shards/{train,val,test}/{ids,labels,lengths}-NNNNN.npy``: ids int32 ``[rows, seq_len]``, labels
int8, lengths int32 (real ids kept per row). The manifest lists the shards and records the
settings that made them (cleaning, tokenizing, ``seq_len``, truncation, padding, the validation
split), so later stages and the model file read them from the data, never from params.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from pipeline.core.cli import StageError
from pipeline.data.files import read_json, reading

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"


def available_memory() -> int:
    """Bytes of memory this machine can still give without swapping."""
    return psutil.virtual_memory().available


def size(count: float) -> str:
    """A byte count for people: ``1.2 TiB``."""
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    while count >= 1024 and len(units) > 1:
        count, units = count / 1024, units[1:]
    return f"{count:.1f} {units[0]}"


def ids_fit(rows: int, seq_len: int, what: str, free: int | None, where: str, hint: str) -> None:
    """Stop before the work when ``rows`` x ``seq_len`` int32 ids cannot fit in ``free`` bytes."""
    need = rows * seq_len * np.dtype(np.int32).itemsize
    if free is not None and need > free:
        raise StageError(
            f"encode.seq_len={seq_len}: {what} of {rows} rows x {seq_len} ids need {size(need)}, "
            f"and {where} has {size(free)} ({hint})"
        )


def validation_mask(rows: int, val_fraction: float, seed: int) -> np.ndarray:
    """True for the rows of the test file that become the validation split (seeded); the rest
    are the test split. The encode and baseline stages cut the test file with it."""
    chosen = np.random.default_rng(seed).permutation(rows)[: round(rows * val_fraction)]
    mask = np.zeros(rows, dtype=bool)
    mask[chosen] = True
    return mask


@dataclass
class ShardWriter:
    """Buffers encoded rows of one split and writes ``shard_rows``-row ``.npy`` shards."""

    root: Path
    split: str
    seq_len: int
    shard_rows: int
    rows: int = 0
    class_rows: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int64))  # reviews per class id
    shards: list[dict] = field(default_factory=list)
    _pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray) -> None:
        self._pending.append((ids, labels, lengths))
        self.rows += len(labels)
        counts = np.bincount(labels.astype(np.int64), minlength=len(self.class_rows))
        self.class_rows = np.pad(self.class_rows, (0, len(counts) - len(self.class_rows))) + counts
        while sum(len(part[1]) for part in self._pending) >= self.shard_rows:
            self._write(self.shard_rows)

    def close(self) -> dict:
        """Write what is left; return this split's entry of the manifest."""
        pending = sum(len(part[1]) for part in self._pending)
        if pending or not self.shards:  # an empty split still gets one (empty) shard
            self._write(pending)
        shares = self.class_rows / max(self.rows, 1)
        if len(shares) == 2:
            return {"rows": self.rows, "positive_fraction": round(float(shares[1]), 6), "shards": self.shards}
        return {"rows": self.rows, "class_fractions": [round(float(x), 6) for x in shares], "shards": self.shards}

    def _write(self, rows: int) -> None:
        ids, labels, lengths = (
            np.concatenate(parts)
            for parts in zip(
                (np.zeros((0, self.seq_len), np.int32), np.zeros(0, np.int8), np.zeros(0, np.int32)),
                *self._pending,
                strict=True,
            )
        )
        self._pending = [(ids[rows:], labels[rows:], lengths[rows:])]
        entry = {"rows": rows}
        (self.root / self.split).mkdir(parents=True, exist_ok=True)
        for name, array in (("ids", ids[:rows]), ("labels", labels[:rows]), ("lengths", lengths[:rows])):
            relative = f"{self.split}/{name}-{len(self.shards):05d}.npy"
            np.save(self.root / relative, np.ascontiguousarray(array), allow_pickle=False)
            entry[name] = relative
        self.shards.append(entry)


DTYPES = {"ids": np.int32, "labels": np.int8, "lengths": np.int32}


def read_manifest(shards_dir: Path) -> dict:
    return read_json(shards_dir / MANIFEST, ("seq_len", "pad", "pad_id", "vocab_size", "splits"))


def load_split(shards_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """``(ids, labels, lengths, manifest)`` of one split, shards concatenated; every shard checked
    against the manifest (dtype, shape, rows) as it is read."""
    manifest = read_manifest(shards_dir)
    with reading(shards_dir / MANIFEST):
        entry = manifest["splits"][split]
        seq_len, shards = int(manifest["seq_len"]), list(entry["shards"])
        if sum(int(shard["rows"]) for shard in shards) != entry["rows"]:
            raise ValueError(f"the {split} shards' rows do not add up to {entry['rows']}")
    parts = {name: [] for name in DTYPES}
    for shard in shards:
        for name, dtype in DTYPES.items():
            path = shards_dir / shard[name]
            with reading(path):
                array = np.load(path, allow_pickle=False)
                shape = (shard["rows"], seq_len) if name == "ids" else (shard["rows"],)
                if array.dtype != dtype or array.shape != shape:
                    raise ValueError(
                        f"{array.dtype} {list(array.shape)}, the manifest says {dtype.__name__} {list(shape)}"
                    )
            parts[name].append(array)
    ids, labels, lengths = (np.concatenate(parts[name]) for name in DTYPES)
    return ids.reshape(-1, seq_len), labels, lengths, manifest


def rows_of_test_split(manifest: dict) -> np.ndarray:
    """Row numbers in the test reviews file (data/interim/reviews/test.parquet) of the test
    split's rows, in shard order."""
    rows = manifest["splits"]["val"]["rows"] + manifest["splits"]["test"]["rows"]
    return np.flatnonzero(~validation_mask(rows, manifest["val_fraction"], manifest["seed"]))
