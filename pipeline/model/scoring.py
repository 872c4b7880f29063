"""A file of reviews scored in batches into Parquet: the score stage and ``pipeline.predict --output``.

The reviews come from any file ingest reads (pipeline.data.tables for CSV, TSV, JSON Lines and
Parquet; fastText or plain lines, one review per line, a leading ``__label__...`` dropped), a
batch at a time, and go through the same :class:`Predictor` as every other way of scoring. Each
input row gives one output row, in the input's order: ``row`` (its line or row number),
the kept columns (as text), ``probability``, ``label`` and ``sentiment``. A row the model cannot
score keeps its place with a null probability and label and the reason as its sentiment
("empty text", "invalid UTF-8", a CSV row that does not parse, "no known words").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.data.files import atomic_path
from pipeline.data.tables import Columns, review_batches
from pipeline.model.inference import CHUNK_ROWS, Predictor


def score_file(predictor: Predictor, path: Path, fmt: str, columns: Columns, output: Path) -> dict[str, int]:
    """Score every review of ``path`` into ``output`` (Parquet, written whole or not at all);
    returns how many rows were scored and how many could not be."""
    counts = {"rows": 0, "unscored": 0}
    schema = pa.schema(
        [("row", pa.int64())]
        + [(name, pa.large_string()) for name in columns.keep]
        + [("probability", pa.float64()), ("label", pa.int8()), ("sentiment", pa.large_string())]
        + ([("probabilities", pa.list_(pa.float64()))] if "probabilities" in predictor.output_columns() else [])
    )
    progress = tqdm(desc=f"score {path.name}", unit=" reviews", leave=False, disable=None)
    with atomic_path(output) as tmp, progress, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for frame in chunks(review_batches(path, fmt, columns), CHUNK_ROWS):
            scored = score_frame(predictor, frame, columns.keep)
            writer.write_table(scored.to_arrow().cast(schema))
            counts["rows"] += len(frame)
            counts["unscored"] += scored["probability"].null_count()
            progress.update(len(frame))
    return counts


def chunks(frames: Iterator[pl.DataFrame], rows: int) -> Iterator[pl.DataFrame]:
    """The rows of ``frames`` again, cut into frames of exactly ``rows`` rows (the last one
    shorter), as Predictor.predict cuts a list of reviews."""
    pending: list[pl.DataFrame] = []
    held = 0
    for frame in frames:
        pending.append(frame)
        held += len(frame)
        while held >= rows:
            joined = pl.concat(pending)
            yield joined.head(rows)
            pending, held = [joined.slice(rows)], held - rows
    if held:
        yield pl.concat(pending)


def score_frame(predictor: Predictor, frame: pl.DataFrame, keep: tuple[str, ...]) -> pl.DataFrame:
    """A problem row or a row without text is scored as an empty review (no probability or
    label, as Predictor answers one); its sentiment then says why."""
    texts = frame.select(pl.when(pl.col("problem").is_null()).then(pl.col("text")).fill_null(""))
    result = predictor.predict(texts.to_series().to_list())
    reason = (
        pl.when(pl.col("problem").is_not_null())
        .then(pl.col("problem"))
        .when(pl.col("text").fill_null("") == "")
        .then(pl.lit("empty text"))
    )
    # more than two classes: each class's probability too
    each_class = (
        [pl.Series("probabilities", result["probabilities"], pl.List(pl.Float64))] if "probabilities" in result else []
    )
    return frame.with_columns(
        pl.Series("probability", result["probability"], pl.Float64),
        pl.Series("label", result["label"], pl.Int8),
        pl.Series("sentiment", result["sentiment"], pl.String),
        *each_class,
    ).select(
        "row",
        *keep,
        "probability",
        "label",
        pl.coalesce(reason, pl.col("sentiment")).alias("sentiment"),
        *(series.name for series in each_class),
    )
