"""The optimizer's parts that ``train`` params choose: Adam's parameter groups and the LR schedule."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.core.params import TrainParams


def make_optimizer(model: nn.Module, started: list[str], params: TrainParams) -> torch.optim.Adam:
    """Adam over ``model``; the parameters a pretrained start gave (``started``, by name) learn at
    ``lr * pretrained_lr_factor`` (ULMFiT's discriminative fine-tuning, one factor for the start)."""
    if params.pretrained_lr_factor == 1.0:
        return adam(model.parameters(), params.lr)
    named = dict(model.named_parameters())
    groups = [
        {"params": [parameter for name, parameter in named.items() if name not in started]},
        {"params": [named[name] for name in started], "lr": params.lr * params.pretrained_lr_factor},
    ]
    return adam(groups, params.lr)


def adam(parameters, lr: float) -> torch.optim.Adam:
    """PyTorch's fused Adam, on a GPU and on a CPU alike: on a CPU its step runs on PyTorch's own
    vector loops, where the unfused one takes square roots from MKL's vector math, which gives
    other bits on AMD than on Intel CPUs whatever MKL_CBWR says (pipeline.core.cpu_math)."""
    return torch.optim.Adam(parameters, lr=lr, fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, params: TrainParams, total_steps: int):
    if params.lr_schedule == "cosine":  # stepped every batch, down to 0 at the last step
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if params.lr_schedule == "plateau":  # stepped at each validation: halve the LR when val loss stalls
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0)
    return None
