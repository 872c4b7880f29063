"""Tracking never costs a run: a store that does not work stops a stage at once with one line,
and a real MLflow server that dies during training costs nothing that `sync` cannot send later."""

import json
import os
import socket
import subprocess
import sys
import time

import mlflow
import pytest

from pipeline.core.cli import StageError
from pipeline.core.params import Params
from pipeline.tracking.store import HOST_TAG, PID_TAG, use_experiment
from pipeline.tracking.training_run import sync, training_run
from pipeline.train import train_model
from tests.conftest import free_port, kill, start_server
from tests.test_train import small_run

ADVICE = "(start or repair it, or set MLFLOW_TRACKING_URI to another store)"


def stage_error_within(seconds: float, call) -> str:
    started = time.monotonic()
    with pytest.raises(StageError) as error:
        call()
    assert time.monotonic() - started < seconds
    return str(error.value)


def test_a_store_where_nothing_listens_is_one_line_within_seconds(monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    message = stage_error_within(30, lambda: use_experiment("lstm-sentiment"))
    assert message == f"MLflow tracking store {uri} is not usable: nothing answers there (connection refused) {ADVICE}"


def test_a_corrupt_store_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "mlflow.db").write_bytes(b"this is not a database " * 200)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    message = stage_error_within(30, lambda: use_experiment("lstm-sentiment"))
    assert message.startswith(f"MLflow tracking store sqlite:///{tmp_path / 'mlflow.db'} is not usable: ")
    assert "file is not a database" in message and message.endswith(ADVICE) and "\n" not in message


def test_a_read_only_store_stops_training_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_experiment("lstm-sentiment")  # a valid store, which the stage may then only read
    read_only = f"sqlite:///file:{tmp_path / 'mlflow.db'}?mode=ro&uri=true"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", read_only)

    def start():
        with training_run(Params(), {}, {}):
            pytest.fail("training started on a store it cannot write")

    message = stage_error_within(30, start)
    assert message.startswith(f"MLflow tracking store {read_only} is not usable: ")
    assert "attempt to write a readonly database" in message and "\n" not in message


def test_a_server_killed_during_training_costs_nothing(tmp_path, monkeypatch, capfd):
    port = free_port()
    server = start_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "served", port)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.chdir(tmp_path)
    shards = tmp_path / "data" / "processed" / "shards"
    shards.mkdir(parents=True)
    (shards / "manifest.json").write_text("{}")
    manifest = {"splits": {"train": {"rows": 320}, "val": {"rows": 64}}}
    (tmp_path / "model.pt").write_bytes(b"weights")
    train, val, config, params = small_run()  # validations at steps 4, 8, 10, 12, ... 30
    try:
        with training_run(Params(), manifest, {"processes": 1}) as run:
            run_id = run.run_id

            def log_and_kill(row):
                if row["step"] == 8:
                    kill(server)
                run.log_validation(row)

            started = time.monotonic()
            _, history, summary, _ = train_model(train, val, config, params, log_and_kill)
            run.log_result(tmp_path / "model.pt", summary, "cpu", [tmp_path / "model.pt"])
        assert time.monotonic() - started < 120  # no minutes of retries per call
    finally:
        kill(server)
    errors = capfd.readouterr().err
    assert "Traceback" not in errors
    failed = [
        line for line in errors.splitlines() if line.startswith(f"train: MLflow (http://127.0.0.1:{port}) failed: ")
    ]
    assert len(failed) == 1 and failed[0].endswith("; training goes on, its metrics are kept to log later")
    kept = json.loads((tmp_path / "models" / "mlflow-pending" / run_id / "pending.json").read_text())
    assert [entry["step"] for entry in kept["metrics"]] == [row["step"] for row in history[1:]] + [0]

    server = start_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "served", port)  # back, same database
    try:
        sync()
        client = mlflow.MlflowClient(f"http://127.0.0.1:{port}")
        logged = client.get_run(run_id)
        steps = [m.step for m in client.get_metric_history(run_id, "val_loss")]
        artifacts = [f.path for f in client.list_artifacts(run_id)]
    finally:
        kill(server)
    assert sorted(steps) == [row["step"] for row in history]  # every validation, none lost
    assert logged.info.status == "FINISHED" and logged.data.metrics["best_step"] == summary["best_step"]
    assert "model_sha256" in logged.data.tags and artifacts == ["model.pt"]
    assert not (tmp_path / "models" / "mlflow-pending" / run_id).exists()


def test_an_experiment_another_stage_creates_at_the_same_moment_is_the_one_used(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    lookup, made = mlflow.get_experiment_by_name, []

    def created_by_the_other_stage_just_after(name):  # `dvc queue start -j 2` on a fresh server
        if not made:
            made.append(mlflow.MlflowClient().create_experiment(name))
            return None
        return lookup(name)

    monkeypatch.setattr(mlflow, "get_experiment_by_name", created_by_the_other_stage_just_after)
    assert use_experiment("lstm-sentiment") == made[0]
    assert mlflow.get_experiment(made[0]).name == "lstm-sentiment"


def test_a_run_left_running_by_a_dead_process_is_marked_failed_by_the_next_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = use_experiment("lstm-sentiment")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = socket.gethostname()
    client = mlflow.MlflowClient()
    runs = {
        "killed": {HOST_TAG: here, PID_TAG: gone.stdout.strip()},
        "alive": {HOST_TAG: here, PID_TAG: str(os.getpid())},
        "other machine": {HOST_TAG: "another-host", PID_TAG: gone.stdout.strip()},
    }
    ids = {name: client.create_run(experiment_id, tags=tags, run_name=name).info.run_id for name, tags in runs.items()}
    use_experiment("lstm-sentiment")  # what every stage does first
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"killed": "FAILED", "alive": "RUNNING", "other machine": "RUNNING"}
    assert (
        f"MLflow run {ids['killed']} (killed) was left running by a process that died: FAILED"
        in capsys.readouterr().out
    )


def test_evaluate_logs_to_the_run_train_recorded_not_another_with_the_same_weights(tmp_path, monkeypatch):
    from pipeline.core import paths
    from pipeline.tracking.evaluation_run import training_run_of
    from pipeline.tracking.store import MODEL_HASH_TAG

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = use_experiment("lstm-sentiment")
    client = mlflow.MlflowClient()
    ours, identical = (client.create_run(experiment_id, tags={MODEL_HASH_TAG: "same"}).info.run_id for _ in range(2))
    assert training_run_of(experiment_id, "same") == identical  # without a record: the newest with the hash
    paths.RUN_ID_FILE.parent.mkdir()
    paths.RUN_ID_FILE.write_text(json.dumps({"run_id": ours, MODEL_HASH_TAG: "same"}))
    assert training_run_of(experiment_id, "same") == ours
    assert training_run_of(experiment_id, "other") is None  # a record of another model is not used


def test_the_experiment_opens_on_its_runs_in_the_mlflow_ui(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(uri)  # not the URI an earlier test left set in this process
    older = client.create_experiment("made-before")  # as an older version of the pipeline did: no kind
    for name in ("lstm-sentiment", "made-before"):
        experiment_id = use_experiment(name)
        assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment_id == older


def test_a_run_is_named_after_the_dvc_experiment_or_else_the_git_commit(tmp_path, monkeypatch):
    from pipeline.tracking.store import run_name

    monkeypatch.chdir(tmp_path)
    for variable in ("DVC_EXP_NAME", "DVC_ROOT"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    assert run_name() is None  # no commit yet: MLflow picks a name
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "first"], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
    assert run_name() == f"repro-{commit[:7]}"
    monkeypatch.setenv("DVC_EXP_NAME", "lr-low")
    assert run_name() == "lr-low"


def test_the_champion_alias_only_moves_forward_on_the_same_test_reviews(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    from pipeline.tracking.evaluation_run import register

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = use_experiment("lstm-sentiment")
    client = mlflow.MlflowClient()

    def new_version(accuracy: float, split: str = "reviews-a", margin: float = 0.0) -> str:
        run_id = client.create_run(experiment_id).info.run_id
        logged = mlflow.initialize_logged_model(name="model", experiment_id=experiment_id)
        model_info = SimpleNamespace(model_uri=f"models:/{logged.model_id}", model_id=logged.model_id)
        return register("lstm-sentiment", model_info, run_id, accuracy, split, margin)

    def champion() -> int:
        return client.get_model_version_by_alias("lstm-sentiment", "champion").version

    assert new_version(0.90) == "registered lstm-sentiment version 1, now @champion"
    assert new_version(0.92) == "registered lstm-sentiment version 2, now @champion"
    assert new_version(0.91) == (
        "registered lstm-sentiment version 3; @champion stays version 2 "
        "(test accuracy 0.9200; this one 0.9100, mlflow.champion_margin 0.0)"
    )
    assert new_version(0.915, margin=0.01) == "registered lstm-sentiment version 4, now @champion"
    assert new_version(0.99, split="reviews-b") == (
        "registered lstm-sentiment version 5; @champion stays version 4, which was tested on other reviews "
        "(to move it: mlflow.MlflowClient().set_registered_model_alias('lstm-sentiment', 'champion', 5))"
    )
    assert champion() == 4
    version = client.get_model_version("lstm-sentiment", "4")
    assert version.tags == {"test_accuracy": "0.915", "test_split": "reviews-a"}
    # an evaluate that looked for the model just before another one created it
    monkeypatch.setattr(mlflow.MlflowClient, "search_registered_models", lambda self, query: [])
    assert new_version(0.92) == "registered lstm-sentiment version 6, now @champion"
