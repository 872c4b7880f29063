"""The classifier: Embedding -> (dropout) -> stacked (optionally bidirectional) LSTM -> pooling -> dropout -> Linear.

For two classes it returns one logit per review (train with ``BCEWithLogitsLoss``; ``sigmoid``
gives the probability of the second class, "positive"); for more, one logit per class
(``CrossEntropyLoss``; ``softmax`` gives each class's probability). Each batch starts from a
zero hidden state, so nothing leaks between unrelated reviews. The head reads (``pooling``)
either the last *real* step (forward direction at the last real token, backward direction at
the first; the tutorial read the last padded position instead), the mean or max over the real
steps, or all three side by side (``concat``, ULMFiT's concat pooling); never a padding position.
Stacked layers may differ in width (``hidden_sizes``, e.g. 128 then 64).

Padding never touches the result: rows are moved to right padding inside ``forward``, the
forward direction runs over the real tokens before any pad, and the backward direction runs
over each row's real tokens reversed. A review gets the same logit whatever its padding side,
its ``seq_len`` or the other reviews in its batch, which also makes trimming a batch to its
longest review exact. Each layer and direction is one ``nn.LSTM`` (cuDNN on a GPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from pipeline.core import cpu_math
from pipeline.core.cli import StageError


@contextlib.contextmanager
def portable_lstm() -> Iterator[None]:
    """oneDNN's LSTM adds in an order that changes with the CPU and the thread count
    (pipeline.core.cpu_math): where this process takes the portable paths, the LSTM layers run on
    PyTorch's own loops and MKL instead, while inside this block only, so the rest of the
    process (a notebook's other models, say) keeps PyTorch's defaults."""
    if not cpu_math.portable():
        yield
        return
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    embedding_dim: int = 64
    hidden_sizes: tuple[int, ...] = (64,)  # one width per stacked layer, e.g. (128, 64)
    dropout: float = 0.2
    embedding_dropout: float = 0.0  # on the embedded tokens, before the first layer (Keras: input dropout)
    bidirectional: bool = False
    pooling: Literal["last", "mean", "max", "concat"] = "last"
    pad: Literal["left", "right"] = "left"
    pad_id: int = 0
    num_classes: int = 2

    def __post_init__(self):
        # a config read back from model.pt or JSON holds a list
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))

    @property
    def outputs(self) -> int:
        """Logits per review: one for two classes, else one per class."""
        return 1 if self.num_classes == 2 else self.num_classes

    def to_dict(self) -> dict:
        config = asdict(self)
        if config["num_classes"] == 2:  # a two-class model's file is as it always was; a reader takes 2
            del config["num_classes"]
        return config


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
        inputs = [config.embedding_dim] + [width * directions for width in config.hidden_sizes[:-1]]
        layers = list(zip(inputs, config.hidden_sizes, strict=True))
        self.forward_layers = nn.ModuleList(nn.LSTM(n, width, batch_first=True) for n, width in layers)
        self.backward_layers = nn.ModuleList(
            nn.LSTM(n, width, batch_first=True) for n, width in (layers if config.bidirectional else [])
        )
        self.dropout = nn.Dropout(config.dropout)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        pooled = 3 if config.pooling == "concat" else 1
        self.head = nn.Linear(config.hidden_sizes[-1] * directions * pooled, config.outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids``: int tensor ``[batch, time]`` padded with ``pad_id`` -> logits ``[batch]`` (two
        classes) or ``[batch, classes]``."""
        ids = ids.long()
        lengths = (ids != self.config.pad_id).sum(dim=1)
        if self.config.pad == "left":
            ids = to_right_padding(ids, lengths)
        lengths = lengths.clamp(min=1)  # an empty review is read at its first (pad) step
        x = self.embedding(ids)
        if self.config.embedding_dropout > 0:
            x = self.embedding_dropout(x)
        with portable_lstm():  # the backward pass follows the kernels chosen here
            for layer, forward_layer in enumerate(self.forward_layers):
                if layer > 0:
                    x = self.dropout(x)  # between layers, as nn.LSTM(dropout=...)
                forward_out, _ = forward_layer(x)  # zero initial state for every batch
                if self.config.bidirectional:
                    reversed_out, _ = self.backward_layers[layer](reverse_real_tokens(x, lengths))
                    backward_out = reverse_real_tokens(reversed_out, lengths)
                    x = torch.cat([forward_out, backward_out], dim=2)
                else:
                    x = forward_out
        logits = self.head(self.dropout(self.pool(x, lengths)))
        return logits.squeeze(-1) if self.config.outputs == 1 else logits

    def pool(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The head's input from the last layer's outputs ``[batch, time, features]``, real steps only."""
        if self.config.pooling == "concat":
            return torch.cat([self.pool_by(kind, x, lengths) for kind in ("last", "max", "mean")], dim=1)
        return self.pool_by(self.config.pooling, x, lengths)

    def pool_by(self, kind: str, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if kind == "last":
            rows = torch.arange(x.shape[0], device=x.device)
            width = self.config.hidden_sizes[-1]
            features = x[rows, lengths - 1, :width]  # forward direction after the last real token
            if self.config.bidirectional:
                features = torch.cat([features, x[:, 0, width:]], dim=1)  # backward, after the first
            return features
        real = (torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)
        if kind == "mean":
            return (x * real).sum(dim=1) / lengths.unsqueeze(1).to(x.dtype)
        return x.masked_fill(~real, float("-inf")).amax(dim=1)


def lstm_from_scratch(
    x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor, bias_hh: torch.Tensor
) -> torch.Tensor:
    """One LSTM layer written out gate by gate, for reading and for checking ``nn.LSTM``.

    ``x`` is ``[batch, time, inputs]``; the weights are ``nn.LSTM``'s (``weight_ih_l0`` etc.), whose
    rows hold the input, forget, candidate and output gates in that order. Returns every step's
    hidden state ``[batch, time, hidden]``, starting from zero state like the classifier."""
    hidden = weight_hh.shape[1]
    h = x.new_zeros(x.shape[0], hidden)
    c = x.new_zeros(x.shape[0], hidden)
    outputs = []
    for t in range(x.shape[1]):
        gates = x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
        i, f, g, o = gates.split(hidden, dim=1)
        input_gate = torch.sigmoid(i)  # how much of the candidate to write
        forget_gate = torch.sigmoid(f)  # how much of the old cell state to keep
        candidate = torch.tanh(g)  # the new content proposed for the cell
        output_gate = torch.sigmoid(o)  # how much of the cell to expose as h
        c = forget_gate * c + input_gate * candidate
        h = output_gate * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def start_embedding(model: LSTMClassifier, vectors: np.ndarray) -> list[str]:
    """Copy pretrained vectors (``[vocab size, embedding_dim]``, NaN rows for tokens without one)
    into the embedding, rescaled to the spread of its random start (N(0, 1)): pretrained vectors
    are much smaller, and the LSTM's gates expect inputs of that size. Rows without a vector keep
    their random start."""
    known = np.flatnonzero(~np.isnan(vectors[:, 0]))
    with torch.no_grad():
        weight = model.embedding.weight
        weight[torch.from_numpy(known)] = torch.from_numpy(vectors[known] / vectors[known].std()).to(weight.device)
    return ["embedding.weight"]


def start_from_language_model(model: LSTMClassifier, weights: dict[str, np.ndarray]) -> list[str]:
    """Copy a language model's embedding and first LSTM layer (``weights``: arrays by the name of
    the classifier parameter they start) into ``model``; deeper layers and the head keep their
    random start. A bidirectional classifier needs the backward language model too."""
    own = model.state_dict()
    if model.config.bidirectional and not any(name.startswith("backward_layers.") for name in weights):
        raise StageError(
            "train.bidirectional is true but the language model reads forward only: "
            "set pretrain.bidirectional: true (then dvc repro pretrain)"
        )
    wanted = {name: array for name, array in weights.items() if name in own}
    for name, array in wanted.items():
        if tuple(own[name].shape) != array.shape:
            raise StageError(
                f"the language model's {name} is {list(array.shape)}, the classifier's {list(own[name].shape)}: "
                "set pretrain.vector_size to train.embedding_dim and pretrain.hidden_size to the first "
                "train.hidden_size (then dvc repro pretrain)"
            )
    with torch.no_grad():
        for name, array in wanted.items():
            own[name].copy_(torch.from_numpy(array))
    return list(wanted)


def start_from(model: LSTMClassifier, pretrained: np.ndarray | dict[str, np.ndarray]) -> list[str]:
    """Start ``model`` from what pipeline.data.pretrained.load_pretrained returned; return the
    names of the parameters it started."""
    if isinstance(pretrained, dict):
        return start_from_language_model(model, pretrained)
    return start_embedding(model, pretrained)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
