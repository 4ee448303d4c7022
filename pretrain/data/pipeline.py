"""Shuffled, sharded batches from an explicit PRNG key.

Every process computes the same permutation from ``(key, epoch)`` and takes its own contiguous
slice of each global batch, so the global batch is identical whatever the number of processes, and
a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import numpy as np

from pretrain.data.dataset import ArrayDataset

Batch = tuple[np.ndarray, np.ndarray]


def _check_shard(batch_size: int, process_index: int, process_count: int) -> int:
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, {process_count}).")
    if batch_size % process_count:
        raise ValueError(
            f"global batch {batch_size} does not split evenly over {process_count} processes."
        )
    return batch_size // process_count


def epoch_order(key: jax.Array, epoch: int, n: int) -> np.ndarray:
    """The example order of ``epoch``: a permutation of ``range(n)`` fixed by ``(key, epoch)``."""
    return np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))


def steps_per_epoch(dataset: ArrayDataset, batch_size: int) -> int:
    """Full global batches in one pass (the remainder is dropped, as in every epoch)."""
    return len(dataset) // batch_size


def train_batches(
    dataset: ArrayDataset,
    batch_size: int,
    *,
    key: jax.Array,
    epoch: int,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[Batch]:
    """Yields this process's slice of each shuffled global batch of one epoch.

    Args:
      dataset: examples to draw from.
      batch_size: the global batch size (over all processes).
      key: PRNG key of the run; the epoch's order is derived from it and ``epoch``.
      epoch: epoch number (0-based).
      process_index: which slice of each global batch this process feeds.
      process_count: number of processes feeding the global batch.

    Yields:
      ``(images, labels)`` with ``batch_size // process_count`` rows.
    """
    local = _check_shard(batch_size, process_index, process_count)
    order = epoch_order(key, epoch, len(dataset))
    start = process_index * local
    for step in range(steps_per_epoch(dataset, batch_size)):
        idx = order[step * batch_size + start : step * batch_size + start + local]
        yield dataset.images[idx], dataset.labels[idx]


def eval_batches(
    dataset: ArrayDataset,
    batch_size: int,
    *,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yields every example once, in order, as ``(images, labels, mask)`` global-batch slices.

    The last batch is padded by repeating example 0; ``mask`` is 1.0 for real examples, so sums
    weighted by it count each example exactly once.
    """
    local = _check_shard(batch_size, process_index, process_count)
    n = len(dataset)
    for begin in range(0, n, batch_size):
        idx = np.arange(begin, begin + batch_size)[
            process_index * local : (process_index + 1) * local
        ]
        mask = (idx < n).astype(np.float32)
        idx = np.where(idx < n, idx, 0)
        yield dataset.images[idx], dataset.labels[idx], mask
