"""vocab: train-split tokens -> ``vocab.json`` (id = position in ``tokens``).

Id 0 is ``<pad>``, id 1 is ``<unk>``, then every token seen at least ``min_freq`` times in the
train split, by count descending and, for equal counts, by token ascending, so the ids are
the same on every run. Only the train split is read: the test split must not leak into it.
"""

from __future__ import annotations

import polars as pl

from pipeline import paths
from pipeline.common import StageError, read_json, run_main, stage_params, write_json
from pipeline.params import VocabParams

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SPECIALS = (PAD, UNK)


def count_tokens(tokens: pl.LazyFrame) -> pl.DataFrame:
    """``(token, count)`` for every distinct token, in vocabulary order."""
    return (
        tokens.select(pl.col("tokens").explode().alias("token"))
        .drop_nulls("token")  # an empty token list explodes to one null
        .group_by("token")
        .agg(pl.len().alias("count"))
        # group_by order is not stable (streaming engine): sort on both keys
        .sort(["count", "token"], descending=[True, False])
        .collect()
    )


def build_vocab(counts: pl.DataFrame, params: VocabParams) -> list[str]:
    """The vocabulary as a list of tokens, ``<pad>`` and ``<unk>`` first."""
    kept = counts.filter((pl.col("count") >= params.min_freq) & ~pl.col("token").is_in(SPECIALS))
    if params.max_size is not None:
        kept = kept.head(params.max_size - len(SPECIALS))
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


def load_vocab(path=paths.VOCAB_FILE) -> list[str]:
    data = read_json(path)
    tokens = data["tokens"]
    if tokens[:2] != list(SPECIALS):
        raise StageError(f"{path}: expected {PAD!r} and {UNK!r} as ids 0 and 1")
    return tokens


def main() -> None:
    params, _ = stage_params(__doc__)
    source = paths.TOKENS_DIR / "train.parquet"
    if not source.exists():
        raise StageError(f"{source}: not found (run the clean stage first: dvc repro clean)")
    counts = count_tokens(pl.scan_parquet(source))
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
