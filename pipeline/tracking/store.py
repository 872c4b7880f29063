"""The MLflow store every stage uses: where it is, failing fast and in one line, run tags.

The store defaults to ``sqlite:///<repo root>/mlflow.db`` with artifacts in ``<repo root>/mlruns``.
The root comes from ``DVC_ROOT`` when DVC runs the stage, so ``dvc exp run --temp`` and
``--queue`` (which run in a temporary copy) log to the same store as ``dvc repro``.
``MLFLOW_TRACKING_URI`` overrides it (a team server, for instance). A store that cannot be
reached, read or written stops a stage within seconds with one line. The training's run is
pipeline.tracking.training_run's; evaluate's logging is pipeline.tracking.evaluation_run's; the baseline logs its
own run here (:func:`log_baseline`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import socket
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow
import psutil

from pipeline.core.cli import StageError
from pipeline.core.params import Params

MODEL_HASH_TAG = "model_sha256"
# the experiment's kind for MLflow UIs that read it (they open it on its runs, not on GenAI
# traces); MLflow 3.17's UI follows its own GenAI / Model training switch instead (README)
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
HOST_TAG, PID_TAG = "process.host", "process.pid"
DATASET_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}
# MLflow's HTTP client retries a dead server for minutes by default; inside quick_requests() a call
# gives up after one retry and a 10 s timeout
QUICK_REQUESTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


# loggers that print a whole traceback for a store error before raising it; inside
# quick_requests() the caller reports the error itself, in one line
QUIET_LOGGERS = ("mlflow.store.db.utils", "mlflow.utils.rest_utils", "urllib3.connectionpool")


@contextlib.contextmanager
def quick_requests() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in QUICK_REQUESTS}
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    os.environ.update(QUICK_REQUESTS)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def describe(error: BaseException) -> str:
    """What went wrong, in a few words (MLflow's and SQLAlchemy's messages run over many lines)."""
    text = str(error)
    if "Connection refused" in text or "Failed to establish a new connection" in text:
        return "nothing answers there (connection refused)"
    if "timed out" in text.lower():
        return "it does not answer (timed out)"
    if "Connection aborted" in text or "RemoteDisconnected" in text or "Connection reset" in text:
        return "the connection broke"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    database = [match[1] for line in lines if (match := re.match(r"\((?:\w+\.)*\w*Error\) (.+)", line))]
    first = database[0] if database else lines[0] if lines else type(error).__name__
    return first if len(first) <= 200 else first[:197] + "..."


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Whatever the store raises inside becomes one line naming it (run_main prints it)."""
    try:
        yield
    except StageError:
        raise
    except Exception as error:
        raise store_error(error) from None


def store_error(error: BaseException) -> StageError:
    return StageError(
        f"MLflow tracking store {mlflow.get_tracking_uri()} is not usable: {describe(error)} "
        "(start or repair it, or set MLFLOW_TRACKING_URI to another store)"
    )


def repo_root() -> Path:
    """The project root: ``DVC_ROOT`` when DVC runs us (also in ``dvc exp run --temp``),
    else the nearest folder upwards holding ``dvc.yaml``, else the working directory."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "dvc.yaml").exists():
            return folder
    return cwd


def tracking_uri(root: Path | None = None) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(root or repo_root()) / 'mlflow.db'}"


@contextlib.contextmanager
def first_use_lock(uri: str) -> Iterator[None]:
    """One process at a time past here for a SQLite store (a lock file beside the database).
    Stages that open a new ``mlflow.db`` at once (``dvc queue start -j 2``) otherwise race
    MLflow's schema migration and the experiment's creation, and one of them fails."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    database = Path(uri.removeprefix("sqlite:///"))
    if not database.parent.is_dir():
        yield  # the store's own error names the missing folder
        return
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def quiet_mlflow() -> None:
    """MLflow's INFO lines (system metrics starting and stopping, uv detection, signature checks),
    its warning that a uv environment has no pip, and its progress bar for a model of a few MB
    tell a user nothing to act on; its other warnings and errors still show."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def use_experiment(name: str) -> str:
    """Point MLflow at our store and experiment (created with an absolute artifact root). A store
    that cannot be reached or read stops the stage here, within seconds, with one line."""
    quiet_mlflow()
    root = repo_root()
    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    with one_line_errors(), quick_requests(), first_use_lock(uri):
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            # An explicit absolute artifact root: the default is relative to the working
            # directory, which for `dvc exp run --temp` is a temporary copy that disappears.
            artifacts = (root / "mlruns").as_uri() if uri.startswith("sqlite:") else None
            try:
                experiment_id = mlflow.create_experiment(name, artifact_location=artifacts, tags={KIND_TAG: KIND})
            except mlflow.exceptions.MlflowException as error:  # a stage that started with this one made it
                if error.error_code != "RESOURCE_ALREADY_EXISTS":  # (on a server: first_use_lock is SQLite's)
                    raise
                experiment_id = mlflow.get_experiment_by_name(name).experiment_id
        else:
            experiment_id = experiment.experiment_id
            if KIND_TAG not in experiment.tags:  # made by an older version of the pipeline
                mlflow.MlflowClient().set_experiment_tag(experiment_id, KIND_TAG, KIND)
        mlflow.set_experiment(experiment_id=experiment_id)
        fail_dead_runs(experiment_id)
    return experiment_id


def process_tags() -> dict[str, str]:
    """Which process runs a run, so that a later stage can tell when it died."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def fail_dead_runs(experiment_id: str) -> None:
    """Mark FAILED the runs still RUNNING whose process, on this machine, is gone (killed, or
    the machine restarted): MLflow would show them running forever."""
    client = mlflow.MlflowClient()
    running = client.search_runs(
        [experiment_id], f"attributes.status = 'RUNNING' and tags.{HOST_TAG} = '{socket.gethostname()}'"
    )
    for run in running:
        pid = int(run.data.tags.get(PID_TAG, "0"))
        if pid and not psutil.pid_exists(pid):
            client.set_terminated(run.info.run_id, "FAILED")
            print(f"MLflow run {run.info.run_id} ({run.info.run_name}) was left running by a process that died: FAILED")


def run_tags() -> dict[str, str]:
    """Tags linking a run to its code and its DVC experiment."""
    tags = {}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if name := dvc_experiment():
        tags["dvc_exp_name"] = name
    return tags


def run_name() -> str | None:
    """The DVC experiment's name under ``dvc exp run``; for a plain ``dvc repro``, ``repro-`` and
    the short git commit (MLflow's random name when there is no git)."""
    if name := dvc_experiment():
        return name
    commit = git_commit()
    return f"repro-{commit[:7]}" if commit else None


def dvc_experiment() -> str | None:
    """The experiment's name under ``dvc exp run`` (DVC sets it, a random one when not given)."""
    return os.environ.get("DVC_EXP_NAME") or None


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip() or None


def dvc_md5(path: Path) -> str:
    """The md5 DVC records for ``path`` in dvc.lock (a folder's ``.dir`` hash without the suffix),
    computed with DVC's own hashing (dvc-data), so it matches ``dvc.lock`` even before DVC writes it."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem
    from dvc_objects.fs.memory import MemoryFileSystem

    _, _, obj = build(HashFileDB(MemoryFileSystem(), "/odb"), str(path), LocalFileSystem(), "md5", dry_run=True)
    return obj.hash_info.value.removesuffix(".dir")


def log_shard_datasets(shards_dir: Path, manifest: dict, splits: tuple[str, ...], digest: str | None = None) -> None:
    """Log shard splits as the run's input datasets, each with the DVC hash of the shards folder
    as its digest: the same data has the same digest in every run, and it can be looked up in
    dvc.lock. (MLflow's own digest reads only the first rows.) ``digest``: that hash when the
    caller has it already (hashing reads every shard)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    digest = digest or dvc_md5(shards_dir)
    for split in splits:
        with warnings.catch_warnings():
            # "file://" is registered twice (as "" and "file"), both as LocalArtifactDatasetSource
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            source = resolve_dataset_source((shards_dir / split).resolve().as_uri())
        dataset = MetaDataset(source, name=f"shards/{split}", digest=digest)
        tags = {"rows": str(manifest["splits"][split]["rows"]), "dvc_path": str(shards_dir)}
        try:
            mlflow.log_input(dataset, context=DATASET_CONTEXTS[split], tags=tags)
        except mlflow.exceptions.MlflowException as error:
            # Two runs that log the same new dataset at once (identical experiments in a sweep)
            # can both try to insert it; the loser fails on the unique key. Once, it then finds
            # the row the other one wrote.
            if "unique" not in str(error).lower():
                raise
            mlflow.log_input(dataset, context=DATASET_CONTEXTS[split], tags=tags)


def log_baseline(params: Params, run_name: str, metrics: dict) -> None:
    """The baseline's run, beside the LSTM runs in the same experiment: the params that shaped
    its data and model, and its metrics (the same ``test_*`` names as the LSTM's). The stage
    opened the store (:func:`use_experiment`) before it wrote anything."""
    with one_line_errors(), mlflow.start_run(run_name=run_name, tags={**run_tags(), "model_type": run_name}):
        sections = ("data.", "clean.", "tokenize.", "encode.", "baseline.")
        mlflow.log_params({k: v for k, v in params.flat().items() if k.startswith(sections)})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None})
