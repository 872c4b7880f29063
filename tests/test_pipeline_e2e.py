"""End to end: `dvc repro` in a temporary copy of the repository, on a smaller synthetic sample."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    run([sys.executable, "-m", "pipeline.sample", "--train-rows", "6000", "--test-rows", "1000"], root, env)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"].update(train="data/sample/train.ft.txt.bz2", test="data/sample/test.ft.txt.bz2")
    params["train"]["epochs"] = 3
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env.update(
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    run(["git", "init", "-q"], root, env)
    first = run([str(BIN / "dvc"), "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-q", "-m", "pipeline run"], root, env)
    return root, env, first


def test_repro_produces_metrics_and_a_model_that_learned(pipeline_run):
    root, _, output = pipeline_run
    for stage in ("ingest", "clean", "vocab", "encode", "train", "evaluate"):
        assert f"Running stage '{stage}'" in output
    result = json.loads((root / "metrics" / "eval.json").read_text())
    assert {"accuracy", "loss", "precision", "recall", "f1", "roc_auc"} <= set(result)
    assert result["rows"] == 500
    assert result["accuracy"] >= 0.85  # chance is 0.5; the label-noise ceiling is about 0.97
    assert (root / "models" / "model.pt").exists()
    assert (root / "plots" / "roc.csv").read_text().startswith("fpr,tpr,threshold")
    predictions = pl.read_parquet(root / "data" / "predictions" / "test.parquet")
    assert predictions.columns == ["label", "probability", "predicted", "length"]
    assert predictions.height == 500
    assert (predictions["label"] == predictions["predicted"]).mean() == pytest.approx(result["accuracy"])


def test_second_repro_does_no_work(pipeline_run):
    root, env, _ = pipeline_run
    assert "up to date" in run([str(BIN / "dvc"), "status"], root, env)
    assert "Running stage" not in run([str(BIN / "dvc"), "repro"], root, env)


def test_mlflow_run_has_params_metrics_and_a_loadable_model(pipeline_run):
    root, _, _ = pipeline_run
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("lstm-sentiment")
    assert experiment.artifact_location == (root / "mlruns").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["model_type"] for r in runs) == ["lstm", "tfidf-logreg"]
    (baseline,) = (r for r in runs if r.data.tags["model_type"] == "tfidf-logreg")
    assert baseline.info.run_name == "tfidf-logreg" and baseline.data.metrics["test_accuracy"] >= 0.85
    assert baseline.data.params["baseline.ngram_max"] == "2"
    (run_,) = (r for r in runs if r.data.tags["model_type"] == "lstm")
    assert run_.data.params["train.epochs"] == "3" and run_.data.params["encode.pad"] == "left"
    assert run_.data.metrics["test_accuracy"] >= 0.85
    assert "val_loss" in run_.data.metrics
    assert len(client.get_metric_history(run_.info.run_id, "val_loss")) == 3
    assert {a.path for a in client.list_artifacts(run_.info.run_id)} >= {"vocab.json", "params.yaml"}

    models = mlflow.search_logged_models(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"source_run_id = '{run_.info.run_id}'",
        output_format="list",
    )
    model = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
    shards = root / "data" / "processed" / "shards"
    ids = np.load(shards / "test" / "ids-00000.npy")[:200]
    labels = np.load(shards / "test" / "labels-00000.npy")[:200]
    logits = np.asarray(model.predict(ids)).reshape(-1)
    assert ((logits > 0) == labels.astype(bool)).mean() >= 0.85


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def test_experiments_rerun_only_the_stages_downstream_of_the_changed_param(pipeline_run):
    root, env, _ = pipeline_run
    dvc = str(BIN / "dvc")
    assert stages_run(run([dvc, "exp", "run", "-S", "train.lr=0.002"], root, env)) == {"train", "evaluate"}
    assert stages_run(run([dvc, "exp", "run", "-S", "vocab.min_freq=3"], root, env)) == {
        "vocab",
        "encode",
        "train",
        "evaluate",
    }
