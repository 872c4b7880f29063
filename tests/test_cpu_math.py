"""Training gives the same weights whatever code path oneDNN takes and however many cores the machine has."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.cpu_math import PINS, SWITCH, has_avx2

REPO = Path(__file__).resolve().parents[1]
# TRAIN's weights on the portable paths, as every CPU checked gives them (benchmarks/RESULTS.md:
# an Intel Xeon with AVX-512 natively, AMD EPYC and Intel Haswell under emulation); the committed
# outputs of the sample were trained on the same paths
PORTABLE_WEIGHTS = "108a14a3556046894d4af1ec82b90f7e3772a0ada5aced5bef58d8240005395b"

# a stage's process in miniature: the code paths pinned before NumPy and PyTorch load, as
# `python -m pipeline.train` does, then one epoch
TRAIN = """
import hashlib
from pipeline.core.cpu_math import pin_code_paths
pin_code_paths()
import numpy as np, torch
import pipeline.train
from pipeline.core.params import TrainParams
from pipeline.model.batching import Split
from pipeline.model.network import ModelConfig
rng = np.random.default_rng(0)
ids = rng.integers(1, 50, (2000, 30)).astype(np.int32)
labels = (ids[:, -5:] < 25).sum(1) > 2
lengths = np.full(2000, 30)
cpu = torch.device("cpu")
train = Split.from_numpy(ids[:1600], labels[:1600], lengths[:1600], cpu)
val = Split.from_numpy(ids[1600:], labels[1600:], lengths[1600:], cpu)
config = ModelConfig(vocab_size=50, embedding_dim=32, hidden_sizes=(32,), bidirectional=True, pooling="max")
model = pipeline.train.train_model(train, val, config, TrainParams(batch_size=64, epochs=1))[0]
print(hashlib.sha256(b"".join(t.numpy().tobytes() for t in model.state_dict().values())).hexdigest())
"""


def cpu_model() -> str:
    lines = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    return lines[0].split(":", 1)[1].strip() if lines else "unknown"


def weights_digest(math: str, threads: int, onednn_isa: str) -> str:
    # threads as a machine with that many cores would start them (the stage never sets them itself)
    env = {k: v for k, v in os.environ.items() if k not in PINS} | {
        SWITCH: math,
        "ONEDNN_MAX_CPU_ISA": onednn_isa,
        "OMP_NUM_THREADS": str(threads),
    }
    result = subprocess.run(
        [sys.executable, "-c", TRAIN], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()[-1]


@pytest.mark.skipif(not has_avx2(), reason="the portable code paths are AVX2's: this CPU (or OS) has none to pin")
def test_weights_are_the_same_whatever_the_onednn_code_path_and_thread_count():
    # two machines in miniature: an SSE4.1-only oneDNN on one thread vs its AVX2 path on three
    first, second = (1, "SSE41"), (3, "AVX2")
    assert weights_digest("portable", *first) == weights_digest("portable", *second)
    # the comparison can tell: with each library on its own paths, the same two settings differ
    assert weights_digest("native", *first) != weights_digest("native", *second)


@pytest.mark.skipif(not has_avx2(), reason="the portable code paths are AVX2's: this CPU (or OS) has none to pin")
def test_this_cpu_trains_the_bits_the_committed_outputs_were_made_with():
    digest = weights_digest("portable", 2, "AVX2")
    assert digest == PORTABLE_WEIGHTS, (
        f"this CPU ({cpu_model()}) trains other weights than every CPU checked so far: on it dvc repro "
        "would not give the committed dvc.lock; find the library that takes another path here "
        "(benchmarks/RESULTS.md, 'The same bits on every CPU') and pin it in pipeline/core/cpu_math.py"
    )
