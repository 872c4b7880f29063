"""Adversarial training on the embedded tokens (Miyato, Dai & Goodfellow 2017, "Adversarial
training methods for semi-supervised text classification").

After the clean loss's backward pass, the gradient with respect to each review's embedded tokens
says which small change of them would raise the loss most. The same batch is run again with the
embedded tokens pushed that way, ``train.adversarial_epsilon`` far (L2 norm over the review's
tokens, in units of the embedding's standard deviation, so the push keeps its size however the
embedding grows), and that loss is learned from as well: the model learns to keep its answer
under the worst small change of its input. It costs a second forward and backward pass per batch.

Both steps hook the embedding's output, so the classifier itself (and DistributedDataParallel
around it) is untouched, and with ``epsilon`` 0 nothing is hooked at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def keeping_embedded(embedding: nn.Embedding, enabled: bool) -> Iterator[list[torch.Tensor]]:
    """Inside the block, each output of ``embedding`` is kept (with its gradient, once the loss's
    backward pass has run) in the list it yields; with ``enabled`` false nothing is."""
    kept: list[torch.Tensor] = []

    def keep(module, inputs, output):
        output.retain_grad()
        kept.append(output)

    handle = embedding.register_forward_hook(keep) if enabled else None
    try:
        yield kept
    finally:
        if handle is not None:
            handle.remove()


def perturbation(embedded: torch.Tensor, epsilon: float, embedding: nn.Embedding) -> torch.Tensor:
    """``epsilon`` along the loss gradient of ``embedded`` (``[batch, time, dim]``), per review."""
    gradient = embedded.grad.detach()
    norm = gradient.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    return epsilon * embedding.weight.detach().std() * gradient / norm


@contextlib.contextmanager
def perturbed(embedding: nn.Embedding, push: torch.Tensor) -> Iterator[None]:
    """Inside the block, ``push`` is added to the embedding's output."""
    handle = embedding.register_forward_hook(lambda module, inputs, output: output + push)
    try:
        yield
    finally:
        handle.remove()
