"""Where the math runs: the device, autocast precision, and the process group under torchrun.

``auto`` picks CUDA when PyTorch sees a GPU. Under ``torchrun`` (``WORLD_SIZE`` > 1) every process
joins one process group (nccl on GPUs, gloo on CPUs) and uses the GPU of its ``LOCAL_RANK``;
otherwise there is one process, rank 0.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist
from torch import nn

from pipeline.core.cli import StageError


def start_processes(choice: str) -> torch.device:
    """Join torchrun's process group when started by it; return this process's device for
    ``choice`` (``auto``, ``cpu`` or ``cuda``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        use_cuda = choice == "cuda" or (choice == "auto" and torch.cuda.is_available())
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = pick_device(choice)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def end_processes() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise StageError("device 'cuda' was asked for but PyTorch sees no CUDA device (use 'auto' or 'cpu')")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(choice)


def world() -> tuple[int, int]:
    """``(rank, number of processes)``: ``(0, 1)`` unless running under torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce(values: list[float], device: torch.device) -> list[float]:
    """The sums of ``values`` over every process (``values`` itself with one process)."""
    if world()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.precision`` on ``device``; None means plain fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise StageError(f"train.precision {precision!r} needs a CUDA device (use 'auto' or 'fp32' on a CPU)")
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def first_working_autocast(model: nn.Module, ids: torch.Tensor, device: torch.device, dtype: torch.dtype):
    """``dtype`` if one forward and backward pass run under it, else fp16, else None (fp32).

    cuDNN gained bf16 LSTMs only recently (cuDNN 9.13); with an older one, ``precision: auto``
    falls back instead of failing the run."""
    for candidate in dict.fromkeys([dtype, torch.float16]):
        try:
            with autocast(device, candidate):
                model(ids).float().sum().backward()
            model.zero_grad(set_to_none=True)
            return candidate
        except RuntimeError as err:
            model.zero_grad(set_to_none=True)
            print(f"train: {candidate} autocast does not run here ({str(err).splitlines()[0]}); trying the next")
    return None


def training_autocast(precision: str, model: nn.Module, sample_ids: torch.Tensor) -> torch.dtype | None:
    """The autocast dtype training runs under: ``train.precision``, with ``auto`` probed on the
    model (``sample_ids``: a couple of real rows) so that it falls back rather than fails."""
    device = next(model.parameters()).device
    dtype = autocast_dtype(precision, device)
    if precision == "auto" and dtype is not None:
        dtype = first_working_autocast(model, sample_ids.to(device), device, dtype)
    return dtype
