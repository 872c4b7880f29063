"""encode: tokens + vocab -> fixed-length id matrices in NumPy shards.

Unknown tokens get ``<unk>`` (id 1), never the pad id (the tutorial's bug). Each review is cut
to ``seq_len`` tokens (``truncate: keep_first`` keeps the beginning, as the tutorial) and padded
with id 0 on the ``pad`` side (``left`` as the tutorial, so the last real token is always the
last column). The test file is split, seeded, into ``val`` (``val_fraction``) and ``test``.

Output: ``shards/{train,val,test}/{ids,labels,lengths}-NNNNN.npy`` and ``shards/manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline import paths
from pipeline.common import StageError, atomic_path, parquet_batches, read_json, run_main, stage_params, write_json
from pipeline.params import EncodeParams
from pipeline.vocab import PAD_ID, UNK_ID, load_vocab

BATCH_ROWS = 20_000
OUTPUT_SPLITS = ("train", "val", "test")


def token_ids(tokens: pl.Expr, vocab: list[str]) -> pl.Expr:
    """List[String] -> List[Int32] ids; tokens not in the vocabulary get ``UNK_ID``."""
    return tokens.list.eval(
        pl.element().replace_strict(vocab, range(len(vocab)), default=UNK_ID, return_dtype=pl.Int32)
    )


def pad_and_truncate(ids: pl.Series, params: EncodeParams) -> tuple[np.ndarray, np.ndarray]:
    """List[Int32] ids -> ``(matrix int32 [rows, seq_len], lengths int32 [rows])``.

    ``lengths`` counts the real (non-pad) tokens kept in each row.
    """
    seq_len = params.seq_len
    kept = ids.list.head(seq_len) if params.truncate == "keep_first" else ids.list.tail(seq_len)
    lengths = kept.list.len().fill_null(0).to_numpy()
    values = kept.to_arrow().flatten().to_numpy()  # Arrow's flatten skips empty lists, unlike explode
    columns = np.arange(seq_len)
    # the real slots of each row, in row-major order: exactly the order of ``values``
    if params.pad == "left":
        real = columns >= (seq_len - lengths)[:, None]
    else:
        real = columns < lengths[:, None]
    matrix = np.full((len(lengths), seq_len), PAD_ID, dtype=np.int32)
    matrix[real] = values
    return matrix, lengths.astype(np.int32)


def validation_mask(rows: int, params: EncodeParams) -> np.ndarray:
    """True for the rows of the test file that become the validation split (seeded)."""
    chosen = np.random.default_rng(params.seed).permutation(rows)[: round(rows * params.val_fraction)]
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
    positive: int = 0
    shards: list[dict] = field(default_factory=list)
    _pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray) -> None:
        self._pending.append((ids, labels, lengths))
        self.rows += len(labels)
        self.positive += int(labels.sum())
        while sum(len(part[1]) for part in self._pending) >= self.shard_rows:
            self._write(self.shard_rows)

    def close(self) -> dict:
        pending = sum(len(part[1]) for part in self._pending)
        if pending or not self.shards:  # an empty split still gets one (empty) shard
            self._write(pending)
        return {
            "rows": self.rows,
            "positive_fraction": round(self.positive / max(self.rows, 1), 6),
            "shards": self.shards,
        }

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


def encode_batch(frame: pl.DataFrame, vocab: list[str], params: EncodeParams) -> dict[str, np.ndarray]:
    """``(label, tokens)`` rows -> ``ids``, ``labels`` (int8), ``lengths`` and counts for stats."""
    ids = frame.select(token_ids(pl.col("tokens"), vocab).alias("ids"))["ids"]
    matrix, lengths = pad_and_truncate(ids, params)
    all_ids = ids.to_arrow().flatten().to_numpy()  # zero-copy view of every id, before truncation
    return {
        "ids": matrix,
        "labels": frame["label"].to_numpy().astype(np.int8),
        "lengths": lengths,
        "tokens": len(all_ids),
        "unk": int((all_ids == UNK_ID).sum()),
        "truncated": int((ids.list.len() > params.seq_len).sum()),
    }


def encode(tokens_dir: Path, vocab: list[str], params: EncodeParams, out_dir: Path) -> dict:
    """Write all shards and ``manifest.json`` into ``out_dir``; return the manifest."""
    writers = {split: ShardWriter(out_dir, split, params.seq_len, params.shard_rows) for split in OUTPUT_SPLITS}
    train_stats = {"rows": 0, "tokens": 0, "unk": 0, "truncated": 0}
    for source_split in paths.SPLITS:
        source = tokens_dir / f"{source_split}.parquet"
        if not source.exists():
            raise StageError(f"{source}: not found (run the clean stage first: dvc repro clean)")
        rows = pq.read_metadata(source).num_rows
        is_val = validation_mask(rows, params) if source_split == "test" else None
        offset = 0
        bar = tqdm(total=rows, unit=" reviews", desc=f"encode {source_split}", leave=False, disable=None)
        for batch in parquet_batches(source, BATCH_ROWS):
            encoded = encode_batch(pl.from_arrow(batch), vocab, params)
            arrays = (encoded["ids"], encoded["labels"], encoded["lengths"])
            if is_val is None:
                writers["train"].add(*arrays)
                train_stats["rows"] += batch.num_rows
                for key in ("tokens", "unk", "truncated"):
                    train_stats[key] += encoded[key]
            else:
                mask = is_val[offset : offset + batch.num_rows]
                writers["val"].add(*(a[mask] for a in arrays))
                writers["test"].add(*(a[~mask] for a in arrays))
            offset += batch.num_rows
            bar.update(batch.num_rows)
        bar.close()

    manifest = {
        "seq_len": params.seq_len,
        "pad": params.pad,
        "truncate": params.truncate,
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
        "vocab_size": len(vocab),
        "train_unk_fraction": round(train_stats["unk"] / max(train_stats["tokens"], 1), 6),
        "train_truncated_fraction": round(train_stats["truncated"] / max(train_stats["rows"], 1), 6),
        "splits": {split: writer.close() for split, writer in writers.items()},
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def load_split(shards_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """``(ids, labels, lengths, manifest)`` of one split, shards concatenated."""
    manifest = read_json(shards_dir / "manifest.json")
    if split not in manifest["splits"]:
        raise StageError(f"{shards_dir}/manifest.json: no split {split!r}")
    shards = manifest["splits"][split]["shards"]
    parts = {
        name: np.concatenate([np.load(shards_dir / shard[name], allow_pickle=False) for shard in shards])
        for name in ("ids", "labels", "lengths")
    }
    ids = parts["ids"].reshape(-1, manifest["seq_len"])
    return ids, parts["labels"], parts["lengths"], manifest


def main() -> None:
    params, _ = stage_params(__doc__)
    vocab = load_vocab(paths.VOCAB_FILE)
    with atomic_path(paths.SHARDS_DIR) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        manifest = encode(paths.TOKENS_DIR, vocab, params.encode, tmp_dir)
    rows = ", ".join(f"{split} {info['rows']}" for split, info in manifest["splits"].items())
    print(
        f"encode: {rows} rows of {params.encode.seq_len} ids; "
        f"train <unk> share {manifest['train_unk_fraction']:.2%}, "
        f"truncated {manifest['train_truncated_fraction']:.2%}"
    )


if __name__ == "__main__":
    run_main(main)
