import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# The tests start hundreds of Python processes (stages, dvc, mlflow). Where the shell sets
# PYTHONDONTWRITEBYTECODE, each of them would compile torch and MLflow from source again (it made
# the suite take 29 minutes on a 2-core AMD EPYC): the processes the tests start may cache their
# bytecode, in .venv and in the tests' temporary copies, both out of git.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """A file of the real review data beside the checkout; skips the test when absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real review data not found at {path} (only in the project's workspace)")
    return path


LONG_MODULE = 300  # lines: past it, a module may be doing more than one job


def pytest_terminal_summary(terminalreporter):
    """A guide, not a rule: the package's modules over LONG_MODULE lines, after the results."""
    long = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > LONG_MODULE:
            long.append(f"{path.relative_to(REPO)}: {lines} lines")
    if long:
        terminalreporter.section(f"modules over {LONG_MODULE} lines (split one by job if it does several)")
        for line in long:
            terminalreporter.write_line(line)


BIN = Path(sys.executable).parent


def run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def committed_tree(root: Path) -> dict[str, str]:
    """The repository's committed tree (HEAD) extracted into ``root``, made a git repository on
    `main`; returns the environment to run the pipeline there with."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=REPO, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "1"  # these runs last seconds; the default samples every 10 s
    env.update(
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    run(["git", "init", "-q", "-b", "main"], root, env)
    return env


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """`dvc repro` of a smaller synthetic sample in a temporary copy of the repository's committed
    tree (HEAD, as a fresh clone has it: uncommitted edits, params.yaml's included, are not
    copied), made a git repository with one commit on `main`: ``(root, env, output)``."""
    root = tmp_path_factory.mktemp("repo")
    env = committed_tree(root)
    run([sys.executable, "-m", "pipeline.sample", "--train-rows", "6000", "--test-rows", "1000"], root, env)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"].update(train="data/sample/train.ft.txt.bz2", test="data/sample/test.ft.txt.bz2")
    params["train"]["epochs"] = 3
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    first = run([str(BIN / "dvc"), "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-q", "-m", "pipeline run"], root, env)
    return root, env, first


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def start_server(backend_uri: str, artifacts: Path, port: int) -> subprocess.Popen:
    """A real ``mlflow server`` on 127.0.0.1, serving its artifacts, once it answers."""
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                kill(server)
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)


def kill(server: subprocess.Popen) -> None:
    """The server and every process it started (web workers, job runner), at once, as a crash
    would; killing only the first leaves the workers answering."""
    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(server.pid)
        for process in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
    server.wait()
