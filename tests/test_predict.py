"""Raw text -> predictions: the same preprocessing as the pipeline, one answer from the predict
command, the MLflow model and evaluate, and the predict command's input handling."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from pipeline.clean import tokenize
from pipeline.core.params import EncodeParams, EvaluateParams, Params, TokenizeParams
from pipeline.data.text import Preprocessing
from pipeline.encode import encode_batch
from pipeline.evaluate import score_test_split
from pipeline.model.batching import Split
from pipeline.model.inference import Predictor, evaluate_split
from pipeline.model.model_file import save_model_file
from pipeline.model.network import LSTMClassifier, ModelConfig
from tests.conftest import REPO

TEXTS = [
    "Great value!! Works as described, 10/10 would buy again.",
    "Don't buy: it broke after 2 weeks. See http://example.com/returns for the <b>awful</b> policy.",
    '  "Not bad," she said... (it\'s fine)  ',
    "a",
    "Two lines:\nfine.\r\nReally fine.  ",
]
VOCAB = ["<pad>", "<unk>", "great", "value", "!", ",", "works", "broke", "after", "00", "weeks", ".", "<url>",
         "not", "bad", "do", "n't", "buy", ":", "it", "'s", "fine", "(", ")", "``", "''", "a"]  # fmt: skip


def make_model_file(path, params: Params | None = None, seq_len: int = 12, pad: str = "left", threshold: float = 0.5):
    params = params or Params()
    torch.manual_seed(0)
    model = LSTMClassifier(ModelConfig(vocab_size=len(VOCAB), embedding_dim=8, hidden_sizes=(8,), pad=pad))
    preprocessing = Preprocessing(params.clean, params.tokenize, seq_len, "keep_last", pad)
    save_model_file(path, model, VOCAB, preprocessing, threshold)
    return model


@pytest.mark.parametrize("level", ["word", "char"])
def test_raw_text_becomes_the_ids_the_clean_and_encode_stages_make(tmp_path, level):
    params = Params(tokenize=TokenizeParams(level=level))
    make_model_file(tmp_path / "model.pt", params)
    ids, lengths = Predictor.from_path(tmp_path / "model.pt").encode(TEXTS)

    # the pipeline's path: ingest strips each line, and a line holds no line break (the pipeline
    # saw such text so); clean tokenizes, encode maps and pads
    as_ingested = [" ".join(text.splitlines()).strip() for text in TEXTS]
    reviews = pl.DataFrame({"label": [1] * len(TEXTS), "text": as_ingested})
    tokens = tokenize(reviews, params.clean, params.tokenize)
    expected = encode_batch(tokens, VOCAB, EncodeParams(seq_len=12, truncate="keep_last", pad="left"))
    np.testing.assert_array_equal(ids, expected["ids"])
    np.testing.assert_array_equal(lengths, expected["lengths"])
    if level == "word":
        assert (ids > 1).sum() > 20  # most tokens are in the vocabulary: the test compares real ids
        assert ids.shape == (5, 12) and lengths[0] == 12  # the first review is truncated (keep_last)


def test_probabilities_match_scoring_the_encoded_split(tmp_path):
    model = make_model_file(tmp_path / "model.pt", pad="right")
    predictor = Predictor.from_path(tmp_path / "model.pt")
    probs = predictor.probabilities(TEXTS)
    ids, lengths = predictor.encode(TEXTS)
    split = Split.from_numpy(ids, np.zeros(len(TEXTS), np.int8), lengths, torch.device("cpu"))
    _, expected = evaluate_split(model.eval(), split, batch_size=3)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert probs.shape == (5,) and len(np.unique(probs)) == 5


def pyfunc_predictions(model_path: Path, tmp_path: Path, texts) -> dict:
    """The MLflow model as evaluate logs it (models from code, the package as its code), saved
    to a folder and loaded back."""
    import mlflow
    import pandas as pd

    saved = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(
        saved,
        python_model=str(REPO / "pipeline" / "tracking" / "pyfunc.py"),
        artifacts={"model": str(model_path)},
        code_paths=[str(REPO / "pipeline")],
        pip_requirements=[],
    )
    frame = texts if isinstance(texts, pd.DataFrame) else pd.DataFrame({"text": texts})
    return mlflow.pyfunc.load_model(str(saved)).predict(frame).to_dict(orient="list")


def test_predict_the_mlflow_model_and_evaluate_agree_at_the_model_files_threshold(tmp_path):
    model_path = tmp_path / "model.pt"
    make_model_file(model_path)
    probs = Predictor.from_path(model_path).probabilities(TEXTS)
    threshold = float(np.median(probs))  # some reviews on each side, and not the default 0.5
    make_model_file(model_path, threshold=threshold)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "params.yaml").write_text("train:\n  threshold: 0.999\n")  # must not be read

    out = predict("--model", str(model_path), "--json", *TEXTS, cwd=elsewhere)
    assert out.returncode == 0, out.stderr
    by_command = [json.loads(line) for line in out.stdout.splitlines()]
    by_pyfunc = pyfunc_predictions(model_path, tmp_path, TEXTS)
    model_file = Predictor.from_path(model_path).file
    ids, lengths = model_file.preprocessing.encode(TEXTS, model_file.vocab)
    by_evaluate = score_test_split(model_file, ids, np.zeros(len(TEXTS), np.int8), lengths, EvaluateParams())

    expected_labels = [int(p >= threshold) for p in probs]
    assert 0 < sum(expected_labels) < len(TEXTS)
    assert [row["label"] for row in by_command] == by_pyfunc["label"] == expected_labels
    assert [row["sentiment"] for row in by_command] == by_pyfunc["sentiment"]
    np.testing.assert_allclose([row["probability"] for row in by_command], probs, atol=1e-6)
    np.testing.assert_allclose(by_pyfunc["probability"], probs, atol=1e-6)
    np.testing.assert_allclose(by_evaluate, probs, atol=1e-6)


def predict(*args, stdin=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.predict", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
    )


def test_predict_command_scores_arguments_files_and_stdin(tmp_path):
    make_model_file(tmp_path / "model.pt")
    expected = Predictor.from_path(tmp_path / "model.pt").probabilities(TEXTS[:2])

    out = predict("--model", str(tmp_path / "model.pt"), "--json", *TEXTS[:2])
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == TEXTS[:2]
    assert [r["probability"] for r in rows] == pytest.approx(expected.tolist(), abs=1e-6)
    assert all(r["sentiment"] == ("positive" if r["probability"] >= 0.5 else "negative") for r in rows)

    (tmp_path / "reviews.txt").write_text("\n".join(TEXTS[:2]) + "\n")
    from_file = predict("--model", str(tmp_path / "model.pt"), "--file", str(tmp_path / "reviews.txt"))
    from_stdin = predict("--model", str(tmp_path / "model.pt"), stdin="\n".join(TEXTS[:2]))
    assert from_file.returncode == 0 and from_file.stdout == from_stdin.stdout
    assert len(from_file.stdout.splitlines()) == 2 and f"{expected[0]:.4f}" in from_file.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--model", "{model}"], "", "no reviews given"),
        (["--model", "{model}", "fine", "  "], None, "review 2 is empty"),
        (["--model", "{tmp}/missing.pt", "fine"], None, "missing.pt: not found"),
        (["--model", "{model}", "--file", "{tmp}/none.txt"], None, "none.txt: no such file"),
    ],
)
def test_predict_command_bad_input_is_one_clear_line(tmp_path, args, stdin, message):
    make_model_file(tmp_path / "model.pt")
    args = [a.format(model=tmp_path / "model.pt", tmp=tmp_path) for a in args]
    out = predict(*args, stdin=stdin, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "values, message",
    [
        ([], 'no records to score: send at least one, e.g. {"text": "Great value."}'),
        (["fine", None], "'text' must be a non-empty string: record 1 is null"),
        (["", " \n", "fine"], "'text' must be a non-empty string: record 0 is \"\", record 1 is \" \\n\""),
        ([123, True, [1, 2], {"a": 1}, float("nan")],
         "'text' must be a non-empty string: record 0 is 123, record 1 is true, record 2 is [1, 2], "
         'record 3 is {"a": 1}, record 4 is null'),
        ([None] * 7, "'text' must be a non-empty string: record 0 is null, record 1 is null, record 2 is null, "
         "record 3 is null, record 4 is null (and 2 more)"),
    ],
)  # fmt: skip
def test_the_mlflow_model_refuses_records_that_are_not_text_naming_them(tmp_path, values, message):
    from mlflow.exceptions import MlflowException

    make_model_file(tmp_path / "model.pt")
    with pytest.raises(MlflowException) as error:
        pyfunc_predictions(tmp_path / "model.pt", tmp_path, values)
    assert error.value.message == message and error.value.get_http_status_code() == 400


def test_a_review_without_a_known_word_gets_no_label(tmp_path):
    make_model_file(tmp_path / "model.pt")
    texts = ["great value", "<p><br/></p>", "zebra quokka", "fine"]  # tags only; unknown words only
    by_pyfunc = pyfunc_predictions(tmp_path / "model.pt", tmp_path, texts)
    assert by_pyfunc["sentiment"][1:3] == ["no known words"] * 2
    assert by_pyfunc["label"][1:3] == by_pyfunc["probability"][1:3] == [None, None]
    assert by_pyfunc["sentiment"][0] in ("positive", "negative") and 0 < by_pyfunc["probability"][3] < 1

    out = predict("--model", str(tmp_path / "model.pt"), "--json", *texts)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[2] == {"text": "zebra quokka", "probability": None, "label": None, "sentiment": "no known words"}
    assert [row["label"] for row in rows] == by_pyfunc["label"]
    table = predict("--model", str(tmp_path / "model.pt"), *texts).stdout.splitlines()
    assert table[2] == "no known words  zebra quokka"


def test_the_mlflow_model_names_the_fields_it_got_when_text_is_missing(tmp_path):
    import pandas as pd
    from mlflow.exceptions import MlflowException

    make_model_file(tmp_path / "model.pt")
    with pytest.raises(MlflowException) as error:
        pyfunc_predictions(tmp_path / "model.pt", tmp_path, pd.DataFrame({"review": ["fine"], "stars": [5]}))
    assert error.value.message == "the records have no 'text' field (they have review, stars)"
