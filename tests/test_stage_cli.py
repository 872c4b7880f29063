"""The stages as DVC runs them: `python -m pipeline.<stage>` in a folder with a params.yaml."""

import bz2
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.sample import generate

DATA_STAGES = ("ingest", "clean", "vocab", "encode")


def run_stage(stage: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"pipeline.{stage}"], cwd=cwd, capture_output=True, text=True)


def workspace(tmp_path: Path, train: bytes, test: bytes, **data) -> Path:
    (tmp_path / "train.ft.txt.bz2").write_bytes(train)
    (tmp_path / "test.ft.txt.bz2").write_bytes(test)
    params = {"data": {"train": "train.ft.txt.bz2", "test": "test.ft.txt.bz2", **data}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def sample_bytes(rows: int, seed: int) -> bytes:
    return bz2.compress(("\n".join(generate(rows, seed)) + "\n").encode())


def digests(root: Path) -> dict[str, str]:
    outputs = [root / "data", root / "metrics"]
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in outputs
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_data_stages_are_byte_identical_when_run_twice(tmp_path):
    root = workspace(tmp_path, sample_bytes(3000, 1), sample_bytes(600, 2))
    runs = []
    for _ in range(2):
        for stage in DATA_STAGES:
            result = run_stage(stage, root)
            assert result.returncode == 0, result.stderr
        runs.append(digests(root))
    assert len(runs[0]) >= 12  # parquet x5, vocab, shards x9 + manifest, metrics
    assert runs[0] == runs[1]
    assert not [p for p in root.rglob("*tmp-*")]  # no temporary leftovers


@pytest.mark.parametrize(
    ("train", "message"),
    [
        (b"this is not bz2 at all\n", "not a bz2 file"),
        (sample_bytes(5000, 3)[:20_000], "corrupt or truncated"),
        (b"", "empty file"),
    ],
)
def test_unreadable_input_is_one_line_naming_the_file_and_a_nonzero_exit(tmp_path, train, message):
    root = workspace(tmp_path, train, sample_bytes(10, 1))
    result = run_stage("ingest", root)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: train.ft.txt.bz2: ") and message in lines[0]
    assert not (root / "data" / "interim" / "reviews").exists()


def test_every_input_line_is_a_row_or_a_counted_reject(tmp_path):
    several_mb = "long " * 700_000  # a 3.5 MB line: a pasted log, not a review
    lines = [
        "__label__2 fine",
        "__label__1 windows line end\r",
        "__label__9 wrong label",
        "missing label",
        "__label__2 ",
        f"__label__1 {several_mb}",
    ]
    raw = ("\n".join(lines) + "\n").encode() + b"__label__2 caf\xe9\n"
    root = workspace(tmp_path, bz2.compress(raw), sample_bytes(10, 1), max_reject_fraction=0.9)
    result = run_stage("ingest", root)
    assert result.returncode == 0, result.stderr
    metrics = yaml.safe_load((root / "metrics" / "ingest.json").read_text())
    assert metrics["train"]["lines"] == 7
    assert metrics["train"]["rows"] + metrics["train"]["rejects"] == 7
    assert metrics["train"]["rejects"] == 5
    import polars as pl

    texts = pl.read_parquet(root / "data" / "interim" / "reviews" / "train.parquet")["text"].to_list()
    assert texts == ["fine", "windows line end"]
    reasons = pl.read_parquet(root / "data" / "interim" / "reviews" / "rejects.parquet")["reason"].to_list()
    too_long = "too long (over data.max_chars=100000 characters)"
    assert reasons == ["unknown label", "missing label", "empty text", too_long, "invalid UTF-8"]


def test_a_params_typo_stops_the_stage_naming_the_key(tmp_path):
    root = workspace(tmp_path, sample_bytes(10, 1), sample_bytes(10, 2))
    (root / "params.yaml").write_text("data:\n  train: train.ft.txt.bz2\n  tset: test.ft.txt.bz2\n")
    result = run_stage("ingest", root)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: params.yaml: data.tset: unknown key (known: classes, columns, format, header, keep_columns, "
        "label_column, max_chars, max_reject_fraction, ordinal, score, seed, test, test_fraction, text_column, "
        "title_column, train)"
    )


@pytest.mark.parametrize("stage", [*DATA_STAGES, "pretrain", "ngrams", "train", "evaluate", "baseline", "score"])
def test_help_describes_the_stage_without_loading_torch_mlflow_or_gensim(stage):
    # -X importtime lists every module the process imported, on stderr
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", f"pipeline.{stage}", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: ") and f"\n{stage}: " in result.stdout
    assert "--params PARAMS" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not imported & {"torch", "mlflow", "gensim", "sklearn"}
