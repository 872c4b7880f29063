"""The same bits on every x86-64 CPU: which code paths the math libraries take.

NumPy, OpenBLAS (NumPy's and SciPy's), MKL and oneDNN (PyTorch's) and PyTorch's own vectorised
loops each pick kernels for the CPU they start on (AVX2, AVX-512, ...; Intel or AMD), and kernels
of different widths add numbers in different orders. On the sample each of them alone changed the
trained weights or the baseline's predictions, and so did the number of threads oneDNN's LSTM ran
on (benchmarks/RESULTS.md). So by default, on a Linux x86-64 CPU with AVX2 and FMA:

- :func:`pin_code_paths` sets each library's own variable to one path that every such CPU runs
  alike (a variable the user already set wins). The stages that do floating-point math call it
  when they run as a stage (``python -m``), before NumPy or PyTorch load, since each library reads
  its variable once, when it starts; importing a stage module changes nothing. MKL takes its
  ``COMPATIBLE`` branch: MKL honours a named branch such as ``AVX2`` on Intel CPUs only and
  falls back to its own choice on AMD ones, so ``COMPATIBLE`` is the one branch both run alike;
  its sums depend on the number of threads, so MKL (and PyTorch, which follows MKL's variable)
  runs on one thread, whatever the number of cores.
- the model's forward pass (pipeline.model.network.portable_lstm) runs the LSTM on PyTorch's own
  loops and MKL instead of oneDNN's LSTM, whose sums depend on the thread count too.
- Adam is PyTorch's fused one (pipeline.model.optimization.adam): the unfused step takes its
  square roots from MKL's vector math, which gives other bits on AMD than on Intel whatever
  ``MKL_CBWR`` says.

``LSTM_SENTIMENT_CPU_MATH=native`` lets each CPU take its fastest paths instead (results then
differ between CPU types in the last bits, and so do ``dvc.lock``'s hashes).
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path

SWITCH = "LSTM_SENTIMENT_CPU_MATH"
PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's vectorised loops
    "MKL_CBWR": "COMPATIBLE",  # PyTorch's matrix products (MKL conditional numerical reproducibility)
    "MKL_NUM_THREADS": "1",  # COMPATIBLE's sums change with MKL's thread count (PyTorch then runs on one too)
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy's and SciPy's BLAS (scikit-learn, gensim)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's loops above AVX2
}


def has_avx2() -> bool:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        flags = next(line for line in Path("/proc/cpuinfo").open() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return "avx2" in flags and "fma" in flags


@functools.cache
def portable() -> bool:
    """Whether this process takes the pinned paths: by default, where the CPU has them."""
    choice = os.environ.get(SWITCH, "portable").lower()
    if choice not in ("portable", "native"):
        print(f"warning: {SWITCH}={choice!r} is neither 'portable' nor 'native'; using portable", file=sys.stderr)
    return choice != "native" and has_avx2()


def pin_code_paths() -> None:
    """Point every math library at its portable code path (call before NumPy and PyTorch load)."""
    if portable():
        for name, value in PINS.items():
            os.environ.setdefault(name, value)
