import numpy as np
import polars as pl
import pytest

from pipeline.core.params import CleanParams, EncodeParams, Params
from pipeline.data.shards import load_split, validation_mask
from pipeline.data.text import pad_and_truncate, token_ids
from pipeline.encode import encode

VOCAB = ["<pad>", "<unk>", "good", "not", "bad"]


def ids_of(*docs):
    frame = pl.DataFrame({"tokens": list(docs)}, schema={"tokens": pl.List(pl.String)})
    return frame.select(token_ids(pl.col("tokens"), VOCAB).alias("ids"))["ids"]


def test_unknown_tokens_get_the_unk_id_never_the_pad_id():
    assert ids_of(["not", "zzz", "good"], [])[0].to_list() == [3, 1, 2]
    assert ids_of(["not", "zzz", "good"], [])[1].to_list() == []


@pytest.mark.parametrize(
    ("truncate", "pad", "expected"),
    [
        ("keep_first", "left", [[0, 0, 2, 3], [2, 3, 4, 1]]),
        ("keep_first", "right", [[2, 3, 0, 0], [2, 3, 4, 1]]),
        ("keep_last", "left", [[0, 0, 2, 3], [3, 4, 1, 2]]),
        ("keep_last", "right", [[2, 3, 0, 0], [3, 4, 1, 2]]),
    ],
)
def test_padding_and_truncation_sides(truncate, pad, expected):
    ids = pl.Series([[2, 3], [2, 3, 4, 1, 2]], dtype=pl.List(pl.Int32))
    matrix, lengths = pad_and_truncate(ids, 4, truncate, pad)
    assert matrix.dtype == np.int32 and matrix.tolist() == expected
    assert lengths.tolist() == [2, 4]


def test_empty_review_is_all_padding():
    matrix, lengths = pad_and_truncate(pl.Series([[]], dtype=pl.List(pl.Int32)), 3, "keep_first", "left")
    assert matrix.tolist() == [[0, 0, 0]] and lengths.tolist() == [0]


def test_validation_split_is_seeded_and_sized():
    mask = validation_mask(1000, 0.3, 7)
    assert mask.sum() == 300
    assert (validation_mask(1000, 0.3, 7) == mask).all()
    assert not (validation_mask(1000, 0.3, 8) == mask).all()


def test_encode_writes_shards_that_load_back(tmp_path):
    tokens_dir = tmp_path / "tokens"
    tokens_dir.mkdir()
    schema = {"label": pl.Int8, "tokens": pl.List(pl.String)}
    train = pl.DataFrame(
        {"label": [1, 0, 1, 0, 1], "tokens": [["good"], ["bad"], ["not", "bad"], ["x"], []]}, schema=schema
    )
    test = pl.DataFrame(
        {"label": [1, 0, 1, 0], "tokens": [["good"], ["bad"], ["good", "good"], ["not"]]}, schema=schema
    )
    train.write_parquet(tokens_dir / "train.parquet")
    test.write_parquet(tokens_dir / "test.parquet")
    params = Params(encode=EncodeParams(seq_len=3, shard_rows=2, val_fraction=0.5), clean=CleanParams(lowercase=False))
    manifest = encode(tokens_dir, VOCAB, params, tmp_path / "shards")

    assert [len(manifest["splits"][s]["shards"]) for s in ("train", "val", "test")] == [3, 1, 1]
    ids, labels, lengths, loaded = load_split(tmp_path / "shards", "train")
    assert loaded == manifest
    assert ids.tolist() == [[0, 0, 2], [0, 0, 4], [0, 3, 4], [0, 0, 1], [0, 0, 0]]
    assert labels.tolist() == [1, 0, 1, 0, 1] and lengths.tolist() == [1, 1, 2, 1, 0]
    val_labels = load_split(tmp_path / "shards", "val")[1]
    test_labels = load_split(tmp_path / "shards", "test")[1]
    assert len(val_labels) == 2 and len(test_labels) == 2
    assert sorted([*val_labels, *test_labels]) == [0, 0, 1, 1]
    assert manifest["train_unk_fraction"] == 0.2  # "x" of 5 train tokens
    # the settings that made the rows travel with them (to the model file, through train)
    assert manifest["clean"]["lowercase"] is False and manifest["tokenize"] == {"level": "word"}
    assert (manifest["seq_len"], manifest["truncate"], manifest["pad"]) == (3, "keep_first", "left")
    assert (manifest["val_fraction"], manifest["seed"]) == (0.5, 42)
