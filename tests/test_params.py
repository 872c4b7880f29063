import re

import pytest

from pipeline.core.params import Params, ParamsError, load_params, parse_params
from tests.conftest import REPO


def test_repository_params_file_loads_and_matches_the_defaults_it_documents():
    params = load_params(REPO / "params.yaml")
    assert params.vocab.min_freq == 2
    assert params.encode.pad == "left" and params.encode.truncate == "keep_first"
    assert params.flat()["train.lr"] == params.train.lr


def test_flat_keys_are_dotted_section_names():
    flat = Params().flat()
    assert "train.hidden_size" in flat and "data.train" in flat
    assert all(key.count(".") == 1 for key in flat)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"train": {"lr": "fast"}}, "train.lr: expected float"),
        ({"train": {"epoch": 3}}, "train.epoch: unknown key"),
        ({"trian": {}}, "trian: unknown key"),
        ({"encode": {"pad": "middle"}}, "encode.pad: expected 'left' or 'right'"),
        ({"train": {"num_layers": 1.5}}, "train.num_layers: expected int"),
        ({"train": {"bidirectional": "yes"}}, "train.bidirectional: expected bool"),
        ({"vocab": {"min_freq": 0}}, "vocab.min_freq: must be > 0"),
        ({"train": {"embedding_dropout": 1.5}}, "train.embedding_dropout: must be at least 0 and below 1, got 1.5"),
        ({"train": {"dropout": 1.0}}, "train.dropout: must be at least 0 and below 1, got 1.0"),
        ({"train": {"grad_clip": -1}}, "train.grad_clip: must be > 0, got -1"),
        ({"train": {"threshold": 1.5}}, "train.threshold: must be between 0 and 1, got 1.5"),
        ({"mlflow": {"champion_margin": -0.1}}, "mlflow.champion_margin: must be between 0 and 1, got -0.1"),
        ({"mlflow": {"experiment": " "}}, "mlflow.experiment: must not be empty"),
        ({"mlflow": {"registered_model": ""}}, "mlflow.registered_model: must not be empty (null: do not register)"),
        ({"evaluate": {"length_buckets": [50, 25]}}, "evaluate.length_buckets: must be increasing"),
        ({"mlflow": {"registered_model": 3}}, "mlflow.registered_model: expected str or null"),
        ({"encode": {"val_fraction": 1.0}}, "encode.val_fraction: must be between 0 and 1"),
        ({"train": 3}, "train: expected a mapping"),
        (
            {"data": {"classes": {"negative": [1]}}},
            "data.classes: expected list of {name, labels}, got {'negative': [1]}",
        ),
        ({"data": {"classes": [{"name": "", "labels": [1]}]}}, "data.classes[0].name: string should have at least 1"),
        ({"data": {"classes": [{"name": "a", "labels": []}]}}, "data.classes[0].labels: list should have at least 1"),
        (
            {"data": {"classes": [{"name": "a"}, {"name": "b", "labels": [2]}]}},
            "data.classes[0].labels: field required",
        ),
        (
            {"data": {"classes": [{"name": "a", "labels": [1]}, {"name": "a", "labels": [2]}]}},
            "class 'a' is named twice",
        ),
        ({"data": {"test_fraction": 0}}, "data.test_fraction: must be between 0 and 1 (exclusive), got 0"),
    ],
)
def test_bad_params_name_the_key_and_the_expected_type(mapping, message):
    with pytest.raises(ParamsError, match=re.escape(message)):
        parse_params(mapping)


def test_int_is_accepted_where_a_float_is_expected():
    assert parse_params({"train": {"lr": 1}}).train.lr == 1.0
    assert parse_params({"vocab": {"max_size": None}}).vocab.max_size is None


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "params.yaml")


def test_params_yaml_is_written_as_dvc_writes_it_back(tmp_path):
    """`dvc exp run -S` rewrites params.yaml through its YAML writer: written in that form, an
    experiment's git diff shows the values it changed and nothing else."""
    from dvc.utils.serialize import modify_yaml

    copy = tmp_path / "params.yaml"
    copy.write_text((REPO / "params.yaml").read_text())
    with modify_yaml(copy) as data:
        data["train"]["lr"] = data["train"]["lr"]
        data["evaluate"]["length_buckets"] = list(data["evaluate"]["length_buckets"])
    assert copy.read_text() == (REPO / "params.yaml").read_text()
