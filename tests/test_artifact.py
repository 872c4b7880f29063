"""The model file: what it holds, and one clear line for every file it is not."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from pipeline.core.cli import StageError
from pipeline.core.params import CleanParams, TokenizeParams
from pipeline.data.text import Preprocessing
from pipeline.model.model_file import FORMAT_VERSION, LSTM_ONLY_FORMAT, load_model_file, save_model_file
from pipeline.model.network import LSTMClassifier, ModelConfig
from pipeline.model.ngrams import NgramModel
from tests.conftest import REPO

VOCAB = ["<pad>", "<unk>", "good", "bad", "not", "a", "b", "c", "d", "e"]
PREPROCESSING = Preprocessing(CleanParams(lowercase=False), TokenizeParams(), 4, "keep_last", "right")
RETRAIN = "re-run the train stage: dvc repro train"


NGRAMS = NgramModel(2, np.linspace(-1, 1, 64, dtype=np.float32), 0.25)


def saved_model(path, ngrams=None, blend_weight=0.0):
    config = ModelConfig(vocab_size=10, embedding_dim=8, hidden_sizes=(8,), bidirectional=True, pad="right")
    model = LSTMClassifier(config).eval()
    save_model_file(path, model, VOCAB, PREPROCESSING, 0.3, ngrams, blend_weight)
    return model


def test_the_model_file_loads_with_weights_only_and_predicts_the_same(tmp_path):
    model = saved_model(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["format_version"] == LSTM_ONLY_FORMAT  # the LSTM alone: the format it always had
    assert "pad" not in payload["model"] and payload["preprocessing"]["pad"] == "right"  # stored once
    loaded = load_model_file(tmp_path / "model.pt")
    assert loaded.vocab == VOCAB and loaded.preprocessing == PREPROCESSING and loaded.threshold == 0.3
    assert loaded.config == model.config
    ids = torch.tensor([[2, 3, 4, 0], [5, 6, 7, 8]])
    torch.testing.assert_close(loaded.build()(ids), model(ids))
    assert loaded.ngrams is None and loaded.blend_weight == 0.0


def test_the_n_gram_part_and_blend_weight_come_back_as_saved(tmp_path):
    saved_model(tmp_path / "model.pt", NGRAMS, 0.37)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["format_version"] == FORMAT_VERSION
    loaded = load_model_file(tmp_path / "model.pt")
    assert loaded.blend_weight == 0.37 and loaded.ngrams.ngram_max == 2 and loaded.ngrams.bias == 0.25
    np.testing.assert_array_equal(loaded.ngrams.weights, NGRAMS.weights)


DAMAGES = {
    "no blend weight": lambda p: p.pop("blend_weight"),
    "weight above 1": lambda p: p.update(blend_weight=1.5),
    "NaN weights": lambda p: p["ngrams"]["weights"].__setitem__(3, float("nan")),
    "float64 weights": lambda p: p["ngrams"].update(weights=p["ngrams"]["weights"].double()),
    "text for ngram_max": lambda p: p["ngrams"].update(ngram_max="3"),
    "no bias": lambda p: p["ngrams"].pop("bias"),
    "not a mapping": lambda p: p.update(ngrams=[1, 2]),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_n_gram_part_stops_with_one_line(tmp_path, damage):
    saved_model(tmp_path / "model.pt", NGRAMS, 0.5)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    DAMAGES[damage](payload)
    torch.save(payload, tmp_path / "damaged.pt")
    with pytest.raises(StageError) as error:
        load_model_file(tmp_path / "damaged.pt")
    assert str(error.value) == f"{tmp_path / 'damaged.pt'}: its n-gram model or blend weight is damaged: {RETRAIN}"


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch ran-code",))


def write_bad_files(tmp_path):
    saved_model(tmp_path / "model.pt")
    whole = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    (tmp_path / "code.pt").write_bytes(pickle.dumps(RunsCode()))
    torch.save({"config": {"vocab_size": 10}, "state_dict": {}}, tmp_path / "old.pt")
    torch.save({"format_version": FORMAT_VERSION + 1}, tmp_path / "newer.pt")
    torch.save({"fingerprint": "x", "state": {}}, tmp_path / "checkpoint.pt")


BAD_FILES = {
    "missing.pt": "missing.pt: not found (run the train stage first: dvc repro train)",
    "truncated.pt": f"truncated.pt: not a readable model file (truncated or corrupt?): {RETRAIN}",
    "random.pt": f"random.pt: not a readable model file (truncated or corrupt?): {RETRAIN}",
    "code.pt": f"code.pt: not a readable model file (truncated or corrupt?): {RETRAIN}",
    "old.pt": f"old.pt: a model file from an older version of this pipeline: {RETRAIN}",
    "newer.pt": f"newer.pt: model file format {FORMAT_VERSION + 1}, but this code reads formats 2 and 3: "
    f"use the version of lstm-sentiment that wrote it, or {RETRAIN}",
    "checkpoint.pt": f"checkpoint.pt: not a model file written by the train stage (for a model: {RETRAIN})",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_file_that_is_not_a_current_model_is_one_line_saying_what_to_do(tmp_path, name, monkeypatch):
    write_bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageError) as error:
        load_model_file(name)
    assert str(error.value) == BAD_FILES[name]
    assert not (tmp_path / "ran-code").exists()  # weights_only never ran the pickle's code


def test_the_predict_command_shows_that_line_and_no_traceback(tmp_path):
    write_bad_files(tmp_path)
    for name in ("truncated.pt", "code.pt", "old.pt"):
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.predict", "--model", name, "fine"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1
        assert result.stderr == f"error: {BAD_FILES[name]}\n"  # not PyTorch's advice to load unsafely
    assert not (tmp_path / "ran-code").exists()
