"""End to end: `dvc repro` in a temporary copy of the repository (conftest.pipeline_run), on a smaller sample."""

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import packages_distributions, version
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from tests.conftest import BIN, REPO, free_port, run, stages_run
from tests.test_dependencies import imported_by, normalized
from tests.test_layout import closure, module_path


def test_repro_produces_metrics_and_a_model_that_learned(pipeline_run):
    root, _, output = pipeline_run
    for stage in ("ingest", "clean", "vocab", "encode", "pretrain", "ngrams", "train", "evaluate", "baseline"):
        assert f"Running stage '{stage}'" in output
    assert "evaluate: registered lstm-sentiment version 1, now @champion" in output
    # quiet: none of MLflow's INFO lines, pip warning or progress bars
    assert "INFO mlflow" not in output and "pip version" not in output and "Downloading artifacts" not in output
    result = json.loads((root / "metrics" / "eval.json").read_text())
    assert {"accuracy", "loss", "precision", "recall", "f1", "roc_auc", "pr_auc", "ece"} <= set(result)
    assert {"accuracy_len_1_24", "accuracy_len_25_49", "accuracy_len_200_up"} <= set(result)
    assert result["rows"] == 500
    assert result["accuracy"] >= 0.85  # chance is 0.5; the label-noise ceiling is about 0.97
    assert result["pr_auc"] >= 0.85 and 0 <= result["ece"] <= 0.1
    assert (root / "models" / "model.pt").exists()
    # the blend: its weight chosen on validation, recorded where train and evaluate report; the
    # n-gram part scored from raw text in evaluate as from the stage's tokens in ngrams
    ngrams = json.loads((root / "metrics" / "ngrams.json").read_text())
    train = json.loads((root / "metrics" / "train.json").read_text())
    assert 0 <= train["blend_weight"] <= 1 and result["blend_weight"] == train["blend_weight"]
    assert result["ngram_accuracy"] == ngrams["test_accuracy"] >= 0.85
    assert result["lstm_accuracy"] >= 0.85
    headers = {
        "roc.csv": "fpr,tpr,threshold",
        "pr.csv": "recall,precision",
        "calibration.csv": "bin_start,mean_predicted,fraction_positive,reviews",
        "length_buckets.csv": "bucket,accuracy,reviews",
        "confusion.csv": "actual,predicted",
        "training.csv": "step,epoch,lr,train_loss,val_loss,val_accuracy",
    }
    for name, header in headers.items():
        assert (root / "plots" / name).read_text().splitlines()[0] == header
    predictions = pl.read_parquet(root / "data" / "predictions" / "test.parquet")
    assert predictions.columns == ["review", "label", "probability", "predicted", "length"]
    assert predictions.height == 500
    assert (predictions["label"] == predictions["predicted"]).mean() == pytest.approx(result["accuracy"])
    reviews = pl.read_parquet(root / "data" / "interim" / "reviews" / "test.parquet")
    assert reviews[predictions["review"].to_list(), "label"].to_list() == predictions["label"].to_list()


def test_second_repro_does_no_work(pipeline_run):
    root, env, _ = pipeline_run
    assert "up to date" in run([str(BIN / "dvc"), "status"], root, env)
    assert "Running stage" not in run([str(BIN / "dvc"), "repro"], root, env)


def lstm_run(root: Path):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lstm-sentiment")
    runs = client.search_runs([experiment.experiment_id], "tags.model_type = 'lstm'", order_by=["start_time ASC"])
    return client, experiment, runs[0]


def test_mlflow_run_has_params_metrics_figures_datasets_and_system_metrics(pipeline_run):
    root, _, _ = pipeline_run
    client, experiment, run_ = lstm_run(root)
    assert experiment.artifact_location == (root / "mlruns").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["model_type"] for r in runs) == ["lstm", "tfidf-logreg"]
    (baseline,) = (r for r in runs if r.data.tags["model_type"] == "tfidf-logreg")
    assert baseline.info.run_name == "tfidf-logreg" and baseline.data.metrics["test_accuracy"] >= 0.85
    assert baseline.data.params["baseline.ngram_max"] == "2"
    assert run_.data.params["train.epochs"] == "3" and run_.data.params["encode.pad"] == "left"
    assert run_.data.metrics["test_accuracy"] >= 0.85 and run_.data.metrics["samples_per_second"] > 0
    assert {"test_pr_auc", "test_ece", "test_accuracy_len_1_24"} <= set(run_.data.metrics)
    assert any(name.startswith("system/cpu_utilization") for name in run_.data.metrics)
    assert len(client.get_metric_history(run_.info.run_id, "val_loss")) == 3
    assert {a.path for a in client.list_artifacts(run_.info.run_id)} >= {"vocab.json", "params.yaml", "plots"}
    figures = {a.path for a in client.list_artifacts(run_.info.run_id, "plots")}
    assert figures == {
        f"plots/{n}.png" for n in ("roc", "pr", "confusion", "calibration", "length_buckets", "training")
    }

    # the shards are logged as datasets whose digest is DVC's hash of them, as in dvc.lock
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    (shards,) = (o for o in lock["stages"]["encode"]["outs"] if o["path"] == "data/processed/shards")
    inputs = {i.dataset.name: i for i in client.get_run(run_.info.run_id).inputs.dataset_inputs}
    assert set(inputs) == {"shards/train", "shards/val", "shards/test"}
    assert {i.dataset.digest for i in inputs.values()} == {shards["md5"].removesuffix(".dir")}
    contexts = {name: {t.key: t.value for t in i.tags}["mlflow.data.context"] for name, i in inputs.items()}
    assert contexts == {"shards/train": "training", "shards/val": "validation", "shards/test": "testing"}


SCORE_IN_FRESH_PROCESS = """
import json, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
result = model.predict(pd.DataFrame({"text": json.load(sys.stdin)}))
print(json.dumps({c: result[c].tolist() for c in result.columns}))
"""


def test_registered_raw_text_model_matches_evaluate_in_a_fresh_process(pipeline_run, tmp_path):
    root, env, _ = pipeline_run
    client, _, run_ = lstm_run(root)
    (version,) = client.search_model_versions("name = 'lstm-sentiment'")
    assert version.run_id == run_.info.run_id

    predictions = pl.read_parquet(root / "data" / "predictions" / "test.parquet")
    texts = pl.read_parquet(root / "data" / "interim" / "reviews" / "test.parquet")["text"]
    texts = texts.gather(predictions["review"]).to_list()
    result = subprocess.run(
        [sys.executable, "-c", SCORE_IN_FRESH_PROCESS, f"sqlite:///{root / 'mlflow.db'}", "models:/lstm-sentiment/1"],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: the model brings its own code
        env=env,
    )
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout.splitlines()[-1])
    np.testing.assert_allclose(scored["probability"], predictions["probability"].to_numpy(), atol=1e-5)
    assert scored["label"] == predictions["predicted"].to_list()
    assert set(scored["sentiment"]) == {"positive", "negative"}


def test_the_logged_model_pins_every_distribution_its_code_imports(pipeline_run):
    import mlflow

    root, _, _ = pipeline_run
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    source = client.get_model_version("lstm-sentiment", "1").source  # models:/<logged model id>
    model = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    lines = Path(mlflow.artifacts.download_artifacts(f"{model}/requirements.txt", tracking_uri=uri)).read_text()
    pinned = {normalized(name): pin for name, pin in (line.split("==") for line in lines.split() if "==" in line)}
    # the top-level packages the pyfunc's code imports (the package's modules it reaches), each
    # pinned through one of the distributions that provide it (mlflow: mlflow, mlflow-skinny, ...)
    modules = {name for module in closure("tracking.pyfunc") for name in imported_by(module_path(module))}
    providers = packages_distributions()
    unpinned = [m for m in sorted(modules) if not any(pinned.get(normalized(d)) == version(d) for d in providers[m])]
    assert modules and unpinned == [], lines


def test_mlflow_models_serve_answers_json_requests_on_loopback(pipeline_run):
    root, env, _ = pipeline_run
    port = free_port()
    env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            "models:/lstm-sentiment/1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--env-manager",
            "local",
        ],  # fmt: skip
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow models serve did not start: {server.stderr.read()[-2000:]}")
                time.sleep(0.5)
        reviews = [
            "five stars. it works great and I would buy it again.",
            "one star. it broke after a week and support never answered.",
        ]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": [{"text": r} for r in reviews]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())["predictions"]
        bad = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": [{"text": reviews[0]}, {"text": None}, {"text": 123}]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=30)
        refusal = json.loads(refused.value.read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert [set(a) for a in answer] == [{"probability", "label", "sentiment"}] * 2
    assert all(0 <= a["probability"] <= 1 and a["label"] == int(a["probability"] >= 0.5) for a in answer)
    assert refused.value.code == 400
    # MLflow's server puts the input and "Error: " before the model's message
    assert refusal["message"].endswith("Error: 'text' must be a non-empty string: record 1 is null, record 2 is 123")


def render_check(html: Path) -> str:
    if not any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("Chromium not installed (.ci/run installs it: apt-get install chromium)")
    checked = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_plots_html.py"), str(html)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return checked.stdout


def test_dvc_plots_page_renders_every_plot_offline_in_headless_chromium(pipeline_run):
    root, env, _ = pipeline_run
    run([str(BIN / "dvc"), "plots", "show", "-o", "plots_page"], root, env)
    assert "7 of 7 plots drawn" in render_check(root / "plots_page" / "index.html")


def test_experiments_rerun_only_the_stages_downstream_and_compare_in_dvc_and_mlflow(pipeline_run):
    root, env, _ = pipeline_run
    dvc = str(BIN / "dvc")
    # train params, the start from the pretrained vectors and adversarial training included, never
    # re-run pretrain (cached)
    changes = ["-S", "train.lr=0.002", "-S", "train.init=word2vec", "-S", "train.adversarial_epsilon=0.5"]
    lr_run = run([dvc, "exp", "run", "-n", "lr-low", *changes], root, env)
    assert stages_run(lr_run) == {"train", "evaluate"}
    assert stages_run(run([dvc, "exp", "run", "-n", "min-freq-3", "-S", "vocab.min_freq=3"], root, env)) == {
        "vocab",
        "encode",
        "pretrain",
        "train",
        "evaluate",
    }
    # dvc metrics diff / plots diff between the two experiments show the evaluation report
    diff = json.loads(run([dvc, "metrics", "diff", "lr-low", "min-freq-3", "--json", "--all"], root, env))
    assert {"pr_auc", "ece", "accuracy_len_1_24"} <= set(diff["metrics/eval.json"])
    run([dvc, "plots", "diff", "lr-low", "min-freq-3", "-o", "diff_page"], root, env)
    page = (root / "diff_page" / "index.html").read_text()
    assert "lr-low" in page and "min-freq-3" in page
    assert "7 of 7 plots drawn" in render_check(root / "diff_page" / "index.html")

    # each experiment is an MLflow run named after it, with its params and test metrics
    client, experiment, _ = lstm_run(root)
    for name, key, value in (("lr-low", "train.lr", "0.002"), ("min-freq-3", "vocab.min_freq", "3")):
        (exp_run,) = client.search_runs([experiment.experiment_id], f"tags.dvc_exp_name = '{name}'")
        assert exp_run.info.run_name == name and exp_run.data.params[key] == value
        assert "test_accuracy" in exp_run.data.metrics
