"""The training's MLflow run: logging that never stops a training, and ``sync`` for what waited.

The run starts only on a store that works (else the stage stops with one line, within seconds).
After that, a store that fails or disappears never stops the training: each validation's
metrics are sent with short retries; what the store does not take is kept and sent again with
the next ones, and what it still has not taken at the end is saved, with copies of the run's
files, to ``models/mlflow-pending/<run id>/`` (the model, metrics and plots are always written).
``python -m pipeline.tracking.training_run sync`` sends it once the store is back and ends the run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow

from pipeline.core import paths
from pipeline.core.cli import run_main, signals_held
from pipeline.core.params import Params
from pipeline.data.files import sha256_file, write_json
from pipeline.tracking.store import (
    MODEL_HASH_TAG,
    describe,
    log_shard_datasets,
    one_line_errors,
    process_tags,
    quick_requests,
    run_name,
    run_tags,
    use_experiment,
)


class TrainingRun:
    """The MLflow run of one training, as the train stage uses it. A store that fails once the
    training has started never stops it: what it did not take is kept, sent again at the next
    call and at the end, and saved to ``models/mlflow-pending/`` if the store is still down then
    (``python -m pipeline.tracking.training_run sync`` sends it later). With no ``run_id`` (processes other
    than rank 0 under torchrun) every call does nothing."""

    def __init__(self, run_id: str | None):
        self.run_id = run_id
        self.pending: list[dict] = []  # {"metrics": {...}, "step": n, "timestamp": ms}
        self.down = False

    def attempt(self, call: Callable[[], None]) -> bool:
        try:
            with signals_held(), quick_requests():
                call()
        except Exception as error:  # whatever the store raises, training goes on
            if not self.down:
                message = f"MLflow ({mlflow.get_tracking_uri()}) failed: {describe(error)}"
                print(f"train: {message}; training goes on, its metrics are kept to log later", file=sys.stderr)
            self.down = True
            return False
        if self.down:
            print("train: MLflow answers again; the kept metrics are logged", file=sys.stderr)
        self.down = False
        return True

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        if not self.run_id:
            return
        self.pending.append({"metrics": metrics, "step": step, "timestamp": int(time.time() * 1000)})
        if self.attempt(lambda: send_metrics(self.run_id, self.pending)):
            self.pending.clear()

    def log_validation(self, row: dict) -> None:
        self.log_metrics({k: v for k, v in row.items() if k != "step"}, row["step"])

    def log_result(self, model_file: Path, metrics: dict, device, artifacts: list[Path]) -> None:
        """The trained model's hash (how evaluate finds this run), the summary and speed metrics,
        the device and the files that describe the run."""
        if not self.run_id:
            return
        tags = {MODEL_HASH_TAG: sha256_file(model_file), "device": str(device)}
        # beside the model, outside DVC's outputs: evaluate in this workspace (or this experiment's
        # temporary copy) logs to this very run, even when another run trained identical weights
        write_json(paths.RUN_ID_FILE, {"run_id": self.run_id, MODEL_HASH_TAG: tags[MODEL_HASH_TAG]})
        self.log_metrics(metrics)
        if not self.attempt(lambda: send_tags_and_files(self.run_id, tags, artifacts)) or self.pending:
            save_pending(self.run_id, self.pending, tags, artifacts)


def send_metrics(run_id: str, pending: list[dict]) -> None:
    from mlflow.entities import Metric

    metrics = [
        Metric(key, float(value), entry["timestamp"], entry["step"])
        for entry in pending
        for key, value in entry["metrics"].items()
    ]
    client = mlflow.MlflowClient()
    for start in range(0, len(metrics), 1000):  # MLflow's limit per batch
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def send_tags_and_files(run_id: str, tags: dict, files: list[Path]) -> None:
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    for path in files:
        client.log_artifact(run_id, str(path))


def save_pending(run_id: str, pending: list[dict], tags: dict, files: list[Path]) -> None:
    """What the store did not take, with copies of the files (the next run overwrites them)."""
    folder = paths.PENDING_DIR / run_id
    (folder / "files").mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy2(path, folder / "files" / Path(path).name)
    record = {"tracking_uri": mlflow.get_tracking_uri(), "metrics": pending, "tags": tags}
    write_json(folder / "pending.json", record)
    print(
        f"train: MLflow did not take everything; kept in {folder} "
        "(send it with: python -m pipeline.tracking.training_run sync)",
        file=sys.stderr,
    )


def sync() -> None:
    """Send every run's kept metrics, tags and files in ``models/mlflow-pending/`` to its store,
    and mark the run finished; what is sent is removed from the folder."""
    folders = sorted(paths.PENDING_DIR.glob("*/pending.json")) if paths.PENDING_DIR.exists() else []
    if not folders:
        print(f"nothing to send: {paths.PENDING_DIR} holds no kept MLflow data")
    for record_file in folders:
        folder, record = record_file.parent, json.loads(record_file.read_text(encoding="utf-8"))
        mlflow.set_tracking_uri(record["tracking_uri"])
        with one_line_errors(), quick_requests():
            send_metrics(folder.name, record["metrics"])
            send_tags_and_files(folder.name, record["tags"], sorted((folder / "files").iterdir()))
            mlflow.MlflowClient().set_terminated(folder.name, "FINISHED")
        shutil.rmtree(folder)
        print(f"sent the kept MLflow data of run {folder.name} to {record['tracking_uri']}")


@contextlib.contextmanager
def training_run(params: Params, manifest: dict, extra_params: dict, enabled: bool = True) -> Iterator[TrainingRun]:
    """An MLflow run (named after the DVC experiment, or the git commit) with every param, ``extra_params``,
    the train and validation shards as datasets, and system metrics. A store that does not work
    here stops the stage with one line, within seconds; once the run has started, nothing the
    store does stops the training (see :class:`TrainingRun`)."""
    if not enabled:
        yield TrainingRun(None)
        return
    try:
        with signals_held(), one_line_errors(), quick_requests():
            use_experiment(params.mlflow.experiment)
            tags = {**run_tags(), **process_tags(), "model_type": "lstm"}
            run = mlflow.start_run(run_name=run_name(), tags=tags, log_system_metrics=True)
            mlflow.log_params(params.flat())
            mlflow.log_params(extra_params)
            log_shard_datasets(paths.SHARDS_DIR, manifest, ("train", "val"))
    except BaseException:  # a store that fails, or SIGTERM, before the training starts
        end_quietly("FAILED")
        raise
    status = "FAILED"
    try:
        with quick_requests():  # every MLflow call, the system-metrics thread's too, gives up in seconds
            yield TrainingRun(run.info.run_id)
        status = "FINISHED"
    finally:
        end_quietly(status)


def end_quietly(status: str) -> None:
    """End the active run, if any, without waiting long on a store that is down (a run left
    RUNNING is ended by ``sync``)."""
    with signals_held(), contextlib.suppress(Exception), quick_requests():
        if mlflow.active_run() is not None:
            mlflow.end_run(status)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["sync"], help="sync: send what a training kept while MLflow was down")
    parser.parse_args()
    run_main(sync)
