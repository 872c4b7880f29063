"""Raw text -> predictions: the same preprocessing as the pipeline, and the predict command."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch

from pipeline.clean import tokenize
from pipeline.common import StageError
from pipeline.encode import encode_batch
from pipeline.model import LSTMClassifier, ModelConfig
from pipeline.params import Params
from pipeline.predict import TextClassifier, preprocessing_settings
from pipeline.train import Split, evaluate_split, save_model
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


def make_model_file(path, params: Params | None = None, seq_len: int = 12, pad: str = "left"):
    params = params or Params()
    torch.manual_seed(0)
    model = LSTMClassifier(ModelConfig(vocab_size=len(VOCAB), embedding_dim=8, hidden_sizes=(8,), pad=pad))
    manifest = {"seq_len": seq_len, "truncate": "keep_last", "pad": pad}
    save_model(model, path, vocab=VOCAB, preprocessing=preprocessing_settings(params, manifest))
    return model


@pytest.mark.parametrize("level", ["word", "char"])
def test_raw_text_becomes_the_ids_the_clean_and_encode_stages_make(tmp_path, level):
    params = replace(Params(), tokenize=replace(Params().tokenize, level=level))
    make_model_file(tmp_path / "model.pt", params)
    classifier = TextClassifier.from_file(tmp_path / "model.pt")
    ids, lengths = classifier.encode_texts(TEXTS)

    # the pipeline's path: ingest strips each line, clean tokenizes, encode maps and pads
    # ingest strips each line, and a line holds no line break: the pipeline saw such text so
    as_ingested = [" ".join(text.splitlines()).strip() for text in TEXTS]
    reviews = pl.DataFrame({"label": [1] * len(TEXTS), "text": as_ingested})
    tokens = tokenize(reviews, params.clean, params.tokenize)
    expected = encode_batch(tokens, VOCAB, classifier.encode)
    np.testing.assert_array_equal(ids, expected["ids"])
    np.testing.assert_array_equal(lengths, expected["lengths"])
    if level == "word":
        assert (ids > 1).sum() > 20  # most tokens are in the vocabulary: the test compares real ids
        assert ids.shape == (5, 12) and lengths[0] == 12  # the first review is truncated (keep_last)


def test_probabilities_match_scoring_the_encoded_split(tmp_path):
    model = make_model_file(tmp_path / "model.pt", pad="right")
    classifier = TextClassifier.from_file(tmp_path / "model.pt")
    probs = classifier.predict_proba(TEXTS)
    ids, lengths = classifier.encode_texts(TEXTS)
    split = Split.from_numpy(ids, np.zeros(len(TEXTS), np.int8), lengths, torch.device("cpu"))
    _, expected = evaluate_split(model.eval(), split, "right", batch_size=3)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert probs.shape == (5,) and len(np.unique(probs)) == 5


def test_a_model_file_without_vocabulary_is_a_clear_error(tmp_path):
    save_model(LSTMClassifier(ModelConfig(vocab_size=5)), tmp_path / "old.pt")
    with pytest.raises(StageError, match="no vocabulary"):
        TextClassifier.from_file(tmp_path / "old.pt")


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
    expected = TextClassifier.from_file(tmp_path / "model.pt").predict_proba(TEXTS[:2])

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
