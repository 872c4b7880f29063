import bz2
import gzip
import os
import subprocess
import sys

import polars as pl
import pytest

from pipeline.core.cli import StageError
from pipeline.core.params import DataParams
from pipeline.ingest import ingest, parse_lines


def lines(*raw: bytes) -> pl.Series:
    return pl.Series("raw", list(raw), dtype=pl.Binary)


def test_labels_map_to_zero_and_one_and_text_follows_the_label():
    reviews, rejects = parse_lines(lines(b"__label__1 Bad: broke.\n", b"__label__2 Good: works.\n"))
    assert reviews["label"].dtype == pl.Int8
    assert reviews.to_dicts() == [{"label": 0, "text": "Bad: broke."}, {"label": 1, "text": "Good: works."}]
    assert rejects.is_empty()


def test_windows_line_ends_are_stripped():
    reviews, _ = parse_lines(lines(b"__label__2 fine\r\n"))
    assert reviews["text"].to_list() == ["fine"]


def test_a_byte_order_mark_does_not_cost_the_first_review():
    reviews, rejects = parse_lines(lines("\ufeff__label__2 saved by Notepad\r\n".encode(), b"__label__1 next\n"))
    assert reviews.to_dicts() == [{"label": 1, "text": "saved by Notepad"}, {"label": 0, "text": "next"}]
    assert rejects.is_empty()


def test_a_line_over_max_chars_is_a_counted_reject_not_a_corpus():
    log = "__label__2 " + "GET /index.html 200 " * 50
    reviews, rejects = parse_lines(lines(log.encode(), b"__label__1 short one"), max_chars=100)
    assert reviews["text"].to_list() == ["short one"]
    assert rejects.select("line", "reason").to_dicts() == [
        {"line": 1, "reason": "too long (over data.max_chars=100 characters)"}
    ]


def test_every_bad_line_is_counted_with_its_line_number_and_reason():
    raw = lines(
        b"__label__2 ok\n",
        b"__label__3 unknown label\n",
        b"no label at all\n",
        b"__label__1   \n",
        b"\n",
        b"__label__1 caf\xe9 in latin-1\n",
        b"__label__1 good one\n",
    )
    reviews, rejects = parse_lines(raw, first_line=10)
    assert len(reviews) + len(rejects) == len(raw)
    assert rejects.select("line", "reason").to_dicts() == [
        {"line": 11, "reason": "unknown label"},
        {"line": 12, "reason": "missing label"},
        {"line": 13, "reason": "empty text"},
        {"line": 14, "reason": "empty line"},
        {"line": 15, "reason": "invalid UTF-8"},
    ]
    assert rejects["excerpt"][1] == "no label at all"
    assert reviews["text"].to_list() == ["ok", "good one"]


def write_pair(tmp_path, train: bytes, test: bytes, opener=bz2.open, suffix=".bz2"):
    paths = []
    for name, content in (("train", train), ("test", test)):
        path = tmp_path / f"{name}.ft.txt{suffix}"
        with opener(path, "wb") as f:
            f.write(content)
        paths.append(str(path))
    return DataParams(train=paths[0], test=paths[1], max_reject_fraction=0.5)


@pytest.mark.parametrize(("opener", "suffix"), [(bz2.open, ".bz2"), (gzip.open, ".gz"), (open, "")])
def test_ingest_reads_bz2_gzip_and_plain_text_and_counts_lines(tmp_path, opener, suffix):
    data = write_pair(
        tmp_path,
        b"__label__1 a\n__label__2 b\nbroken\n__label__2 last line without newline",
        b"__label__2 c\n",
        opener,
        suffix,
    )
    metrics = ingest(data, tmp_path / "out")
    assert metrics["train"] == {
        "lines": 4,
        "rows": 3,
        "rejects": 1,
        "reject_fraction": 0.25,
        "positive_fraction": round(2 / 3, 6),
    }
    train = pl.read_parquet(tmp_path / "out" / "train.parquet")
    assert train["text"].to_list() == ["a", "b", "last line without newline"]
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert rejects.select("split", "line", "reason").to_dicts() == [
        {"split": "train", "line": 3, "reason": "missing label"}
    ]


def test_a_line_longer_than_a_block_survives(tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.data.rawtext.BLOCK_BYTES", 1024)
    long_text = "word " * 5000
    data = write_pair(tmp_path, f"__label__1 x\n__label__2 {long_text}\n__label__1 y\n".encode(), b"__label__2 z\n")
    metrics = ingest(data, tmp_path / "out")
    assert metrics["train"]["rows"] == 3
    assert pl.read_parquet(tmp_path / "out" / "train.parquet")["text"][1] == long_text.strip()


def test_too_many_rejects_stop_the_stage_with_a_reason(tmp_path):
    data = write_pair(tmp_path, b"__label__1 a\njunk\njunk\n", b"__label__2 c\n")
    data = DataParams(train=data.train, test=data.test, max_reject_fraction=0.1)
    with pytest.raises(StageError, match=r"2 of 3 lines rejected .*'missing label'.*line 2"):
        ingest(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_file_named_bz2_that_is_not_bz2_is_a_clear_error(tmp_path):
    data = write_pair(tmp_path, b"__label__1 a\n", b"__label__2 c\n", open, ".bz2")
    with pytest.raises(StageError, match="not a bz2 file"):
        ingest(data, tmp_path / "out")


def test_truncated_bz2_is_a_clear_error(tmp_path):
    data = write_pair(tmp_path, b"__label__1 some review text\n" * 2000, b"__label__2 c\n")
    path = tmp_path / "train.ft.txt.bz2"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(StageError, match="truncated"):
        ingest(data, tmp_path / "out")


def test_empty_and_missing_files_are_clear_errors(tmp_path):
    data = write_pair(tmp_path, b"", b"__label__2 c\n", open, "")
    with pytest.raises(StageError, match="empty file"):
        ingest(data, tmp_path / "out")
    with pytest.raises(StageError, match="input file not found"):
        ingest(DataParams(train=str(tmp_path / "nope.bz2"), test=data.test), tmp_path / "out")


def test_what_a_killed_run_left_is_removed_by_the_next(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = tmp_path / "out" / f".reviews.tmp-{gone.stdout.strip()}"  # as a killed ingest leaves it
    running = tmp_path / "out" / f".reviews.tmp-{os.getppid()}"  # another run still at work
    for folder in (killed, running):
        folder.mkdir(parents=True)
        (folder / "train.parquet").write_bytes(b"half written")
    ingest(write_pair(tmp_path, b"__label__1 a\n", b"__label__2 b\n"), tmp_path / "out" / "reviews")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [running.name, "reviews"]


def test_one_file_without_a_test_split_is_split_by_class_every_review_once_and_the_same_on_every_run(tmp_path):
    # 300 negative and 100 positive reviews, each text unique: a stratified 25% is 75 + 25
    reviews = [f"__label__{1 if i % 4 else 2} review number {i}\n" for i in range(400)]
    (tmp_path / "all.txt").write_text("".join(reviews) + "no label here\n")
    data = DataParams(train=str(tmp_path / "all.txt"), test="", test_fraction=0.25, seed=7, max_reject_fraction=0.01)
    metrics = ingest(data, tmp_path / "out")
    train, test = (pl.read_parquet(tmp_path / "out" / f"{split}.parquet") for split in ("train", "test"))
    assert sorted(train["text"].to_list() + test["text"].to_list()) == sorted(r.split(" ", 1)[1][:-1] for r in reviews)
    assert test["label"].value_counts().sort("label").rows() == [(0, 75), (1, 25)]
    numbers = [int(text.split()[-1]) for text in train["text"]]
    assert numbers == sorted(numbers)  # each split keeps the file's order
    assert metrics["train"] == {
        "lines": 401,
        "rows": 400,
        "rejects": 1,
        "reject_fraction": 0.002494,
        "positive_fraction": 0.25,
    }
    assert metrics["split"] == {
        "test_fraction": 0.25,
        "seed": 7,
        "train_rows": 300,
        "train_positive_fraction": 0.25,
        "test_rows": 100,
        "test_positive_fraction": 0.25,
    }
    assert "test" not in metrics
    assert pl.read_parquet(tmp_path / "out" / "rejects.parquet")["line"].to_list() == [401]
    assert sorted((tmp_path / "out").iterdir()) == [
        tmp_path / "out" / f for f in ("rejects.parquet", "test.parquet", "train.parquet")
    ]

    # the same file as data.train is no test file too (DVC needs a path there), and the split is stable
    same_file = f"{tmp_path}/./all.txt"  # written another way, still data.train's file
    ingest(data.model_copy(update={"test": same_file}), tmp_path / "again")
    assert pl.read_parquet(tmp_path / "again" / "test.parquet").equals(test)
    other = ingest(data.model_copy(update={"seed": 8}), tmp_path / "other")
    assert other["split"]["test_rows"] == 100
    assert not pl.read_parquet(tmp_path / "other" / "test.parquet").equals(test)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_a_test_fraction_outside_zero_to_one_is_a_one_line_error(fraction):
    from pipeline.core.params import parse_params

    with pytest.raises(ValueError) as error:
        parse_params({"data": {"test": "", "test_fraction": fraction}})
    assert str(error.value) == f"data.test_fraction: must be between 0 and 1 (exclusive), got {fraction}"


def test_a_split_that_leaves_one_side_empty_stops_with_one_line(tmp_path):
    (tmp_path / "two.txt").write_text("__label__1 bad\n__label__2 good\n")
    with pytest.raises(StageError) as error:
        ingest(DataParams(train=str(tmp_path / "two.txt"), test="", test_fraction=0.2), tmp_path / "out")
    assert str(error.value) == (
        f"{tmp_path / 'two.txt'}: 2 reviews cannot be split into train and test by data.test_fraction=0.2 "
        "(set data.test to a file of its own, or change the fraction)"
    )
    assert not (tmp_path / "out").exists()


def test_a_class_without_a_train_review_is_named_in_one_line(tmp_path):
    (tmp_path / "train.txt").write_text("__label__1 bad\n__label__3 good\n")
    (tmp_path / "test.txt").write_text("__label__1 bad\n")  # a small test file may lack a class
    classes = [{"name": name, "labels": [name]} for name in ("negative", "neutral", "positive")]
    data = DataParams(train=str(tmp_path / "train.txt"), test=str(tmp_path / "test.txt"), classes=classes)
    with pytest.raises(StageError) as error:
        ingest(data, tmp_path / "out")
    assert str(error.value) == (
        f"{tmp_path / 'train.txt'}: no 'neutral' reviews: no line is labelled __label__2 "
        "(fastText lines name the class by its number in data.classes, from 1)"
    )
    (tmp_path / "train.txt").write_text("__label__1 bad\n__label__2 so so\n__label__3 good\n__label__4 what\n")
    metrics = ingest(data.model_copy(update={"max_reject_fraction": 0.5}), tmp_path / "out")
    assert metrics["train"]["class_fractions"] == {
        "negative": round(1 / 3, 6),
        "neutral": round(1 / 3, 6),
        "positive": round(1 / 3, 6),
    }
    assert pl.read_parquet(tmp_path / "out" / "train.parquet")["label"].to_list() == [0, 1, 2]
    assert pl.read_parquet(tmp_path / "out" / "rejects.parquet").select("line", "reason").rows() == [
        (4, "unknown label")
    ]
