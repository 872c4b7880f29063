"""ingest: raw review files (fastText lines, CSV, TSV, JSON Lines or Parquet; bz2, gzip or plain) -> Parquet.

fastText lines are ``__label__<n> <text>``, n the class's number from 1 in ``data.classes``
(``__label__1`` negative, ``__label__2`` positive by default). A table (pipeline.data.tables;
``data.format``, by default told from the file name) gives the text in ``data.text_column``,
optionally after a title (``data.title_column``, joined as ``title: text``), and the label in
``data.label_column``, which ``data.classes`` maps to class ids 0, 1, ... in its order (values
compared as trimmed, lower-case text; ``4.0`` is ``4``). Files are read a block or batch at a
time, so memory is bounded by the block size, not the file. Every line or row ends up either as a
review (label: the class id, int8; text) or in ``rejects.parquet`` with its line or row number and
reason (such as a label in no class: 3 stars when the classes are ``[1, 2]`` and ``[4, 5]``;
those are counted apart, as ``unmapped_labels``, and do not count against
``data.max_reject_fraction``, which is there to catch damaged input).
A missing column, a file that is not its format, or labels of which no value maps to one of the
classes stop the stage with one line. A CSV or TSV without a header row (``data.header: false``)
has its columns named by ``data.columns`` or ``column_1``, ``column_2``, ...; with no test file of
its own (``data.test`` empty or the train file), :func:`split_reviews` holds out a seeded,
stratified ``data.test_fraction`` of the train file's reviews as the test split.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core import paths
from pipeline.core.cli import StageError, run_main, stage_params
from pipeline.core.params import DataParams, label_key
from pipeline.data.files import atomic_path, write_json
from pipeline.data.rawtext import decode_lines, read_line_blocks
from pipeline.data.splits import stratified_test_rows, write_split
from pipeline.data.tables import Columns, file_format, label_text, read_table, review_text

EXCERPT_CHARS = 200

REVIEW_SCHEMA = pa.schema([("label", pa.int8()), ("text", pa.large_string())])
REJECT_SCHEMA = pa.schema(
    [("split", pa.string()), ("line", pa.int64()), ("reason", pa.string()), ("excerpt", pa.large_string())]
)

UNMAPPED = "is in none of data.classes"  # the reason for a table's label left out


def parse_lines(
    lines: pl.Series, first_line: int = 1, max_chars: int = DataParams().max_chars, classes: int = 2
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse raw lines (Binary, a trailing newline allowed; a leading byte-order mark, as Windows
    editors write, ignored) into reviews and rejects.

    Returns ``(reviews, rejects)``: reviews has ``label`` (int8) and ``text``; rejects has
    ``line`` (1-based), ``reason`` and ``excerpt``. ``len(reviews) + len(rejects) == len(lines)``.
    ``__label__1`` .. ``__label__<classes>`` are the class ids 0 .. classes - 1.
    """
    labels = {str(number): number - 1 for number in range(1, classes + 1)}
    frame = pl.DataFrame({"raw": lines.cast(pl.Binary)}).with_row_index("line", offset=first_line)
    frame = frame.with_columns(pl.col("line").cast(pl.Int64))
    decoded = frame.with_columns(decode_lines(frame["raw"]).alias("decoded"))

    parsed = decoded.with_columns(
        pl.col("decoded")
        .str.strip_prefix("\ufeff")
        .str.strip_suffix("\n")
        .str.strip_suffix("\r")
        .str.extract_groups(r"^__label__(\S*)(?:\s+(.*))?$")
        .alias("parts")
    ).with_columns(
        pl.col("parts").struct.field("1").alias("label_raw"),
        pl.col("parts").struct.field("2").fill_null("").str.strip_chars().alias("text"),
    )
    reason = (
        pl.when(pl.col("decoded").is_null())
        .then(pl.lit("invalid UTF-8"))
        .when(pl.col("decoded").str.strip_chars().str.len_bytes() == 0)
        .then(pl.lit("empty line"))
        .when(pl.col("decoded").str.len_chars() > max_chars)
        .then(pl.lit(f"too long (over data.max_chars={max_chars} characters)"))
        .when(pl.col("label_raw").is_null())
        .then(pl.lit("missing label"))
        .when(~pl.col("label_raw").is_in(list(labels)))
        .then(pl.lit("unknown label"))
        .when(pl.col("text").str.len_bytes() == 0)
        .then(pl.lit("empty text"))
    )
    parsed = parsed.with_columns(reason.alias("reason"))

    reviews = parsed.filter(pl.col("reason").is_null()).select(
        pl.col("label_raw").replace_strict(labels, return_dtype=pl.Int8).alias("label"),
        pl.col("text"),
    )
    bad = parsed.filter(pl.col("reason").is_not_null())
    rejects = pl.DataFrame(
        {
            "line": bad["line"],
            "reason": bad["reason"],
            "excerpt": [_excerpt(raw) for raw in bad["raw"]],
        },
        schema={"line": pl.Int64, "reason": pl.String, "excerpt": pl.String},
    )
    return reviews, rejects


def _excerpt(raw: bytes) -> str:
    return raw[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace").rstrip("\r\n")[:EXCERPT_CHARS]


def parse_rows(frame: pl.DataFrame, data: DataParams) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of a table (pipeline.data.tables.read_table) into reviews and rejects, as
    :func:`parse_lines` does for lines: ``len(reviews) + len(rejects) == len(frame)``."""
    text = review_text(Columns(data.text_column, data.title_column))
    label = label_text(pl.col(data.label_column))
    class_ids = class_of_value(data)
    parsed = frame.with_columns(text.str.strip_chars().alias("text"), label.alias("label_raw"))
    reason = (
        pl.when(pl.col("problem").is_not_null())
        .then(pl.col("problem"))
        .when(pl.col("text").fill_null("") == "")
        .then(pl.lit("empty text"))
        .when(pl.col("text").str.len_chars() > data.max_chars)
        .then(pl.lit(f"too long (over data.max_chars={data.max_chars} characters)"))
        .when(pl.col("label_raw").fill_null("") == "")
        .then(pl.lit("missing label"))
        .when(~pl.col("label_raw").is_in(list(class_ids)))
        .then(pl.format("label '{}' " + UNMAPPED, pl.col("label_raw")))
    )
    parsed = parsed.with_columns(reason.alias("reason"))
    reviews = parsed.filter(pl.col("reason").is_null()).select(
        pl.col("label_raw").replace_strict(class_ids, default=None, return_dtype=pl.Int8).alias("label"),
        pl.col("text"),
    )
    rejects = parsed.filter(pl.col("reason").is_not_null()).select(
        pl.col("row").alias("line"),
        pl.col("reason"),
        pl.coalesce("raw", "text", pl.lit("")).str.slice(0, EXCERPT_CHARS).alias("excerpt"),
    )
    return reviews, rejects


def class_of_value(data: DataParams) -> dict[str, int]:
    """Each label value, as :func:`pipeline.core.params.label_key` writes it, to its class id."""
    return {label_key(value): i for i, label_class in enumerate(data.classes) for value in label_class.labels}


def parsed_batches(
    path: Path, data: DataParams
) -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame, pl.DataFrame | None]]:
    """``(lines or rows read, reviews, rejects, a table's label values and their counts)`` per
    block of the file."""
    fmt = file_format(path, data.format)
    hint = " (set data.train / data.test in params.yaml)"
    if fmt == "fasttext":
        first_line = 1
        for lines in read_line_blocks(path, hint):
            reviews, rejects = parse_lines(pl.from_arrow(lines), first_line, data.max_chars, len(data.classes))
            first_line += len(lines)
            yield len(lines), reviews, rejects, None
        return
    columns = Columns(
        data.text_column, data.title_column, data.label_column, header=data.header, column_names=tuple(data.columns)
    )
    for frame in read_table(path, fmt, columns, hint):
        reviews, rejects = parse_rows(frame, data)
        labels = frame.group_by(label_text(pl.col(data.label_column)).alias("value")).len()
        yield len(frame), reviews, rejects, labels


def ingest_file(path: Path, out_file: Path, split: str, data: DataParams) -> tuple[dict, pl.DataFrame]:
    """Parse one input file into ``out_file``; return its counts (``classes``: reviews per class
    id) and its rejects."""
    counts = {"lines": 0, "rows": 0, "rejects": 0, "classes": [0] * len(data.classes)}
    reject_frames, label_frames = [], []
    with pq.ParquetWriter(out_file, REVIEW_SCHEMA, compression="zstd") as writer:
        for read, reviews, rejects, labels in parsed_batches(path, data):
            counts["lines"] += read
            counts["rows"] += len(reviews)
            counts["rejects"] += len(rejects)
            per_class = np.bincount(reviews["label"].to_numpy(), minlength=len(data.classes))
            counts["classes"] = [int(n) for n in np.add(counts["classes"], per_class)]
            if len(reviews):
                writer.write_table(reviews.to_arrow().cast(REVIEW_SCHEMA))
            if len(rejects):
                reject_frames.append(rejects.with_columns(pl.lit(split).alias("split")))
            if labels is not None:
                label_frames.append(labels)
            if len(label_frames) > 64:  # counts per label value, not per batch: bounded memory
                label_frames = [pl.concat(label_frames).group_by("value").agg(pl.col("len").sum())]
    if counts["lines"] == 0:
        raise StageError(f"{path}: empty file, no reviews to read")
    rejects = pl.concat(reject_frames) if reject_frames else pl.DataFrame(schema=pl.Schema(REJECT_SCHEMA))
    if label_frames:
        check_every_class(path, counts, pl.concat(label_frames), data)
    return counts, rejects.select(REJECT_SCHEMA.names)


def check_every_class(path: Path, counts: dict, labels: pl.DataFrame, data: DataParams) -> None:
    """Stop when the label mapping leaves a class without a single review: the mapping, not the
    data, is then wrong."""
    if counts["rows"] == 0 or all(counts["classes"]):
        return
    empty = next(c for c, n in zip(data.classes, counts["classes"], strict=True) if not n)
    name, values = empty.name, empty.labels
    seen = labels.group_by("value").agg(pl.col("len").sum()).sort(["len", "value"], descending=[True, False])
    shown = ", ".join(f"{value!r} ({count})" for value, count in seen.head(8).iter_rows())
    raise StageError(
        f"{path}: no {name!r} reviews: its labels {values} in data.classes match none of the values of column "
        f"{data.label_column!r} (found: {shown}) (set the labels of class {name!r} to the values that mean it)"
    )


def class_metrics(per_class: list[int] | np.ndarray, data: DataParams) -> dict:
    """Two classes: the positive (second) class's share, as ever; more: each class's share by name."""
    shares = np.asarray(per_class, np.float64) / max(int(np.sum(per_class)), 1)
    if len(data.classes) == 2:
        return {"positive_fraction": round(float(shares[1]), 6)}
    return {
        "class_fractions": {
            name: round(float(share), 6) for name, share in zip(data.class_names(), shares, strict=True)
        }
    }


def ingest(data: DataParams, out_dir: Path = paths.REVIEWS_DIR) -> dict:
    """Ingest both splits into ``out_dir``; return the metrics written to metrics/ingest.json.
    With no test file (:meth:`DataParams.test_file`), the train file's reviews are split."""
    metrics: dict = {}
    test_file = data.test_file()
    sources = {"train": data.train, "test": test_file} if test_file else {"train": data.train}
    with atomic_path(out_dir) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        all_rejects = []
        for split, name in sources.items():
            source = Path(name)
            out_file = tmp_dir / f"{split if test_file else 'all'}.parquet"
            counts, rejects = ingest_file(source, out_file, split, data)
            # a label the mapping leaves out (3 stars) is the user's choice, not damage: not held against the input
            damaged = rejects.filter(~pl.col("reason").str.ends_with(UNMAPPED))
            fraction = len(damaged) / counts["lines"]
            if fraction > data.max_reject_fraction:
                top = damaged.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
                first = damaged.row(0, named=True)
                raise StageError(
                    f"{source}: {len(damaged)} of {counts['lines']} lines rejected "
                    f"({fraction:.1%} > data.max_reject_fraction={data.max_reject_fraction}); "
                    f"most common reason: {top['reason'][0]!r}; first at line {first['line']}: "
                    f"{first['excerpt'][:80]!r}"
                )
            if split == "train" and len(data.classes) > 2 and not all(counts["classes"]):  # fastText; tables: above
                number = counts["classes"].index(0) + 1
                raise StageError(
                    f"{source}: no {data.classes[number - 1].name!r} reviews: no line is labelled __label__{number} "
                    f"(fastText lines name the class by its number in data.classes, from 1)"
                )
            metrics[split] = {
                "lines": counts["lines"],
                "rows": counts["rows"],
                "rejects": counts["rejects"],
                "reject_fraction": round(fraction, 6),
            } | class_metrics(counts["classes"], data)
            if file_format(source, data.format) != "fasttext":
                metrics[split]["unmapped_labels"] = len(rejects) - len(damaged)
            all_rejects.append(rejects)
        if not test_file:
            metrics["split"] = split_reviews(tmp_dir / "all.parquet", tmp_dir, data)
        pl.concat(all_rejects).write_parquet(tmp_dir / "rejects.parquet", compression="zstd")
    return metrics


def split_reviews(source: Path, out_dir: Path, data: DataParams) -> dict:
    """``source``'s reviews into ``out_dir``'s train.parquet and test.parquet
    (pipeline.data.splits, by ``data.test_fraction`` and ``data.seed``); ``source`` is removed.
    Returns the split's metrics."""
    labels = pq.read_table(source, columns=["label"])["label"].to_numpy()
    is_test = stratified_test_rows(labels, data.test_fraction, data.seed)
    if is_test.all() or not is_test.any():
        raise StageError(
            f"{data.train}: {len(labels)} reviews cannot be split into train and test by "
            f"data.test_fraction={data.test_fraction} (set data.test to a file of its own, or change the fraction)"
        )
    write_split(source, out_dir, is_test, REVIEW_SCHEMA)
    source.unlink()
    split = {"test_fraction": data.test_fraction, "seed": data.seed}
    for name, rows in (("train", ~is_test), ("test", is_test)):
        split[f"{name}_rows"] = int(rows.sum())
        shares = class_metrics(np.bincount(labels[rows], minlength=len(data.classes)), data)
        split |= {f"{name}_{key}": value for key, value in shares.items()}
    return split


def main() -> None:
    params, _ = stage_params(__doc__)
    metrics = ingest(params.data)
    write_json(paths.METRICS_DIR / "ingest.json", metrics)
    for split in paths.SPLITS:
        if m := metrics.get(split):
            unmapped = f" ({m['unmapped_labels']} for their label)" if m.get("unmapped_labels") else ""
            print(f"ingest {split}: {m['rows']} rows, {m['rejects']} rejected{unmapped} of {m['lines']} lines")
    if split := metrics.get("split"):
        print(
            f"ingest: no test file: {split['test_fraction']:.0%} of each class held out as the test split "
            f"(seed {split['seed']}): {split['train_rows']} train rows, {split['test_rows']} test rows"
        )


if __name__ == "__main__":
    run_main(main)
