"""The outside world's failures, each one line on stderr with nothing half-written, and a clean
re-run after them gives the same outputs: a full disk, damaged intermediate files, SIGTERM,
settings that cannot fit, anything unexpected."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_stage_cli import DATA_STAGES, digests, run_stage, sample_bytes, workspace

NO_SPACE = "could not be written: no space left on device (free some space there, then run the stage again)"
TINY_MODEL = {"embedding_dim": 8, "hidden_size": 8, "batch_size": 64, "epochs": 2, "device": "cpu"}


def assert_one_line(result: subprocess.CompletedProcess, line: str, status: int = 1) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.strip() == line, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def data_stages_done(tmp_path_factory) -> Path:
    """A folder where the four data stages and ngrams ran on a small synthetic sample, with a tiny
    model's train params; tests copy it."""
    root = workspace(tmp_path_factory.mktemp("done"), sample_bytes(1500, 1), sample_bytes(400, 2))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"] = TINY_MODEL
    params["encode"] = {"seq_len": 40}
    params["ngrams"] = {"buckets": 1024}  # a small model file: the small-disk tests size the disk by it
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in (*DATA_STAGES, "ngrams"):  # train blends with the n-gram model
        result = run_stage(stage, root)
        assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def done(data_stages_done, tmp_path) -> Path:
    return Path(shutil.copytree(data_stages_done, tmp_path / "work"))


@pytest.fixture
def small_disk(tmp_path):
    """Mounts a tmpfs of the given size on a folder (root only; skips elsewhere)."""
    mounted = []

    def mount(folder: Path, size: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here to fill a disk: {result.stderr.decode().strip()}")
        mounted.append(folder)

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if ".tmp-" in path.name]


def test_ingest_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, small_disk):
    root = workspace(tmp_path, sample_bytes(3000, 1), sample_bytes(600, 2))
    interim = root / "data" / "interim"
    small_disk(interim, "16k")
    assert_one_line(run_stage("ingest", root), f"error: data/interim/reviews: {NO_SPACE}")
    assert list(interim.iterdir()) == []
    subprocess.run(["umount", "-l", str(interim)], check=True)
    assert run_stage("ingest", root).returncode == 0
    (tmp_path / "again").mkdir()
    again = workspace(tmp_path / "again", sample_bytes(3000, 1), sample_bytes(600, 2))
    assert run_stage("ingest", again).returncode == 0
    assert digests(root) == digests(again)


def test_a_checkpoint_that_cannot_be_written_does_not_stop_training(done, small_disk):
    models = done / "models"
    small_disk(models, "48k")  # room for the model file (about 20 kB), not the checkpoint beside it
    result = run_stage("train", done)
    assert result.returncode == 0, result.stderr
    warning = f"train: warning: models/checkpoint.pt: {NO_SPACE}; training goes on without checkpoints"
    assert warning in result.stderr.splitlines()
    assert (models / "model.pt").exists() and not (models / "checkpoint.pt").exists()
    assert leftovers(done) == []


def test_a_model_file_that_cannot_be_written_is_one_line(done, small_disk, data_stages_done, tmp_path):
    small_disk(done / "models", "4k")
    result = run_stage("train", done)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: models/model.pt: {NO_SPACE}"
    assert "Traceback" not in result.stderr
    assert list((done / "models").iterdir()) == []
    # with room again, the same model as a training that never failed
    subprocess.run(["umount", "-l", str(done / "models")], check=True)
    assert run_stage("train", done).returncode == 0
    never_failed = Path(shutil.copytree(data_stages_done, tmp_path / "never-failed"))
    assert run_stage("train", never_failed).returncode == 0
    assert (done / "models/model.pt").read_bytes() == (never_failed / "models/model.pt").read_bytes()


CURE = "(restore it with dvc checkout, or make it again: dvc repro -f {})"


@pytest.mark.parametrize(
    ("damage", "stage", "line"),
    [
        (
            lambda root: cut(root / "data/processed/vocab.json"),
            "encode",
            "error: data/processed/vocab.json: damaged (JSONDecodeError: Expecting value: line 187 column 16 "
            "(char 2482)) " + CURE.format("vocab"),
        ),
        (
            lambda root: (root / "data/processed/shards/manifest.json").write_bytes(b"\xff\xfe garbage"),
            "train",
            "error: data/processed/shards/manifest.json: damaged (UnicodeDecodeError: 'utf-8' codec can't decode "
            "byte 0xff in position 0: invalid start byte) " + CURE.format("encode"),
        ),
        (
            lambda root: (root / "data/processed/shards/manifest.json").write_text('{"seq_len": 40}'),
            "train",
            "error: data/processed/shards/manifest.json: damaged (ValueError: no pad, pad_id, vocab_size, splits) "
            + CURE.format("encode"),
        ),
        (
            lambda root: (root / "data/processed/shards/train/ids-00000.npy").unlink(),
            "train",
            "error: data/processed/shards/train/ids-00000.npy: not found " + CURE.format("encode"),
        ),
        (
            lambda root: cut(root / "data/processed/shards/train/labels-00000.npy"),
            "train",
            "error: data/processed/shards/train/labels-00000.npy: damaged (ValueError: Failed to read all data "
            "for array. Expected (1500,) = 1500 elements, could only read 686 elements. (file seems not fully "
            "written?)) " + CURE.format("encode"),
        ),
        (
            lambda root: cut(root / "data/interim/tokens/train.parquet"),
            "vocab",
            "error: data/interim/tokens/train.parquet: damaged (ArrowInvalid: Parquet magic bytes not found in "
            "footer. Either the file is corrupted or this is not a parquet file.) " + CURE.format("clean"),
        ),
    ],
    ids=["half-vocab", "binary-manifest", "manifest-without-keys", "deleted-shard", "truncated-shard", "half-tokens"],
)
def test_a_damaged_intermediate_file_is_one_line_naming_it_and_the_cure(done, damage, stage, line):
    before = digests(done)
    damage(done)
    assert_one_line(run_stage(stage, done), line)
    assert leftovers(done) == []
    # what the message says to do, here by hand: the stage that makes the file, again
    maker = {"encode": "vocab", "train": "encode", "vocab": "clean"}[stage]
    for again in DATA_STAGES[DATA_STAGES.index(maker) :]:
        assert run_stage(again, done).returncode == 0
    assert digests(done) == before


def cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def test_sigterm_during_training_is_one_line_exit_143_and_the_run_marked_failed(done):
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{done / 'mlflow.db'}", "TQDM_DISABLE": "1"}
    params = yaml.safe_load((done / "params.yaml").read_text())
    params["train"].update(epochs=200, eval_every=5)
    (done / "params.yaml").write_text(yaml.safe_dump(params))
    train = subprocess.Popen(
        [sys.executable, "-m", "pipeline.train"], cwd=done, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (done / "models" / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    train.send_signal(signal.SIGTERM)
    _, stderr = train.communicate(timeout=60)
    assert train.returncode == 143
    assert stderr.decode().strip().splitlines()[-1] == "terminated"
    assert "Traceback" not in stderr.decode()
    assert not (done / "models" / "model.pt").exists() and leftovers(done) == []
    runs = "mlflow.search_runs(search_all_experiments=True, output_format='list')"
    check = f"import mlflow; print([r.info.status for r in {runs}])"
    runs = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True)
    assert runs.stdout.strip() == "['FAILED']"


@pytest.mark.parametrize(
    "signum, status, line", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
def test_a_signal_inside_signals_held_takes_effect_when_the_block_ends(signum, status, line):
    code = (
        "import os\nfrom pipeline.core.cli import run_main, signals_held\n"
        "def main():\n    with signals_held():\n"
        f"        os.kill(os.getpid(), {int(signum)})\n        print('the block ran to its end', flush=True)\n"
        "    print('after the block')\n"
        "run_main(main)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.stdout == "the block ran to its end\n"
    assert_one_line(result, line, status)


def test_a_seq_len_that_cannot_fit_in_memory_stops_encode_before_any_work(done):
    params = yaml.safe_load((done / "params.yaml").read_text())
    params["encode"]["seq_len"] = 100_000_000
    (done / "params.yaml").write_text(yaml.safe_dump(params))
    before = digests(done)
    result = run_stage("encode", done)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith(
        "error: encode.seq_len=100000000: a batch and a shard of 3400 rows x 100000000 ids need 1.2 TiB, "
        "and this machine has "
    )
    assert line.endswith(" (lower encode.seq_len, or encode.shard_rows)")
    assert digests(done) == before


def test_an_unexpected_error_is_one_line_with_the_way_to_its_traceback(tmp_path):
    code = "from pipeline.core.cli import run_main\ndef main():\n    {}['missing']\nrun_main(main)\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert_one_line(result, "error: unexpected KeyError: 'missing' (set LSTM_SENTIMENT_DEBUG=1 to see the traceback)")
    env = os.environ | {"LSTM_SENTIMENT_DEBUG": "1"}
    shown = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert shown.returncode == 1 and "Traceback" in shown.stderr and "KeyError: 'missing'" in shown.stderr


def test_an_os_error_names_its_file_and_what_to_do(tmp_path):
    code = "from pipeline.core.cli import run_main\ndef main():\n    open('no-folder/x', 'w')\nrun_main(main)\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert_one_line(result, "error: no-folder/x: not found (run the earlier stages first: dvc repro)")


def test_evaluate_with_the_store_locked_stops_before_writing_anything(done):
    import sqlite3

    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{done / 'mlflow.db'}", "TQDM_DISABLE": "1"}
    train = subprocess.run([sys.executable, "-m", "pipeline.train"], cwd=done, env=env, capture_output=True, text=True)
    assert train.returncode == 0, train.stderr
    before = digests(done)
    lock = sqlite3.connect(done / "mlflow.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process writing to the store, for as long as this test runs
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.evaluate"], cwd=done, env=env, capture_output=True, text=True
        )
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert_one_line(
        result,
        f"error: MLflow tracking store sqlite:///{done / 'mlflow.db'} is not usable: database is locked "
        "(start or repair it, or set MLFLOW_TRACKING_URI to another store)",
    )
    assert digests(done) == before and not (done / "metrics" / "eval.json").exists()
