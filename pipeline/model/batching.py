"""Batches: a split in tensors, each epoch's batches planned on the host, each trimmed to its
longest review.

Rows can be bucketed by length (``train.bucket_by_length``) so a batch of short reviews is not
computed at the length of a long one; trimming is exact because padding never changes a
review's output (pipeline.model.network). The token ids live on the training device, or, when they do
not fit there (``train.data_placement``), in host memory with each batch gathered on the host
and copied over through pinned memory while the GPU still works on the previous batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BUCKET_BATCHES = 64  # with bucket_by_length, rows are sorted by length within runs of this many batches


@dataclass
class Split:
    """One split in tensors (ids ``[rows, seq_len]``, float labels, lengths) plus the lengths on
    the host, where batches are planned. Labels and lengths are on the training device; the ids
    too, unless ``ids_on_host``: then each batch is gathered on the host and copied over."""

    ids: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor
    host_lengths: np.ndarray
    ids_on_host: bool = False

    @classmethod
    def from_numpy(
        cls, ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray, device: torch.device, ids_on_host: bool = False
    ) -> Split:
        return cls(
            torch.from_numpy(ids) if ids_on_host else torch.from_numpy(ids).to(device),
            torch.from_numpy(labels.astype(np.float32)).to(device),
            torch.from_numpy(lengths.astype(np.int64)).to(device),
            lengths.astype(np.int64),
            ids_on_host,
        )

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, index: np.ndarray) -> Split:
        device_index = torch.from_numpy(index).to(self.labels.device)
        return Split(
            self.ids[torch.from_numpy(index) if self.ids_on_host else device_index],
            self.labels[device_index],
            self.lengths[device_index],
            self.host_lengths[index],
            self.ids_on_host,
        )

    def share(self, rank: int, processes: int) -> Split:
        """This process's rows when ``processes`` share the work (every ``processes``-th row)."""
        return self.rows(np.arange(rank, len(self), processes)) if processes > 1 else self


def trim_batch(ids: torch.Tensor, longest: int, pad: str) -> torch.Tensor:
    """Drop the padding columns that no review in the batch reaches (exact: see pipeline.model.network)."""
    longest = max(longest, 1)
    return ids[:, ids.shape[1] - longest :] if pad == "left" else ids[:, :longest]


def batch_to_device(ids: torch.Tensor, rows: np.ndarray, width: int, pad: str, device: torch.device) -> torch.Tensor:
    """``ids[rows]``, trimmed to ``width`` columns, from host memory onto ``device``.

    The rows are gathered on the host (only the kept columns), into page-locked memory on a GPU,
    so the copy is asynchronous: the host goes on to the next batch while the GPU still works on
    this one, which prefetches it. PyTorch's pinned-memory cache keeps the buffer until its copy
    is done."""
    batch = trim_batch(ids, width, pad)[torch.from_numpy(rows)]
    if device.type == "cuda":
        batch = batch.pin_memory()
    return batch.to(device, non_blocking=True)


def gather(split: Split, host_rows: np.ndarray, rows: torch.Tensor, width: int, pad: str) -> torch.Tensor:
    """The ids of ``rows`` (``host_rows`` on the host), trimmed to ``width``, on the split's device."""
    if split.ids_on_host:
        return batch_to_device(split.ids, host_rows, width, pad, split.labels.device)
    return trim_batch(split.ids, width, pad)[rows]  # gathers only the kept columns


def keep_ids_on_host(placement: str, nbytes: int, device: torch.device) -> bool:
    """Whether ``data_placement`` (auto, device or host) keeps ``nbytes`` of token ids on the host."""
    if placement != "auto":
        return placement == "host"
    if device.type != "cuda":
        return False  # host and device are the same memory
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes > free // 2  # leave the other half to the model, activations and cuDNN workspaces


def epoch_batches(lengths: np.ndarray, batch_size: int, bucket: bool, generator: torch.Generator) -> list[np.ndarray]:
    """One epoch's batches (row indices), shuffled with ``generator``.

    With ``bucket``, each run of ``BUCKET_BATCHES`` shuffled batches is sorted by length before it
    is cut into batches, and the batches are shuffled again: batches hold reviews of similar
    length, so trimming removes most of the padding, while every epoch still mixes the data."""
    order = torch.randperm(len(lengths), generator=generator).numpy()
    if not bucket:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    run = batch_size * BUCKET_BATCHES
    runs = np.split(order, range(run, len(order), run))
    order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in runs])
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


@dataclass
class EpochPlan:
    """One process's batches for one epoch, planned on the host up front, so that no training
    step waits for the host: the rows of every batch (copied to the device once) and the width
    each batch is trimmed to."""

    host_rows: np.ndarray  # every batch's rows, one batch after another
    rows: torch.Tensor  # the same, on the training device
    starts: list[int]  # batch i is rows[starts[i] : starts[i + 1]]
    widths: list[int]  # batch i's longest review

    @classmethod
    def make(
        cls, split: Split, batch_size: int, bucket: bool, generator: torch.Generator, rank: int = 0, processes: int = 1
    ) -> EpochPlan:
        """Under torchrun every process takes its share of each batch (a batch too small to
        give every process a row is left out)."""
        batches = epoch_batches(split.host_lengths, batch_size, bucket, generator)
        shares = [batch[rank::processes] for batch in batches if len(batch) >= processes]
        host_rows = np.concatenate(shares)
        return cls(
            host_rows,
            torch.from_numpy(host_rows).to(split.labels.device),
            np.cumsum([0] + [len(share) for share in shares]).tolist(),
            [int(split.host_lengths[share].max()) for share in shares],
        )

    def __len__(self) -> int:
        return len(self.widths)

    def batch(self, split: Split, index: int, pad: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, labels)`` of batch ``index``, on the training device."""
        begin, end = self.starts[index], self.starts[index + 1]
        rows = self.rows[begin:end]
        return gather(split, self.host_rows[begin:end], rows, self.widths[index], pad), split.labels[rows]
