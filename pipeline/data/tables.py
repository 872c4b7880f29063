"""Review tables as users have them: CSV, TSV, JSON Lines or Parquet, each also inside .bz2 or
.gz, read a batch of rows at a time with bounded memory (fastText lines: pipeline.data.rawtext).

:func:`file_format` tells the format from ``data.format`` or the file's name. :func:`read_table`
yields one Polars frame per batch: ``row`` (the row's number, from 1, a header not counted),
each asked-for column as a String (null where the row has no value), ``problem`` (why the row
cannot be read, such as a CSV row with the wrong number of fields; null for a good row) and
``raw`` (a problem row's own text). Every row of the file comes out once, in the file's order.
Values come as text: a number as written ("4", "4.0"), a JSON array or object as its JSON.

CSV and TSV go through PyArrow's streaming CSV reader (quoting and line breaks inside quoted
values as in RFC 4180), JSON Lines through Polars' JSON path matching on blocks of lines,
Parquet through PyArrow's batch reader; none holds more than a block of the file.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pipeline.core.cli import StageError
from pipeline.data.rawtext import decode_lines, open_input, read_line_blocks, without_fasttext_label

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
FORMATS = ("fasttext", "csv", "tsv", "jsonl", "parquet")
BATCH_ROWS = 50_000  # Parquet rows per batch; CSV and JSON Lines go by blocks of bytes
CSV_BLOCK_BYTES = 4 << 20


@dataclass(frozen=True)
class Columns:
    """The columns to read: the text, optionally a title joined before it, the label, and columns
    to carry through unchanged (ids)."""

    text: str
    title: str | None = None
    label: str | None = None
    keep: tuple[str, ...] = ()
    # CSV and TSV: whether the first row names the columns; without it, ``column_names`` names them in
    # order, or when empty they are column_1, column_2, ... (Polars' names for a header-less file)
    header: bool = True
    column_names: tuple[str, ...] = ()
    # what names each of them, for messages: params here, command-line options in pipeline.predict
    named_by: tuple[str, ...] = ("data.text_column", "data.title_column", "data.label_column", "data.keep_columns")

    def names(self) -> list[str]:
        return list(self.settings())

    def settings(self) -> dict[str, str]:
        """Each column's name and what names it."""
        text, title, label, keep = self.named_by
        named = [(self.text, text), (self.title, title), (self.label, label), *((name, keep) for name in self.keep)]
        settings: dict[str, str] = {}
        for name, setting in named:
            if name is not None:
                settings.setdefault(name, setting)
        return settings


def file_format(path: Path, chosen: str) -> str:
    """``chosen`` (``data.format``), or for ``auto`` the format its name says (``.csv``,
    ``.tsv``, ``.jsonl``/``.ndjson``, ``.parquet``, any of them also with ``.bz2``/``.gz``);
    any other name is fastText lines."""
    if chosen != "auto":
        return chosen
    name = path.name.lower().removesuffix(".bz2").removesuffix(".gz")
    return SUFFIXES.get(Path(name).suffix, "fasttext")


def read_table(path: Path, fmt: str, columns: Columns, hint: str = "") -> Iterator[pl.DataFrame]:
    """The rows of a CSV, TSV, JSON Lines or Parquet file (``fmt``: as :func:`file_format` takes
    it; see the module's docstring)."""
    fmt = file_format(path, fmt)
    if not columns.header and fmt not in ("csv", "tsv"):
        raise StageError(f"{path}: a {fmt} file names its own columns (data.header: false is for CSV and TSV files)")
    readers = {"csv": read_csv, "tsv": read_csv, "jsonl": read_json_lines, "parquet": read_parquet}
    yield from readers[fmt](path, fmt, columns, hint)


def missing_column(path: Path, columns: Columns, found: list[str], fmt: str) -> StageError | None:
    """The error for the first asked-for column the file lacks, or None."""
    absent = [(name, setting) for name, setting in columns.settings().items() if name not in found]
    if not absent:
        return None
    name, setting = absent[0]
    shown = ", ".join(repr(column) for column in found[:20]) or "none"
    what = "keys in its first rows" if fmt == "jsonl" else "columns"
    return StageError(f"{path}: no column {name!r} ({what}: {shown}) (set {setting} to one of them)")


def not_format(path: Path, fmt: str, why: str) -> StageError:
    return StageError(f"{path}: not a {fmt.upper()} file ({why}) (set data.format to the file's format)")


def read_csv(path: Path, fmt: str, columns: Columns, hint: str) -> Iterator[pl.DataFrame]:
    delimiter = "\t" if fmt == "tsv" else ","
    header = csv_header(path, fmt, delimiter, hint, columns)
    wanted = columns.names()
    if error := missing_column(path, columns, header, fmt):
        raise error
    skipped: list[tuple[int, str, str]] = []  # (row, problem, raw) as the reader finds them, ahead of its batches

    def on_bad_row(row) -> str:
        problem = f"CSV row does not parse: {row.actual_columns} fields, expected {row.expected_columns}"
        skipped.append((row.number - columns.header, problem, row.text))  # the reader counts a header as row 1
        return "skip"

    raw, stream = open_input(path, hint)
    with raw, stream:
        try:
            reader = pa_csv.open_csv(
                stream,
                read_options=pa_csv.ReadOptions(
                    use_threads=False, block_size=CSV_BLOCK_BYTES, column_names=None if columns.header else header
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_bad_row
                ),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=wanted, column_types=dict.fromkeys(wanted, pa.large_binary())
                ),
            )
            next_row = 1
            for batch in reader:
                frame, next_row = number_rows(pl.from_arrow(batch), next_row, skipped)
                yield frame
        except pa.ArrowInvalid as err:
            raise not_format(path, fmt, str(err).splitlines()[0]) from None
    frame, _ = number_rows(pl.DataFrame(schema=dict.fromkeys(wanted, pl.Binary)), next_row, skipped, last=True)
    if len(frame):
        yield frame


def csv_header(path: Path, fmt: str, delimiter: str, hint: str, columns: Columns) -> list[str]:
    """The names of the file's columns: its first row, or for a header-less file ``columns.column_names``
    (as many as the first row has fields) or column_1, column_2, ..."""
    raw, stream = open_input(path, hint)
    with raw, stream:
        start = stream.read(1 << 16)
        if b"\x00" in start:
            raise not_format(path, fmt, "binary data")
        try:
            reader = pa_csv.open_csv(
                pa.BufferReader(start + stream.read(1 << 20)),
                read_options=pa_csv.ReadOptions(
                    use_threads=False, block_size=1 << 20, autogenerate_column_names=not columns.header
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=lambda row: "skip"
                ),
            )
        except pa.ArrowInvalid as err:
            raise not_format(path, fmt, str(err).splitlines()[0]) from None
    if columns.header:
        return reader.schema.names
    fields = len(reader.schema.names)
    if columns.column_names and len(columns.column_names) != fields:
        raise StageError(
            f"{path}: data.columns names {len(columns.column_names)} columns but the first row has {fields} fields "
            f"(name all {fields}, in order)"
        )
    return list(columns.column_names) or [f"column_{i}" for i in range(1, fields + 1)]


def number_rows(
    batch: pl.DataFrame, next_row: int, skipped: list[tuple[int, str, str]], last: bool = False
) -> tuple[pl.DataFrame, int]:
    """The reader's good rows numbered, with the rows it skipped among them put back in place
    (as problem rows); returns the frame and the next row's number. ``last``: every skipped row
    left comes out too."""
    skipped_rows = np.array([row for row, _, _ in skipped], np.int64)
    candidates = np.arange(next_row, next_row + len(batch) + len(skipped_rows), dtype=np.int64)
    good = candidates[~np.isin(candidates, skipped_rows)][: len(batch)]
    end = int(good[-1]) + 1 if len(good) else next_row
    if last:
        end = max([end, *(row + 1 for row, _, _ in skipped)])
    placed = [entry for entry in skipped if entry[0] < end]
    del skipped[: len(placed)]
    values = batch.select(decode_values(pl.col(name)).alias(name) for name in batch.columns)
    not_utf8 = pl.any_horizontal(pl.col(name).is_null() for name in batch.columns) if batch.columns else pl.lit(False)
    good_rows = values.with_columns(
        pl.Series("row", good),
        pl.when(not_utf8).then(pl.lit("invalid UTF-8")).alias("problem"),
        pl.lit(None, pl.String).alias("raw"),
    )
    bad_rows = pl.DataFrame(
        {"row": [row for row, _, _ in placed], "problem": [p for _, p, _ in placed], "raw": [t for _, _, t in placed]},
        schema={"row": pl.Int64, "problem": pl.String, "raw": pl.String},
    )
    frame = pl.concat([good_rows, bad_rows], how="diagonal_relaxed").sort("row")
    return frame.select("row", *batch.columns, "problem", "raw"), end


def decode_values(values: pl.Expr) -> pl.Expr:
    """Binary CSV values -> String; a value that is not UTF-8 becomes null (told apart from an
    empty value, which stays "")."""
    return values.map_batches(decode_lines, return_dtype=pl.String)


def read_json_lines(path: Path, fmt: str, columns: Columns, hint: str) -> Iterator[pl.DataFrame]:
    wanted = columns.names()
    first_line = 1
    checked = False
    for lines in read_line_blocks(path, hint):
        text = decode_lines(pl.from_arrow(lines)).str.strip_chars()
        frame = pl.DataFrame({"line": text}).with_row_index("row", offset=first_line)
        first_line += len(frame)
        if not checked:
            check_json_keys(path, frame["line"], columns, fmt)
            checked = True
        problem = (
            pl.when(pl.col("line").is_null())
            .then(pl.lit("invalid UTF-8"))
            .when(pl.col("line") == "")
            .then(pl.lit("empty line"))
            .when(~pl.col("line").str.starts_with("{") | pl.col("line").str.json_path_match("$").is_null())
            .then(pl.lit("not a JSON object"))
        )
        yield frame.select(
            pl.col("row").cast(pl.Int64),
            *(json_value(name).alias(name) for name in wanted),
            problem.alias("problem"),
            pl.when(problem.is_not_null()).then(pl.col("line")).alias("raw"),
        )


def json_value(name: str) -> pl.Expr:
    """The value of key ``name`` in each JSON line as text (a number, array or object as its
    JSON text); null where the line has no such key or it is null."""
    key = name.replace("\\", "\\\\").replace("'", "\\'")
    return pl.col("line").str.json_path_match(f"$['{key}']")


def check_json_keys(path: Path, lines: pl.Series, columns: Columns, fmt: str) -> None:
    """Stop when the first block of a JSON Lines file has none of its objects with a wanted key
    (a misnamed column), or no JSON object at all (not JSON Lines)."""
    objects = lines.filter(lines.str.starts_with("{") & lines.str.json_path_match("$").is_not_null()).head(1000)
    if objects.is_empty():
        first = next((line for line in lines.head(10).to_list() if line), "")
        raise not_format(path, fmt, f"no JSON object in its first lines: {first[:60]!r}")
    found = list(dict.fromkeys(key for line in objects for key in json.loads(line)))
    if error := missing_column(path, columns, found, fmt):
        raise error


def read_parquet(path: Path, fmt: str, columns: Columns, hint: str) -> Iterator[pl.DataFrame]:
    raw, stream = open_input(path, hint)
    if stream is raw:
        raw.close()
        yield from parquet_rows(path, path, fmt, columns)
        return
    with raw, stream, tempfile.TemporaryDirectory() as tmp:  # Parquet needs to seek: decompress it first
        plain = Path(tmp) / "input.parquet"
        with plain.open("wb") as out:
            try:
                shutil.copyfileobj(stream, out, 1 << 20)
            except (OSError, EOFError, ValueError, RuntimeError) as err:
                raise StageError(f"{path}: corrupt or truncated compressed data ({err})") from None
        yield from parquet_rows(path, plain, fmt, columns)


def parquet_rows(path: Path, plain: Path, fmt: str, columns: Columns) -> Iterator[pl.DataFrame]:
    try:
        file = pq.ParquetFile(plain)
    except (pa.ArrowInvalid, OSError) as err:
        raise not_format(path, fmt, str(err).splitlines()[0]) from None
    wanted = columns.names()
    schema = file.schema_arrow
    if error := missing_column(path, columns, schema.names, fmt):
        raise error
    for name in (columns.text, columns.title):
        if (
            name is not None
            and not pa.types.is_string(schema.field(name).type)
            and not pa.types.is_large_string(schema.field(name).type)
        ):
            raise StageError(
                f"{path}: column {name!r} holds {schema.field(name).type} values, not text "
                "(set data.text_column or data.title_column to a text column)"
            )
    first_row = 1
    with file:
        for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            frame = pl.from_arrow(batch).with_row_index("row", offset=first_row)
            first_row += len(frame)
            yield frame.select(
                pl.col("row").cast(pl.Int64),
                *(pl.col(name).cast(pl.String) for name in wanted),
                pl.lit(None, pl.String).alias("problem"),
                pl.lit(None, pl.String).alias("raw"),
            )


def review_text(columns: Columns) -> pl.Expr:
    """The text column, trimmed, with the title column (if any) joined before it as ``title:
    text``, as the Amazon reviews' fastText lines have them."""
    text = pl.col(columns.text).str.strip_chars()
    if columns.title is None:
        return text
    title = pl.col(columns.title).fill_null("").str.strip_chars()
    return pl.when(title != "").then(pl.concat_str(title, pl.lit(": "), text.fill_null(""))).otherwise(text)


def review_batches(path: Path, fmt: str, columns: Columns, hint: str = "") -> Iterator[pl.DataFrame]:
    """The reviews of any file ingest reads, without labels, for scoring: frames of ``row``,
    ``text`` (:func:`review_text`; for fastText or plain lines the line, a leading
    ``__label__...`` dropped), the kept columns and ``problem``, in the file's order."""
    fmt = file_format(path, fmt)
    if fmt == "fasttext":
        if columns.keep:
            raise StageError(f"{path}: lines of text have no columns to keep (set data.keep_columns: [])")
        first_line = 1
        for lines in read_line_blocks(path, hint):
            text = decode_lines(pl.from_arrow(lines))
            frame = pl.DataFrame({"text": text}).with_row_index("row", offset=first_line)
            first_line += len(frame)
            yield frame.select(
                pl.col("row").cast(pl.Int64),
                without_fasttext_label(pl.col("text")),
                pl.when(pl.col("text").is_null()).then(pl.lit("invalid UTF-8")).alias("problem"),
            )
        return
    for frame in read_table(path, fmt, columns, hint):
        yield frame.select("row", review_text(columns).alias("text"), *columns.keep, "problem")


def label_text(labels: pl.Expr) -> pl.Expr:
    """Labels as the text a mapping compares: trimmed, lower case, ``4.0`` as ``4``."""
    return labels.str.strip_chars().str.to_lowercase().str.replace(r"^(-?\d+)\.0+$", "${1}")
