"""scripts/ci_pipeline.sh on branches of a temporary clone, sweeps through the DVC queue, and the
GitHub workflow that calls the script."""

import json
import re
import subprocess
import time

import pytest
import yaml

from tests.conftest import BIN, REPO, run, stages_run

DVC = str(BIN / "dvc")


@pytest.fixture
def clone(pipeline_run, tmp_path):
    """A fresh clone of the pipeline run's repository, its outputs checked out of that run's DVC
    cache (as the GitHub workflow restores .dvc/cache), with its own MLflow store."""
    source, env, _ = pipeline_run
    root = tmp_path / "clone"
    run(["git", "clone", "-q", str(source), str(root)], tmp_path, env)
    run([DVC, "cache", "dir", "--local", str(source / ".dvc" / "cache")], root, env)
    run([DVC, "checkout"], root, env)
    # the script uses the environment it runs in (here the test's) rather than `uv run`
    return root, {**env, "VIRTUAL_ENV": str(BIN.parent), "CI_PIPELINE_OUT": str(tmp_path / "report")}


def ci_script(root, env, base="main"):
    return subprocess.run(["bash", "scripts/ci_pipeline.sh", base], cwd=root, env=env, capture_output=True, text=True)


def section(output: str, title: str) -> str:
    """The lines of the report between ``### title`` and the next heading."""
    return output.split(f"### {title}", 1)[1].split("###", 1)[0]


def test_ci_script_reruns_only_what_a_branch_changed_and_reports_the_diffs(clone, tmp_path):
    root, env = clone
    run(["git", "checkout", "-q", "-b", "no-change"], root, env)
    result = ci_script(root, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dvc.lock is up to date" in result.stdout and stages_run(result.stdout) == set()
    assert "dvc repro re-ran: nothing" in result.stdout
    assert "No params differ" in result.stdout and "No metrics differ" in result.stdout

    # a pull request that edits params.yaml: train and evaluate re-run, the diffs show, and the
    # lock (still main's) is reported stale
    run(["git", "checkout", "-q", "-b", "lower-lr", "main"], root, env)
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params.replace("lr: 0.005", "lr: 0.002", 1))
    run(["git", "commit", "-q", "-am", "train.lr 0.002"], root, env)
    result = ci_script(root, env)
    assert result.returncode == 1
    assert stages_run(result.stdout) == {"train", "evaluate"}
    assert "dvc repro re-ran: train, evaluate" in result.stdout
    assert "train.lr" in section(result.stdout, "Params") and "0.002" in section(result.stdout, "Params")
    metrics = section(result.stdout, "Metrics")
    assert "metrics/eval.json" in metrics and "accuracy" in metrics
    assert "dvc.lock is stale" in result.stdout and "train: params.yaml: train modified" in result.stdout
    assert "dvc.lock is stale" in result.stderr
    report = tmp_path / "report"
    assert (report / "plots" / "index.html").exists() and "lower-lr" not in (report / "summary.md").read_text()
    assert "train.lr" in (report / "summary.md").read_text()

    # once the branch commits what dvc repro wrote, nothing re-runs and the check passes
    run(["git", "commit", "-q", "-am", "dvc repro"], root, env)
    result = ci_script(root, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stages_run(result.stdout) == set() and "dvc.lock is up to date" in result.stdout
    assert "train.lr" in section(result.stdout, "Params")


def test_ci_script_reports_a_committed_output_that_the_lock_does_not_record(clone):
    root, env = clone
    run(["git", "checkout", "-q", "-b", "edited-metrics"], root, env)
    metrics = json.loads((root / "metrics" / "eval.json").read_text())
    metrics["accuracy"] = 0.99
    (root / "metrics" / "eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
    run(["git", "commit", "-q", "-am", "better numbers"], root, env)
    result = ci_script(root, env)
    assert result.returncode == 1
    assert "evaluate: output metrics/eval.json modified" in result.stdout


def test_ci_script_names_a_missing_base(clone):
    root, env = clone
    result = ci_script(root, env, base="no-such-branch")
    assert result.returncode == 2 and "nothing called 'no-such-branch'" in result.stderr


def wait_for_queue(root, env, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run([DVC, "queue", "status"], root, env)
        if not any(state in status for state in ("Queued", "Running")):
            return status
        time.sleep(3)
    pytest.fail(f"the DVC queue did not finish:\n{status}")


def test_queued_and_temp_experiments_land_in_mlflow_with_their_params(clone):
    import mlflow

    root, env = clone
    for name, lr in (("queued-lr-001", "0.001"), ("queued-lr-003", "0.003")):
        run([DVC, "exp", "run", "--queue", "-n", name, "-S", f"train.lr={lr}"], root, env)
    run([DVC, "queue", "start", "-j", "1"], root, env)
    status = wait_for_queue(root, env)
    assert status.count("Success") == 2, status
    run([DVC, "exp", "run", "--temp", "-n", "temp-lr-004", "-S", "train.lr=0.004"], root, env)

    shown = subprocess.run([DVC, "exp", "show", "--json"], cwd=root, env=env, capture_output=True, text=True)
    names = set(re.findall(r'"name": "([^"]+)"', shown.stdout))
    assert {"queued-lr-001", "queued-lr-003", "temp-lr-004"} <= names

    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lstm-sentiment")
    for name, lr in (("queued-lr-001", "0.001"), ("queued-lr-003", "0.003"), ("temp-lr-004", "0.004")):
        (exp_run,) = client.search_runs([experiment.experiment_id], f"tags.dvc_exp_name = '{name}'")
        assert exp_run.info.run_name == name and exp_run.data.params["train.lr"] == lr
        assert exp_run.data.metrics["test_accuracy"] > 0.5  # evaluate found the run its model came from


def test_workflow_is_valid_yaml_and_only_calls_the_script_and_standard_actions():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "pipeline.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    for event in ("push", "pull_request"):
        assert {"params.yaml", "dvc.yaml", "dvc.lock", "pipeline/**", "data/sample/**"} <= set(triggers[event]["paths"])
    (job,) = workflow["jobs"].values()
    uses = [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]
    assert set(uses) <= {"actions/checkout", "astral-sh/setup-uv", "actions/cache", "actions/upload-artifact"}
    checkout = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    commands = [step["run"] for step in job["steps"] if "run" in step]
    assert commands and all(command.startswith("scripts/ci_pipeline.sh") for command in commands)
    assert all(set(step) <= {"name", "uses", "with", "run", "if"} for step in job["steps"])
