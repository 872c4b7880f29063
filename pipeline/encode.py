"""encode: tokens + vocab -> fixed-length id matrices in NumPy shards.

Unknown tokens get ``<unk>`` (id 1), never the pad id (the tutorial's bug). Each review is cut
to ``seq_len`` tokens (``truncate: keep_first`` keeps the beginning, as the tutorial) and padded
with id 0 on the ``pad`` side (``left`` as the tutorial, so the last real token is always the
last column). The test file is split, seeded, into ``val`` (``val_fraction``) and ``test``.

Output: ``shards/{train,val,test}/{ids,labels,lengths}-NNNNN.npy`` and ``shards/manifest.json``
(pipeline.data.shards describes the format).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.core import paths
from pipeline.core.cli import run_main, stage_params
from pipeline.core.params import EncodeParams, Params
from pipeline.data.files import atomic_path, parquet_batches, reading, write_json
from pipeline.data.shards import MANIFEST, SPLITS, ShardWriter, available_memory, ids_fit, validation_mask
from pipeline.data.text import PAD_ID, UNK_ID, load_vocab, pad_and_truncate, token_ids

BATCH_ROWS = 20_000


def encode_batch(frame: pl.DataFrame, vocab: list[str], params: EncodeParams) -> dict[str, np.ndarray]:
    """``(label, tokens)`` rows -> ``ids``, ``labels`` (int8), ``lengths`` and counts for stats."""
    ids = frame.select(token_ids(pl.col("tokens"), vocab).alias("ids"))["ids"]
    matrix, lengths = pad_and_truncate(ids, params.seq_len, params.truncate, params.pad)
    all_ids = ids.to_arrow().flatten().to_numpy()  # zero-copy view of every id, before truncation
    return {
        "ids": matrix,
        "labels": frame["label"].to_numpy().astype(np.int8),
        "lengths": lengths,
        "tokens": len(all_ids),
        "unk": int((all_ids == UNK_ID).sum()),
        "truncated": int((ids.list.len() > params.seq_len).sum()),
    }


def check_fits(rows: Iterable[int], params: EncodeParams, out_dir: Path) -> None:
    """Stop before any work when ``seq_len`` asks for more than there is: in memory a batch being
    padded and a shard being filled at once, on disk every row."""
    rows = list(rows)
    in_memory = min(max(rows), BATCH_ROWS) + min(sum(rows), params.shard_rows)
    hint = "lower encode.seq_len, or encode.shard_rows"
    ids_fit(in_memory, params.seq_len, "a batch and a shard", available_memory(), "this machine", hint)
    free = shutil.disk_usage(out_dir).free
    ids_fit(sum(rows), params.seq_len, "the shards", free, f"the disk of {out_dir}", "lower encode.seq_len")


def encode(tokens_dir: Path, vocab: list[str], all_params: Params, out_dir: Path) -> dict:
    """Write all shards and ``manifest.json`` into ``out_dir``; return the manifest. Besides
    ``encode``, the manifest records the ``clean`` and ``tokenize`` params that made the tokens."""
    params = all_params.encode
    split_rows = {}
    for split in paths.SPLITS:
        with reading(tokens_dir / f"{split}.parquet"):
            split_rows[split] = pq.read_metadata(tokens_dir / f"{split}.parquet").num_rows
    out_dir.mkdir(parents=True, exist_ok=True)
    check_fits(split_rows.values(), params, out_dir)
    writers = {split: ShardWriter(out_dir, split, params.seq_len, params.shard_rows) for split in SPLITS}
    train_stats = {"rows": 0, "tokens": 0, "unk": 0, "truncated": 0}
    for source_split in paths.SPLITS:
        source = tokens_dir / f"{source_split}.parquet"
        rows = split_rows[source_split]
        is_val = validation_mask(rows, params.val_fraction, params.seed) if source_split == "test" else None
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
        # what made these rows: the model file copies it, so raw text is prepared the same way
        "clean": all_params.clean.model_dump(),
        "tokenize": all_params.tokenize.model_dump(),
        "val_fraction": params.val_fraction,
        "seed": params.seed,
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def main() -> None:
    params, _ = stage_params(__doc__)
    vocab = load_vocab(paths.VOCAB_FILE)
    with atomic_path(paths.SHARDS_DIR) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        manifest = encode(paths.TOKENS_DIR, vocab, params, tmp_dir)
    rows = ", ".join(f"{split} {info['rows']}" for split, info in manifest["splits"].items())
    print(
        f"encode: {rows} rows of {params.encode.seq_len} ids; "
        f"train <unk> share {manifest['train_unk_fraction']:.2%}, "
        f"truncated {manifest['train_truncated_fraction']:.2%}"
    )


if __name__ == "__main__":
    run_main(main)
