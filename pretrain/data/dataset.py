"""An in-memory labelled dataset, the splits the trainers use, and parts drawn when first read."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Generic, TypeVar, cast

import numpy as np

from pretrain.data.errors import DataError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """Images and integer labels held in memory, the first axis indexing examples.

    Attributes:
      images: ``(n, ...)`` array, already preprocessed for the model.
      labels: ``(n,)`` integer array.
      name: where the data came from, for messages and result files.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str = "dataset"

    def __post_init__(self) -> None:
        if self.images.shape[0] != self.labels.shape[0]:
            raise DataError(
                f"{self.name}: {self.images.shape[0]} images but {self.labels.shape[0]} labels."
            )
        if self.labels.ndim != 1:
            raise DataError(f"{self.name}: labels must be 1-D, got shape {self.labels.shape}.")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, index: np.ndarray | slice, name: str | None = None) -> ArrayDataset:
        """Returns the examples at ``index`` as a new dataset."""
        return ArrayDataset(self.images[index], self.labels[index], name or self.name)


def split_off(dataset: ArrayDataset, size: int, *, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    """Splits ``size`` random examples off ``dataset``: returns ``(rest, held_out)``.

    The split depends only on ``seed`` and the dataset length, so it is the same in every process
    and on every resume.
    """
    if not 0 <= size < len(dataset):
        raise ValueError(f"cannot hold out {size} of {len(dataset)} examples of {dataset.name}.")
    order = np.random.default_rng(seed).permutation(len(dataset))
    held, rest = np.sort(order[:size]), np.sort(order[size:])
    return dataset.take(rest, f"{dataset.name}[train]"), dataset.take(held, f"{dataset.name}[val]")


class Later(Generic[T]):
    """A value drawn when it is first asked for (:meth:`get`), and only once.

    A loader hands out the parts it may not need to draw this way (a held-out split, the
    whitening people): a reader of one part never pays for the others. ``Later(draw)`` keeps
    ``draw`` until the first :meth:`get` and the value after it.
    """

    def __init__(self, draw: Callable[[], T]) -> None:
        self._draw: Callable[[], T] | None = draw
        self._value: T | None = None

    def get(self) -> T:
        """The value, drawn now if this is the first call."""
        if self._draw is not None:
            self._value, self._draw = self._draw(), None
        return cast(T, self._value)

    @property
    def drawn(self) -> bool:
        """Whether :meth:`get` has drawn the value."""
        return self._draw is None


def now(part: T | Later[T]) -> T:
    """``part``'s value: a :class:`Later` is drawn (once), anything else is the value itself."""
    return part.get() if isinstance(part, Later) else part
