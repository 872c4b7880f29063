"""Reviews as users have them: CSV, TSV, JSON Lines and Parquet (also compressed) through ingest,
every row accounted for, labels mapped; bad input stops with one line; new reviews scored in
batches into Parquet."""

import bz2
import csv
import gzip
import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from pipeline.core.cli import StageError
from pipeline.core.params import DataParams, parse_params
from pipeline.data.tables import Columns, file_format, read_table
from pipeline.data.text import Preprocessing
from pipeline.ingest import UNMAPPED, ingest, ingest_file
from pipeline.model.inference import Predictor
from pipeline.model.model_file import ModelFile, save_model_file
from pipeline.model.network import LSTMClassifier, ModelConfig
from pipeline.model.scoring import score_file
from tests.conftest import BIN, REPO, committed_tree, run


def write_csv(path, header, rows, delimiter=","):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


def imdb_csv(path):
    """Kaggle's "IMDB Dataset.csv": review,sentiment; quotes and line breaks inside reviews."""
    rows = [
        ('One of the best films, "truly" great.\nLoved it.', "positive"),
        ("Awful, boring.", "negative"),
        ("", "positive"),  # no text
        ("Meh.", "neutral"),  # a label in neither list
        ("Great cast.", "Positive "),  # case and white space do not matter
    ]
    write_csv(path, ["review", "sentiment"], rows)
    with path.open("a", encoding="utf-8") as f:
        f.write("one,field,too many\n")  # does not parse: 3 fields
        f.write("Fine film.,positive\n")


def read_all(path, fmt, columns):
    return pl.concat(list(read_table(path, fmt, columns)))


def test_the_format_comes_from_the_name_through_a_compression_suffix_or_from_data_format(tmp_path):
    names = {
        "IMDB Dataset.csv": "csv",
        "a.tsv.gz": "tsv",
        "r.jsonl.bz2": "jsonl",
        "r.ndjson": "jsonl",
        "t.parquet": "parquet",
        "train.ft.txt.bz2": "fasttext",
        "reviews.txt": "fasttext",
    }
    for name, fmt in names.items():
        assert file_format(tmp_path / name, "auto") == fmt, name
    assert file_format(tmp_path / "data.txt", "csv") == "csv"


def test_kaggle_imdb_csv_needs_only_the_two_column_names_and_accounts_for_every_row(tmp_path):
    imdb_csv(tmp_path / "IMDB Dataset.csv")
    data = DataParams(text_column="review", label_column="sentiment")
    counts, rejects = ingest_file(tmp_path / "IMDB Dataset.csv", tmp_path / "out.parquet", "train", data)
    reviews = pl.read_parquet(tmp_path / "out.parquet")
    assert reviews.rows() == [
        (1, 'One of the best films, "truly" great.\nLoved it.'),
        (0, "Awful, boring."),
        (1, "Great cast."),
        (1, "Fine film."),
    ]
    assert rejects.select("line", "reason").rows() == [
        (3, "empty text"),
        (4, "label 'neutral' is in none of data.classes"),
        (6, "CSV row does not parse: 3 fields, expected 2"),
    ]
    assert rejects["excerpt"].to_list()[1:] == ["Meh.", "one,field,too many"]
    assert counts == {"lines": 7, "rows": 4, "rejects": 3, "classes": [1, 3]}


def test_star_ratings_map_to_two_classes_and_three_stars_are_counted_rejects(tmp_path):
    rows = [[f"b{i}", stars, f"review {i}"] for i, stars in enumerate([1, 2, 3, 4, 5, 3, "4.0"])]
    write_csv(tmp_path / "yelp.csv", ["business_id", "stars", "text"], rows)
    data = DataParams(
        label_column="stars", classes=[{"name": "negative", "labels": [1, 2]}, {"name": "positive", "labels": [4, 5]}]
    )
    counts, rejects = ingest_file(tmp_path / "yelp.csv", tmp_path / "out.parquet", "train", data)
    assert pl.read_parquet(tmp_path / "out.parquet")["label"].to_list() == [0, 0, 1, 1, 1]
    assert rejects.select("line", "reason").rows() == [
        (3, "label '3' is in none of data.classes"),
        (6, "label '3' is in none of data.classes"),
    ]
    assert counts["lines"] == counts["rows"] + counts["rejects"] == 7


def test_json_lines_with_a_title_and_a_parquet_file_with_0_and_1(tmp_path):
    lines = [
        {"title": "Great", "text": "Works well.", "rating": 5},
        {"title": None, "text": "Broke.", "rating": 1},
        {"title": "So so", "text": "Fine.", "rating": 3},
        {"title": "x", "text": "Bad.", "rating": "2.0"},
        {"title": "no text", "rating": 5},
    ]
    path = tmp_path / "reviews.jsonl.bz2"
    body = "\n".join(json.dumps(line) for line in lines) + "\nnot json\n\n"
    path.write_bytes(bz2.compress(body.encode()))
    data = DataParams(
        title_column="title",
        label_column="rating",
        classes=[{"name": "negative", "labels": [1, 2]}, {"name": "positive", "labels": [4, 5]}],
    )
    counts, rejects = ingest_file(path, tmp_path / "out.parquet", "train", data)
    reviews = pl.read_parquet(tmp_path / "out.parquet")
    assert reviews.rows() == [(1, "Great: Works well."), (0, "Broke."), (0, "x: Bad."), (1, "no text:")]
    assert rejects.select("line", "reason").rows() == [
        (3, "label '3' is in none of data.classes"),
        (6, "not a JSON object"),
        (7, "empty line"),
    ]
    assert counts["lines"] == 7

    pl.DataFrame({"text": ["good", "bad", "ok", None], "label": [1, 0, None, 1]}).write_parquet(tmp_path / "t.parquet")
    counts, rejects = ingest_file(tmp_path / "t.parquet", tmp_path / "out.parquet", "train", DataParams())
    assert pl.read_parquet(tmp_path / "out.parquet").rows() == [(1, "good"), (0, "bad")]
    assert rejects.select("line", "reason").rows() == [(3, "missing label"), (4, "empty text")]


def test_compressed_tables_and_tsv_read_as_the_plain_ones(tmp_path):
    imdb_csv(tmp_path / "plain.csv")
    (tmp_path / "packed.csv.gz").write_bytes(gzip.compress((tmp_path / "plain.csv").read_bytes()))
    columns = Columns("review", label="sentiment")
    packed = read_all(tmp_path / "packed.csv.gz", "auto", columns)
    assert packed.equals(read_all(tmp_path / "plain.csv", "csv", columns))
    write_csv(tmp_path / "r.tsv", ["text", "label"], [["tab\tinside", "1"], ["b", "0"]], delimiter="\t")
    tsv = read_all(tmp_path / "r.tsv", "auto", Columns("text", label="label"))
    assert tsv["text"].to_list() == ["tab\tinside", "b"]
    frame = pl.DataFrame({"text": ["good"], "label": [True]})
    frame.write_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.parquet.bz2").write_bytes(bz2.compress((tmp_path / "t.parquet").read_bytes()))
    rows = read_all(tmp_path / "t.parquet.bz2", "auto", Columns("text", label="label"))
    assert rows.select("row", "text", "label").rows() == [(1, "good", "true")]


def test_a_csv_value_that_is_not_utf8_is_a_reject_of_its_row_only(tmp_path):
    (tmp_path / "r.csv").write_bytes(b"text,label\ngood,1\nbad \xff\xfe,0\nfine,0\n")
    counts, rejects = ingest_file(tmp_path / "r.csv", tmp_path / "out.parquet", "train", DataParams())
    assert rejects.select("line", "reason").rows() == [(2, "invalid UTF-8")]
    assert counts == {"lines": 3, "rows": 2, "rejects": 1, "classes": [1, 1]}


def test_a_csv_without_a_header_row_reads_its_columns_by_name_or_number_and_counts_every_row(tmp_path):
    # as the Twitter entity data: id, entity, sentiment, text; every row a review, quotes and line breaks inside
    path = tmp_path / "tweets.csv"
    path.write_text(
        '1,Game,Positive,"great, really\ngreat"\n'
        "2,Game,Negative,awful\n"
        "3,Game,Negative\n"  # a field short: a counted reject at its own row
        "4,Game,Neutral,meh\n"
        "5,Game,Positive,fine\n"
    )
    named = DataParams(
        header=False,
        columns=["id", "entity", "sentiment", "text"],
        label_column="sentiment",
        classes=[{"name": "negative", "labels": ["negative"]}, {"name": "positive", "labels": ["positive"]}],
    )
    by_number = DataParams(
        header=False,
        text_column="column_4",
        label_column="column_3",
        classes=[{"name": "negative", "labels": ["negative"]}, {"name": "positive", "labels": ["positive"]}],
    )
    for data in (named, by_number):
        counts, rejects = ingest_file(path, tmp_path / "out.parquet", "train", data)
        assert pl.read_parquet(tmp_path / "out.parquet").rows() == [
            (1, "great, really\ngreat"),
            (0, "awful"),
            (1, "fine"),
        ]
        assert rejects.select("line", "reason").rows() == [
            (3, "CSV row does not parse: 3 fields, expected 4"),
            (4, "label 'neutral' is in none of data.classes"),
        ]
        assert counts == {"lines": 5, "rows": 3, "rejects": 2, "classes": [1, 2]}
    (tmp_path / "r.jsonl").write_text('{"text": "good", "label": 1}\n')
    for source, data, message in (
        (
            path,
            DataParams(header=False, columns=["id", "text", "label"]),
            "data.columns names 3 columns but the first row has 4 fields (name all 4, in order)",
        ),
        (
            path,
            DataParams(header=False),
            "no column 'text' (columns: 'column_1', 'column_2', 'column_3', "
            "'column_4') (set data.text_column to one of them)",
        ),
        (
            tmp_path / "r.jsonl",
            DataParams(header=False),
            "a jsonl file names its own columns (data.header: false is for CSV and TSV files)",
        ),
    ):
        with pytest.raises(StageError) as error:
            ingest_file(source, tmp_path / "bad.parquet", "train", data)
        assert str(error.value) == f"{source}: {message}"
    with pytest.raises(
        ValueError,
        match=r"^data.columns: names the columns of a file without a header row: "
        "set data.header: false too$",
    ):
        parse_params({"data": {"columns": ["text", "label"]}})
    with pytest.raises(ValueError, match=r"^data.columns: 'text' is named twice$"):
        parse_params({"data": {"header": False, "columns": ["text", "text"]}})


def test_bad_input_stops_ingest_with_one_line_naming_the_file_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    imdb_csv(tmp_path / "IMDB Dataset.csv")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "text.parquet").write_text("text,label\na,1\n")
    (tmp_path / "r.jsonl").write_text("just, some\nwords\n")
    rows = [[f"review {i}", stars] for i, stars in enumerate([1, 2, 4, 5])]
    write_csv(tmp_path / "stars.csv", ["text", "stars"], rows)
    cases = [
        (
            dict(train="IMDB Dataset.csv", text_column="text", label_column="sentiment"),
            "IMDB Dataset.csv: no column 'text' (columns: 'review', 'sentiment') (set data.text_column to one of them)",
        ),
        (
            dict(train="binary.csv"),
            "binary.csv: not a CSV file (binary data) (set data.format to the file's format)",
        ),
        (
            dict(train="text.parquet"),
            "text.parquet: not a PARQUET file (Parquet magic bytes not found in footer. Either the file is "
            "corrupted or this is not a parquet file.) (set data.format to the file's format)",
        ),
        (
            dict(train="r.jsonl"),
            "r.jsonl: not a JSONL file (no JSON object in its first lines: 'just, some') "
            "(set data.format to the file's format)",
        ),
        (
            dict(train="stars.csv", label_column="stars"),
            "stars.csv: no 'negative' reviews: its labels ['negative', 'neg', 0] in data.classes match none of "
            "the values of column 'stars' (found: '1' (1), '2' (1), '4' (1), '5' (1)) "
            "(set the labels of class 'negative' to the values that mean it)",
        ),
    ]
    for settings, message in cases:
        with pytest.raises(StageError) as error:
            ingest(DataParams(**({"test": "IMDB Dataset.csv"} | settings)), tmp_path / "reviews")
        assert str(error.value) == message
        assert not (tmp_path / "reviews").exists() and not list(tmp_path.glob(".reviews*"))


def test_label_values_must_not_be_in_both_lists_and_score_is_one_file():
    with pytest.raises(ValueError) as error:
        parse_params(
            {"data": {"classes": [{"name": "negative", "labels": ["neg"]}, {"name": "neutral", "labels": ["Neg"]}]}}
        )
    assert str(error.value) == (
        "data.classes: 'Neg' is in class 'negative' and in class 'neutral': a label value maps to one class"
    )
    with pytest.raises(ValueError, match=r"^data.classes: needs at least two classes, got \['positive'\]$"):
        parse_params({"data": {"classes": [{"name": "positive", "labels": [1]}]}})
    with pytest.raises(ValueError, match=r"data.score: one file at most"):
        parse_params({"data": {"score": ["a.csv", "b.csv"]}})


def tiny_predictor() -> Predictor:
    torch.manual_seed(0)
    vocab = ["<pad>", "<unk>", "good", "bad", "film", "."]
    model = LSTMClassifier(ModelConfig(vocab_size=len(vocab), embedding_dim=4, hidden_sizes=(4,)))
    preprocessing = Preprocessing.from_dict(
        {
            "clean": {"lowercase": True, "replace_digits": True, "replace_urls": True, "strip_html": True},
            "tokenize": {"level": "word"},
            "seq_len": 20,
            "truncate": "keep_first",
            "pad": "left",
        }
    )
    return Predictor(ModelFile(model.config, model.state_dict(), vocab, preprocessing, 0.5))


def test_score_file_writes_one_row_per_input_row_in_order_equal_to_predict(tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.model.scoring.CHUNK_ROWS", 3)  # several chunks
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["good", "bad", "film", "."], rng.integers(1, 8))) for _ in range(10)]
    rows = [[f"id{i}", text] for i, text in enumerate(texts)] + [["id10", ""], ["id11", "zzz qqq"]]
    write_csv(tmp_path / "new.csv", ["id", "review"], rows)
    with (tmp_path / "new.csv").open("a") as f:
        f.write("id12,too,many\nid13,good film\n")
    with (tmp_path / "new.csv").open("ab") as f:
        f.write(b"id\xff,good film\n")  # an id that is not UTF-8: the row is not scored
    predictor = tiny_predictor()
    columns = Columns("review", keep=("id",))
    counts = score_file(predictor, tmp_path / "new.csv", "auto", columns, tmp_path / "s.parquet")
    scored = pl.read_parquet(tmp_path / "s.parquet")
    assert scored.columns == ["row", "id", "probability", "label", "sentiment"]
    assert scored["row"].to_list() == list(range(1, 16))
    assert scored["id"].to_list() == [f"id{i}" for i in range(12)] + [None, "id13", None]
    assert scored.row(-1)[2:] == (None, None, "invalid UTF-8")
    expected = predictor.predict(texts + ["good film"])
    # chunks of 3 against one batch: other batch shapes may move the last float32 bits (the score
    # stage and predict cut a file into the same chunks, and match exactly: see the score stage's test)
    probabilities = scored["probability"].to_list()[:10] + scored["probability"].to_list()[13:14]
    assert probabilities == pytest.approx(expected["probability"], rel=0, abs=1e-6)
    assert scored["label"].to_list()[:10] == expected["label"][:10]
    assert scored["sentiment"].to_list()[10:13] == [
        "empty text",
        "no known words",
        "CSV row does not parse: 3 fields, expected 2",
    ]
    assert scored["probability"].to_list()[10:13] == [None, None, None]
    assert counts == {"rows": 15, "unscored": 4}

    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 40)
    for source, message in (
        ("new.csv", "no column 'text' (columns: 'id', 'review') (set data.text_column to one of them)"),
        ("binary.csv", "not a CSV file (binary data) (set data.format to the file's format)"),
    ):
        with pytest.raises(StageError) as error:
            score_file(predictor, tmp_path / source, "auto", Columns("text"), tmp_path / "bad.parquet")
        assert str(error.value) == f"{tmp_path / source}: {message}"
        assert not (tmp_path / "bad.parquet").exists() and not list(tmp_path.glob(".bad*"))


def test_predict_scores_a_csv_into_parquet_with_the_score_stages_columns(tmp_path):
    path = tmp_path / "model.pt"
    model_file = tiny_predictor().file
    save_model_file(path, LSTMClassifier(model_file.config).eval(), model_file.vocab, model_file.preprocessing, 0.5)
    write_csv(tmp_path / "new.csv", ["id", "review"], [["a", "good film"], ["b", "bad"]])
    command = [sys.executable, "-m", "pipeline.predict", "--model", str(path), "--file", str(tmp_path / "new.csv")]
    command += ["--text-column", "review", "--keep-column", "id", "--output", str(tmp_path / "out.parquet")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"2 reviews scored -> {tmp_path / 'out.parquet'}\n"
    scored = pl.read_parquet(tmp_path / "out.parquet")
    assert scored.columns == ["row", "id", "probability", "label", "sentiment"] and scored["id"].to_list() == ["a", "b"]
    missing = subprocess.run(
        command[:-1] + [str(tmp_path / "out.parquet")] + ["--text-column", "text"], capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'new.csv'}: no column 'text' (columns: 'id', 'review') (set --text-column to one of them)"
    )


def sample_rows(root, split):
    """``(label, text)`` of the synthetic sample's fastText lines."""
    with bz2.open(root / "data" / "sample" / f"{split}.ft.txt.bz2", "rt", encoding="utf-8") as f:
        return [(int(line[9]) - 1, line[11:].rstrip("\n")) for line in f]


def write_imdb_csv(path, rows):
    body = [(text, "positive" if label else "negative") for label, text in rows]
    write_csv(path, ["review", "sentiment"], body + [("A so-so film.", "neutral"), ("", "positive")])
    settings = {"text_column": "review", "label_column": "sentiment"}
    return settings, [(len(rows) + 1, "label 'neutral' " + UNMAPPED), (len(rows) + 2, "empty text")]


def write_yelp_csv(path, rows):
    body, rejects = [], []
    for i, (label, text) in enumerate(rows):
        body.append([f"b{i}", [1, 2][i % 2] if label == 0 else [4, 5][i % 2], text])
        if i % 10 == 0:  # three stars: neither negative nor positive
            body.append([f"b{i}x", 3, text])
            rejects.append((len(body), "label '3' " + UNMAPPED))
    write_csv(path, ["business_id", "stars", "text"], body)
    return {
        "label_column": "stars",
        "classes": [{"name": "negative", "labels": [1, 2]}, {"name": "positive", "labels": [4, 5]}],
    }, rejects


def write_json_lines(path, rows):
    with path.open("w", encoding="utf-8") as f:
        for label, text in rows:
            words = text.split(" ")
            line = {"title": " ".join(words[:3]), "text": " ".join(words[3:]), "rating": 5 if label else 1}
            f.write(json.dumps(line) + "\n")
        f.write("{not json\n")
    settings = {
        "title_column": "title",
        "label_column": "rating",
        "classes": [{"name": "negative", "labels": [1, 2]}, {"name": "positive", "labels": [4, 5]}],
    }
    return settings, [(len(rows) + 1, "not a JSON object")]


def write_parquet(path, rows):
    labels = [label for label, _ in rows] + [None]
    pl.DataFrame({"text": [text for _, text in rows] + ["no label"], "label": labels}).write_parquet(path)
    return {}, [(len(rows) + 1, "missing label")]


WRITERS = {"csv": write_imdb_csv, "stars.csv": write_yelp_csv, "jsonl": write_json_lines, "parquet": write_parquet}


@pytest.fixture(scope="module")
def formats_repo(tmp_path_factory):
    """A copy of the committed tree with a small synthetic sample, as ``(root, env, rows by split)``."""
    root = tmp_path_factory.mktemp("formats")
    env = committed_tree(root)
    run([sys.executable, "-m", "pipeline.sample", "--train-rows", "6000", "--test-rows", "600"], root, env)
    return root, env, {split: sample_rows(root, split) for split in ("train", "test")}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_each_format_goes_through_dvc_repro_to_an_evaluated_model_with_every_row_accounted_for(formats_repo, kind):
    root, env, rows = formats_repo
    expected, files = {}, {}
    for split in ("train", "test"):
        files[split] = str(root / "data" / f"{split}.{kind}")
        settings, expected[split] = WRITERS[kind](root / "data" / f"{split}.{kind}", rows[split])
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"] = DataParams(**settings, **files).model_dump()  # every data key as this format needs it
    params["train"]["epochs"] = 3
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = run([str(BIN / "dvc"), "repro"], root, env)
    # the same reviews as an earlier format's (the stars CSV's are the IMDb CSV's) reuse its model
    assert "Running stage 'ingest'" in output and "up to date" in run([str(BIN / "dvc"), "status"], root, env)
    metrics = json.loads((root / "metrics" / "ingest.json").read_text())
    rejects = pl.read_parquet(root / "data" / "interim" / "reviews" / "rejects.parquet")
    for split in ("train", "test"):
        assert metrics[split]["lines"] == metrics[split]["rows"] + metrics[split]["rejects"]
        assert metrics[split]["rows"] == len(rows[split])
        found = rejects.filter(pl.col("split") == split).select("line", "reason").rows()
        assert found == expected[split], split
    assert json.loads((root / "metrics" / "eval.json").read_text())["accuracy"] >= 0.8


def test_the_score_stage_scores_new_reviews_once_as_predict_does(formats_repo):
    root, env, rows = formats_repo
    texts = [text for _, text in rows["test"][:300]]
    write_csv(root / "new.csv", ["id", "text"], [[f"r{i}", text] for i, text in enumerate(texts)] + [["empty", ""]])
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"].update(score=["new.csv"], keep_columns=["id"], text_column="text", title_column=None)
    params["data"].update(train="data/sample/train.ft.txt.bz2", test="data/sample/test.ft.txt.bz2")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = run([str(BIN / "dvc"), "repro"], root, env)
    assert f"score: {len(texts) + 1} reviews of new.csv scored, 1 without a score (see their sentiment)" in output
    scored = pl.read_parquet(root / "data" / "predictions" / "scored.parquet")
    assert scored["row"].to_list() == list(range(1, len(texts) + 2))
    assert scored["id"].to_list() == [f"r{i}" for i in range(len(texts))] + ["empty"]
    (root / "new.txt").write_text("\n".join(texts) + "\n")
    predicted = run([sys.executable, "-m", "pipeline.predict", "--file", "new.txt", "--json"], root, env)
    answers = [json.loads(line) for line in predicted.splitlines() if line.startswith("{")]
    assert [a["probability"] for a in answers] == [round(p, 6) for p in scored["probability"].to_list()[:-1]]
    assert [a["sentiment"] for a in answers] == scored["sentiment"].to_list()[:-1]
    assert scored.row(-1)[2:] == (None, None, "empty text")
    again = run([str(BIN / "dvc"), "repro"], root, env)
    assert "Running stage" not in again  # cached: nothing changed


def test_label_counts_stay_bounded_over_many_batches_and_still_name_the_values(tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.data.tables.BATCH_ROWS", 1)  # 100 batches of one row
    pl.DataFrame({"text": ["a review"] * 100, "label": ["good"] * 60 + ["bad"] * 40}).write_parquet(tmp_path / "t.pq")
    data = DataParams(
        format="parquet", classes=[{"name": "negative", "labels": ["awful"]}, {"name": "positive", "labels": ["good"]}]
    )
    with pytest.raises(StageError) as error:
        ingest_file(tmp_path / "t.pq", tmp_path / "out.parquet", "train", data)
    assert str(error.value) == (
        f"{tmp_path / 't.pq'}: no 'negative' reviews: its labels ['awful'] in data.classes match none of the values "
        "of column 'label' (found: 'good' (60), 'bad' (40)) "
        "(set the labels of class 'negative' to the values that mean it)"
    )
