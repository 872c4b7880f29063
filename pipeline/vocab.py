"""vocab: train-split tokens -> ``vocab.json`` (id = position in ``tokens``).

Id 0 is ``<pad>``, id 1 is ``<unk>``, then every token seen at least ``min_freq`` times in the
train split, by count descending and, for equal counts, by token ascending, so the ids are
the same on every run. Only the train split is read: the test split must not leak into it.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core import paths
from pipeline.core.cli import StageError, run_main, stage_params
from pipeline.core.params import VocabParams
from pipeline.data.files import parquet_batches, write_json
from pipeline.data.text import PAD_ID, SPECIALS, UNK_ID

BATCH_ROWS = 20_000


def count_tokens(batches: Iterable[pa.RecordBatch]) -> pl.DataFrame:
    """``(token, count)`` for every distinct token, in vocabulary order.

    Counts batch by batch (Arrow's hash ``value_counts`` on the flattened lists, no copy of
    the tokens) and merges the running totals, so memory is bounded by the batch size and
    the number of distinct tokens, not by the corpus."""
    totals = pl.DataFrame(schema={"token": pl.String, "count": pl.Int64})
    for batch in batches:
        counted = pc.value_counts(pc.list_flatten(batch.column("tokens")))
        counts = pl.DataFrame(
            {"token": pl.from_arrow(counted.field("values")), "count": pl.from_arrow(counted.field("counts"))},
            schema={"token": pl.String, "count": pl.Int64},
        )
        totals = pl.concat([totals, counts]).group_by("token").agg(pl.col("count").sum())
    # group_by order is not stable: sort on both keys for deterministic ids
    return totals.sort(["count", "token"], descending=[True, False])


def build_vocab(counts: pl.DataFrame, params: VocabParams) -> list[str]:
    """The vocabulary as a list of tokens, ``<pad>`` and ``<unk>`` first."""
    kept = counts.filter((pl.col("count") >= params.min_freq) & ~pl.col("token").is_in(SPECIALS))
    if params.max_size is not None:
        kept = kept.head(params.max_size - len(SPECIALS))
    if kept.is_empty():  # every review would be all <unk>: a model could only guess
        raise StageError(
            f"no train token is seen at least vocab.min_freq ({params.min_freq}) times: "
            "the vocabulary would hold only <pad> and <unk> (lower vocab.min_freq, or check the train data)"
        )
    return [*SPECIALS, *kept["token"].to_list()]


def vocab_metrics(counts: pl.DataFrame, vocab: list[str]) -> dict:
    total = int(counts["count"].sum())
    in_vocab = int(counts.filter(pl.col("token").is_in(vocab[len(SPECIALS) :]))["count"].sum())
    return {
        "size": len(vocab),
        "distinct_train_tokens": len(counts),
        "train_tokens": total,
        # share of train-token occurrences that get a real id rather than <unk>
        "train_coverage": round(in_vocab / total, 6) if total else 0.0,
    }


def main() -> None:
    params, _ = stage_params(__doc__)
    source = paths.TOKENS_DIR / "train.parquet"
    if not source.exists():
        raise StageError(f"{source}: not found (run the clean stage first: dvc repro clean)")
    counts = count_tokens(parquet_batches(source, BATCH_ROWS, columns=["tokens"]))
    vocab = build_vocab(counts, params.vocab)
    write_json(paths.VOCAB_FILE, {"pad_id": PAD_ID, "unk_id": UNK_ID, "tokens": vocab})
    metrics = vocab_metrics(counts, vocab)
    write_json(paths.METRICS_DIR / "vocab.json", metrics)
    print(
        f"vocab: {metrics['size']} tokens (of {metrics['distinct_train_tokens']} distinct), "
        f"train coverage {metrics['train_coverage']:.2%}"
    )


if __name__ == "__main__":
    run_main(main)
