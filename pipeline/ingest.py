"""ingest: raw fastText-format review dumps (bz2 or plain text) -> Parquet.

Each line is ``__label__1 <text>`` (negative) or ``__label__2 <text>`` (positive). The file is
read in compressed blocks and parsed with Arrow/Polars block by block, so memory is bounded by
the block size, not the file. Every line ends up either as a row (label int8 0/1, text) or in
``rejects.parquet`` with its line number and reason.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core import paths
from pipeline.core.cli import StageError, run_main, stage_params
from pipeline.core.params import DataParams
from pipeline.data.files import atomic_path, write_json
from pipeline.data.rawtext import decode_lines, read_line_blocks

EXCERPT_CHARS = 200

REVIEW_SCHEMA = pa.schema([("label", pa.int8()), ("text", pa.large_string())])
REJECT_SCHEMA = pa.schema(
    [("split", pa.string()), ("line", pa.int64()), ("reason", pa.string()), ("excerpt", pa.large_string())]
)

LABELS = {"1": 0, "2": 1}  # fastText label -> our label (0 = negative, 1 = positive)


def parse_lines(
    lines: pl.Series, first_line: int = 1, max_chars: int = DataParams().max_chars
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse raw lines (Binary, a trailing newline allowed; a leading byte-order mark, as Windows
    editors write, ignored) into reviews and rejects.

    Returns ``(reviews, rejects)``: reviews has ``label`` (int8) and ``text``; rejects has
    ``line`` (1-based), ``reason`` and ``excerpt``. ``len(reviews) + len(rejects) == len(lines)``.
    """
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
        .when(~pl.col("label_raw").is_in(list(LABELS)))
        .then(pl.lit("unknown label"))
        .when(pl.col("text").str.len_bytes() == 0)
        .then(pl.lit("empty text"))
    )
    parsed = parsed.with_columns(reason.alias("reason"))

    reviews = parsed.filter(pl.col("reason").is_null()).select(
        pl.col("label_raw").replace_strict(LABELS, return_dtype=pl.Int8).alias("label"),
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


def ingest_file(path: Path, out_file: Path, split: str, max_chars: int) -> tuple[dict, pl.DataFrame]:
    """Parse one input file into ``out_file``; return its counts and its rejects."""
    counts = {"lines": 0, "rows": 0, "rejects": 0, "positive": 0}
    reject_frames = []
    with pq.ParquetWriter(out_file, REVIEW_SCHEMA, compression="zstd") as writer:
        for lines in read_line_blocks(path, " (set data.train / data.test in params.yaml)"):
            reviews, rejects = parse_lines(pl.from_arrow(lines), counts["lines"] + 1, max_chars)
            counts["lines"] += len(lines)
            counts["rows"] += len(reviews)
            counts["rejects"] += len(rejects)
            counts["positive"] += int(reviews["label"].sum())
            if len(reviews):
                writer.write_table(reviews.to_arrow().cast(REVIEW_SCHEMA))
            if len(rejects):
                reject_frames.append(rejects.with_columns(pl.lit(split).alias("split")))
    if counts["lines"] == 0:
        raise StageError(f"{path}: empty file, no reviews to read")
    rejects = pl.concat(reject_frames) if reject_frames else pl.DataFrame(schema=pl.Schema(REJECT_SCHEMA))
    return counts, rejects.select(REJECT_SCHEMA.names)


def ingest(data: DataParams, out_dir: Path = paths.REVIEWS_DIR) -> dict:
    """Ingest both splits into ``out_dir``; return the metrics written to metrics/ingest.json."""
    metrics: dict = {}
    with atomic_path(out_dir) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        all_rejects = []
        for split in paths.SPLITS:
            source = Path(getattr(data, split))
            counts, rejects = ingest_file(source, tmp_dir / f"{split}.parquet", split, data.max_chars)
            fraction = counts["rejects"] / counts["lines"]
            if fraction > data.max_reject_fraction:
                top = rejects.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
                first = rejects.row(0, named=True)
                raise StageError(
                    f"{source}: {counts['rejects']} of {counts['lines']} lines rejected "
                    f"({fraction:.1%} > data.max_reject_fraction={data.max_reject_fraction}); "
                    f"most common reason: {top['reason'][0]!r}; first at line {first['line']}: "
                    f"{first['excerpt'][:80]!r}"
                )
            metrics[split] = {
                "lines": counts["lines"],
                "rows": counts["rows"],
                "rejects": counts["rejects"],
                "reject_fraction": round(fraction, 6),
                "positive_fraction": round(counts["positive"] / max(counts["rows"], 1), 6),
            }
            all_rejects.append(rejects)
        pl.concat(all_rejects).write_parquet(tmp_dir / "rejects.parquet", compression="zstd")
    return metrics


def main() -> None:
    params, _ = stage_params(__doc__)
    metrics = ingest(params.data)
    write_json(paths.METRICS_DIR / "ingest.json", metrics)
    for split, m in metrics.items():
        print(f"ingest {split}: {m['rows']} rows, {m['rejects']} rejected of {m['lines']} lines")


if __name__ == "__main__":
    run_main(main)
