"""Datasets for supervised pretraining, chosen by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from pretrain.config import ConfigError, TrainConfig
from pretrain.data import ArrayDataset, load_mnist, split_off


class Splits(NamedTuple):
    """Train / validation / test. ``val`` is None when no examples are held out."""

    train: ArrayDataset
    val: ArrayDataset | None
    test: ArrayDataset


_LOADERS: dict[str, Callable[[], tuple[ArrayDataset, ArrayDataset]]] = {
    "mnist": lambda: (load_mnist("train"), load_mnist("test")),
}


def register_dataset(name: str, loader: Callable[[], tuple[ArrayDataset, ArrayDataset]]) -> None:
    """Adds a ``loader() -> (train, test)`` under ``name``."""
    if name in _LOADERS:
        raise ValueError(f"dataset {name!r} is already registered.")
    _LOADERS[name] = loader


def load_splits(config: TrainConfig) -> Splits:
    """Loads ``config.dataset``, keeps ``train_size`` examples, holds ``val_size`` out."""
    if config.dataset not in _LOADERS:
        raise ConfigError(
            f"unknown dataset {config.dataset!r}; registered: {', '.join(sorted(_LOADERS))}."
        )
    train, test = _LOADERS[config.dataset]()
    if config.train_size:
        if config.train_size > len(train):
            raise ConfigError(f"train_size {config.train_size} > {len(train)} training examples.")
        train = train.take(slice(0, config.train_size))
    if config.val_size == 0:
        return Splits(train, None, test)
    if config.val_size >= len(train):
        raise ConfigError(
            f"val_size {config.val_size} leaves no training examples of {len(train)}."
        )
    rest, val = split_off(train, config.val_size, seed=config.seed)
    return Splits(rest, val, test)
