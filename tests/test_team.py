"""Team use, run for real: four experiments two at a time (two of them identical) on a fresh
SQLite store and on an `mlflow server` backed by PostgreSQL, and outputs and experiments shared
through a DVC remote and a bare git remote (the README's "Working as a team")."""

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
import psutil
import pytest
import yaml

from pipeline.tracking.store import MODEL_HASH_TAG
from tests.conftest import BIN, free_port, kill, run, start_server

DVC = str(BIN / "dvc")
# the first two are identical and start together: same params, same seed, the same weights
SWEEP = {"same-1": "0.004", "same-2": "0.004", "lr-2": "0.002", "lr-6": "0.006"}


def fresh_clone(root: Path, target: Path, env: dict, git_source: Path | None = None) -> Path:
    """A clone of the pipeline's repository (or of ``git_source``) with its outputs, from a copy
    of its DVC cache, but no MLflow store yet."""
    run(["git", "clone", "-q", str(git_source or root), str(target)], target.parent, env)
    shutil.copytree(root / ".dvc" / "cache", target / ".dvc" / "cache")
    run([DVC, "checkout"], target, env)
    assert not (target / "mlflow.db").exists()
    return target


def run_sweep(repo: Path, env: dict) -> str:
    """``dvc queue start -j 2`` on the four experiments of SWEEP; returns ``dvc queue status``
    and the logs of any that failed. The workers are stopped when it returns, however it ends."""
    for name, lr in SWEEP.items():
        run([DVC, "exp", "run", "--queue", "-n", name, "-S", f"train.lr={lr}", "-S", "train.epochs=1"], repo, env)
    try:
        # the workers it starts detach and keep its output open: to a file, never a pipe waited on
        log = repo.parent / "queue-start.log"
        with log.open("w") as out:
            started = subprocess.run([DVC, "queue", "start", "-j", "2"], cwd=repo, env=env, stdout=out, stderr=out)
        assert started.returncode == 0, log.read_text()
        deadline = time.monotonic() + 600
        while True:
            status = run([DVC, "queue", "status"], repo, env)
            if "Queued" not in status and "Running" not in status:
                # a worker may still be listed here: with two workers on DVC's filesystem broker one
                # can lose its monitor thread to a half-written reply file and never exit (an open
                # DVC bug); every experiment has ended, so the finally below stops it
                failed = [line.split()[1] for line in status.splitlines() if line.endswith("Failed")]
                return status + "".join(run([DVC, "queue", "logs", name], repo, env) for name in failed)
            if time.monotonic() > deadline:
                pytest.fail(f"the sweep did not end in 10 minutes:\n{status}")
            time.sleep(2)
    finally:
        stop_workers(repo, env)


def stop_workers(repo: Path, env: dict) -> None:
    """``dvc queue stop --kill``, then any of the queue's processes still running, killed."""
    with (repo.parent / "queue-stop.log").open("w") as out, contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run([DVC, "queue", "stop", "--kill"], cwd=repo, env=env, stdout=out, stderr=out, timeout=120)
    deadline = time.monotonic() + 30
    while processes_in(repo) and time.monotonic() < deadline:
        time.sleep(1)
    for process in processes_in(repo):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def processes_in(repo: Path) -> list[psutil.Process]:
    """The processes working in ``repo`` (the queue's workers and their experiments), this one aside."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.pid != os.getpid() and Path(process.cwd()).is_relative_to(repo):
                found.append(process)
    return found


def check_sweep(status: str, client: mlflow.MlflowClient) -> None:
    """Every experiment succeeded, with exactly one training run of its own holding its test
    metrics and its own registered model version."""
    assert status.count("Success") == 4 and "Failed" not in status, status
    experiment = client.get_experiment_by_name("lstm-sentiment")
    runs = client.search_runs([experiment.experiment_id], "tags.model_type = 'lstm'")
    by_name = {r.data.tags.get("dvc_exp_name"): r for r in runs}
    assert sorted(r.data.tags.get("dvc_exp_name") for r in runs) == sorted(SWEEP)  # one each, no duplicate
    for name, lstm_run in by_name.items():
        assert lstm_run.info.status == "FINISHED", name
        assert lstm_run.data.params["train.lr"] == SWEEP[name]
        assert {"best_val_loss", "test_accuracy", "test_roc_auc"} <= set(lstm_run.data.metrics), name
    same = [by_name["same-1"], by_name["same-2"]]
    assert same[0].data.tags[MODEL_HASH_TAG] == same[1].data.tags[MODEL_HASH_TAG]  # the ambiguous case
    assert same[0].data.metrics["test_accuracy"] == same[1].data.metrics["test_accuracy"]
    versions = client.search_model_versions("name = 'lstm-sentiment'")
    assert sorted(v.run_id for v in versions) == sorted(r.info.run_id for r in runs)


def test_four_experiments_two_at_a_time_on_a_fresh_sqlite_store(pipeline_run, tmp_path):
    root, env, _ = pipeline_run
    repo = fresh_clone(root, tmp_path / "clone", env)
    status = run_sweep(repo, env)
    check_sweep(status, mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}"))


@pytest.fixture
def postgres():
    """A real PostgreSQL server on 127.0.0.1 (Debian's package) with an empty ``mlflow``
    database; yields its SQLAlchemy URI."""
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not installed:
        pytest.skip("PostgreSQL is not installed (Debian's package postgresql; .ci/run installs it)")
    bin_dir = installed[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="lstm-sentiment-pg-"))
    as_owner = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as Debian's postgres user
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = folder / "data"

    def pg(*args):
        subprocess.run([*as_owner, *args], check=True, capture_output=True, text=True)

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        pg(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow")
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def test_four_experiments_two_at_a_time_on_an_mlflow_server_backed_by_postgresql(pipeline_run, postgres, tmp_path):
    root, env, _ = pipeline_run
    port = free_port()
    server = start_server(postgres, tmp_path / "artifacts", port)
    try:
        repo = fresh_clone(root, tmp_path / "clone", env)
        status = run_sweep(repo, {**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
        check_sweep(status, mlflow.MlflowClient(f"http://127.0.0.1:{port}"))
    finally:
        kill(server)
    assert not (repo / "mlflow.db").exists()  # everything went to the server
    assert any((tmp_path / "artifacts").rglob("model.pt"))  # artifacts served by the server


def digests(repo: Path) -> dict[str, str]:
    """sha256 of every file of the pipeline's DVC outputs."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = [out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]
    files = [f for out in outs for f in ([repo / out] if (repo / out).is_file() else (repo / out).rglob("*"))]
    return {str(f.relative_to(repo)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def test_a_dvc_remote_and_a_git_remote_share_outputs_and_experiments(pipeline_run, tmp_path):
    root, env, _ = pipeline_run
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    run(["git", "clone", "-q", "--bare", str(root), str(origin)], tmp_path, env)
    alice = fresh_clone(root, tmp_path / "alice", env, git_source=origin)  # she has the outputs
    # the README's commands, in order
    run([DVC, "remote", "add", "-d", "storage", str(storage)], alice, env)
    run(["git", "commit", "-q", "-m", "DVC remote", ".dvc/config"], alice, env)
    run(["git", "push", "-q", "origin", "main"], alice, env)
    assert "pushed" in run([DVC, "push"], alice, env)

    bob = tmp_path / "bob"
    run(["git", "clone", "-q", str(origin), str(bob)], tmp_path, env)
    run([DVC, "pull"], bob, env)
    assert digests(bob) == digests(alice) and len(digests(bob)) > 10
    assert "Running stage" not in run([DVC, "repro"], bob, env)
    assert run(["git", "status", "--porcelain"], bob, env) == ""

    # an experiment Alice runs reaches Bob through the git remote (and its outputs the DVC remote)
    run([DVC, "exp", "run", "-n", "c-two", "-S", "baseline.C=2"], alice, env)
    run([DVC, "exp", "push", "origin", "c-two"], alice, env)
    run([DVC, "exp", "pull", "origin", "c-two"], bob, env)
    assert "c-two" in run([DVC, "exp", "list"], bob, env)
    run([DVC, "exp", "apply", "c-two"], bob, env)
    assert yaml.safe_load((bob / "params.yaml").read_text())["baseline"]["C"] == 2
    assert (bob / "metrics" / "baseline.json").read_text() == (alice / "metrics" / "baseline.json").read_text()
    assert digests(bob) == digests(alice)
