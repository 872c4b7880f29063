"""The classifier: Embedding -> stacked (optionally bidirectional) LSTM -> dropout -> Linear.

It returns one logit per review (train with ``BCEWithLogitsLoss``; ``sigmoid`` gives the
probability of "positive"). Each batch starts from a zero hidden state, so nothing leaks
between unrelated reviews, and the head reads the forward direction at the last *real* token
and the backward direction at the first one, never at a padding position (both were bugs in
the reference tutorial).

Padding never touches the result: rows are moved to right padding inside ``forward``, the
forward direction runs over the real tokens before any pad, and the backward direction runs
over each row's real tokens reversed. A review gets the same logit whatever its padding side,
its ``seq_len`` or the other reviews in its batch, which also makes trimming a batch to its
longest review exact. Each layer and direction is one ``nn.LSTM`` (cuDNN on a GPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    embedding_dim: int = 64
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.2
    bidirectional: bool = False
    pad: Literal["left", "right"] = "left"
    pad_id: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def to_right_padding(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Move each left-padded row's real tokens to the front (a per-row rotation)."""
    time_steps = ids.shape[1]
    positions = torch.arange(time_steps, device=ids.device)
    source = (positions.unsqueeze(0) + (time_steps - lengths).unsqueeze(1)) % time_steps
    return ids.gather(1, source)


def reverse_real_tokens(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``length`` steps of each right-padded row ``[batch, time, features]``;
    pads stay in place. Applying it twice gives ``x`` back."""
    positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    source = torch.where(positions < lengths, lengths - 1 - positions, positions)
    return x.gather(1, source.unsqueeze(2).expand_as(x))


class LSTMClassifier(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_id)
        directions = 2 if config.bidirectional else 1
        inputs = [config.embedding_dim] + [config.hidden_size * directions] * (config.num_layers - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(n, config.hidden_size, batch_first=True) for n in inputs)
        self.backward_layers = nn.ModuleList(
            nn.LSTM(n, config.hidden_size, batch_first=True) for n in (inputs if config.bidirectional else [])
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size * directions, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids``: int tensor ``[batch, time]`` padded with ``pad_id`` -> logits ``[batch]``."""
        ids = ids.long()
        lengths = (ids != self.config.pad_id).sum(dim=1)
        if self.config.pad == "left":
            ids = to_right_padding(ids, lengths)
        lengths = lengths.clamp(min=1)  # an empty review is read at its first (pad) step
        x = self.embedding(ids)
        for layer in range(self.config.num_layers):
            if layer > 0:
                x = self.dropout(x)  # between layers, as nn.LSTM(dropout=...)
            forward_out, _ = self.forward_layers[layer](x)  # zero initial state for every batch
            if self.config.bidirectional:
                reversed_out, _ = self.backward_layers[layer](reverse_real_tokens(x, lengths))
                backward_out = reverse_real_tokens(reversed_out, lengths)
                x = torch.cat([forward_out, backward_out], dim=2)
            else:
                x = forward_out
        rows = torch.arange(ids.shape[0], device=ids.device)
        hidden = self.config.hidden_size
        features = x[rows, lengths - 1, :hidden]  # forward direction after the last real token
        if self.config.bidirectional:
            features = torch.cat([features, x[:, 0, hidden:]], dim=1)  # backward, after the first
        return self.head(self.dropout(features)).squeeze(-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
