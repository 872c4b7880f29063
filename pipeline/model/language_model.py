"""An LSTM language model over the vocabulary, to start the classifier from (``pretrain.kind: lm``).

The forward model reads the text and predicts each next token; the backward model (where
``pretrain.bidirectional``) reads it reversed and predicts each previous one. They share one
embedding, as the classifier's two directions do, and their LSTMs are named as the classifier's
first layer (``forward_layers.0``, ``backward_layers.0``), so :meth:`LanguageModel.transferable`
gives the classifier's own parameter names. The output layer is PyTorch's adaptive softmax: the
frequent words (the vocabulary is ordered by frequency) get a full softmax, rarer ones go through
smaller clusters, which makes a 50-100k word vocabulary affordable on a CPU.

Training (:func:`train_language_model`) follows the AWD-LSTM recipe's shape without its
regularisers: all the text as one stream of ids cut into ``batch_size`` parallel rows, windows of
``bptt`` tokens, the hidden state carried from one window to the next (detached), Adam on a
cosine schedule, gradient norm clipped. The same seed gives the same weights on a CPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.core.params import PretrainParams
from pipeline.data.text import PAD_ID
from pipeline.model.network import portable_lstm
from pipeline.model.optimization import adam

CLUSTER_STARTS = (1_000, 5_000, 20_000)  # adaptive softmax: the 1,000 most frequent words, then clusters of rarer ones
GRAD_CLIP = 1.0  # gradients through long unrolls spike now and then; clipping keeps Adam's steps steady


class LanguageModel(nn.Module):
    def __init__(self, vocab_size: int, params: PretrainParams):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, params.vector_size, padding_idx=PAD_ID)
        directions = 2 if params.bidirectional else 1
        self.forward_layers = nn.ModuleList([nn.LSTM(params.vector_size, params.hidden_size, batch_first=True)])
        self.backward_layers = nn.ModuleList(
            [nn.LSTM(params.vector_size, params.hidden_size, batch_first=True)] if params.bidirectional else []
        )
        cutoffs = [start for start in CLUSTER_STARTS if start < vocab_size - 1] or [vocab_size // 2]
        self.heads = nn.ModuleList(
            nn.AdaptiveLogSoftmaxWithLoss(params.hidden_size, vocab_size, cutoffs, div_value=4.0)
            for _ in range(directions)
        )
        self.dropout = nn.Dropout(params.dropout)

    def directions(self) -> list[nn.LSTM]:
        return [self.forward_layers[0], *self.backward_layers[:1]]

    def loss(self, direction: int, inputs: torch.Tensor, targets: torch.Tensor, state):
        """Mean negative log-likelihood of ``targets`` after ``inputs`` (``[rows, time]``) in one
        direction, and the LSTM state to carry to the next window."""
        x = self.dropout(self.embedding(inputs))
        with portable_lstm():
            out, (h, c) = self.directions()[direction](x, state)
        out = self.dropout(out).reshape(-1, out.shape[-1])
        return self.heads[direction](out, targets.reshape(-1)).loss, (h.detach(), c.detach())

    def transferable(self) -> dict[str, np.ndarray]:
        """The embedding and the LSTMs, by the classifier's parameter names (not the output layers)."""
        return {
            name: tensor.detach().cpu().numpy()
            for name, tensor in self.state_dict().items()
            if not name.startswith("heads.")
        }


def stream_rows(ids: np.ndarray, rows: int) -> torch.Tensor:
    """One stream of ids cut into ``rows`` consecutive parts, one per row (the tail that does not
    fill a row is dropped)."""
    width = len(ids) // rows
    return torch.from_numpy(ids[: width * rows].astype(np.int64).reshape(rows, width))


def train_language_model(
    ids: np.ndarray, vocab_size: int, params: PretrainParams, device: torch.device
) -> tuple[LanguageModel, list[float]]:
    """Train on ``ids`` (every text's token ids, one after another); return the model and each
    epoch's training perplexity (averaged over the directions)."""
    torch.manual_seed(params.seed)
    rows = min(params.batch_size, max(len(ids) // (params.bptt + 1), 1))
    forward = stream_rows(ids, rows).to(device)
    streams = [forward, forward.flip(1)] if params.bidirectional else [forward]
    model = LanguageModel(vocab_size, params).to(device)
    optimizer = adam(model.parameters(), params.lr)
    starts = range(0, forward.shape[1] - 1, params.bptt)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=len(starts) * params.epochs)
    perplexities = []
    model.train()
    for epoch in range(params.epochs):
        states = [None] * len(streams)
        total = torch.zeros((), device=device)
        for start in tqdm(starts, f"language model, epoch {epoch + 1}/{params.epochs}", leave=False, disable=None):
            end = min(start + params.bptt, forward.shape[1] - 1)
            loss = torch.zeros((), device=device)
            for direction, stream in enumerate(streams):
                window_loss, states[direction] = model.loss(
                    direction, stream[:, start:end], stream[:, start + 1 : end + 1], states[direction]
                )
                loss = loss + window_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            scheduler.step()
            total += loss.detach() / len(streams)
        perplexities.append(math.exp(float(total) / len(starts)))
        print(f"language model, epoch {epoch + 1}: training perplexity {perplexities[-1]:.1f}")
    return model, perplexities
