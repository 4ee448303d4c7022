"""Datasets for pretraining, chosen by name; ``config.dataset_options`` go to the loader."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

from pretrain.config import ConfigError, TrainConfig
from pretrain.data import ArrayDataset, load_mnist, split_off


class Splits(NamedTuple):
    """Train / validation / test. ``val`` is None when no examples are held out."""

    train: ArrayDataset
    val: ArrayDataset | None
    test: ArrayDataset


# A loader takes the dataset options as keywords and returns ``(train, test)``, or a
# :class:`Splits` when it holds out its own validation data (e.g. whole identities).
Loader = Callable[..., "tuple[ArrayDataset, ArrayDataset] | Splits"]

_LOADERS: dict[str, Loader] = {
    "mnist": lambda: (load_mnist("train"), load_mnist("test")),
}


def register_dataset(name: str, loader: Loader) -> None:
    """Adds ``loader(**dataset_options) -> (train, test) | Splits`` under ``name``."""
    if name in _LOADERS:
        raise ValueError(f"dataset {name!r} is already registered.")
    _LOADERS[name] = loader


def dataset_names() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_LOADERS)


def _call(name: str, options: dict[str, Any]) -> tuple[ArrayDataset, ArrayDataset] | Splits:
    loader = _LOADERS[name]
    params = inspect.signature(loader).parameters
    valid = [p for p, v in params.items() if v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"dataset {name!r} has no option(s) {', '.join(unknown)}; valid: "
            f"{', '.join(valid) or 'none'}."
        )
    return loader(**options)


def load_splits(config: TrainConfig) -> Splits:
    """Loads ``config.dataset``, keeps ``train_size`` examples, holds ``val_size`` out.

    A loader that holds out its own validation data returns it; ``val_size`` must then be 0.
    """
    if config.dataset not in _LOADERS:
        raise ConfigError(
            f"unknown dataset {config.dataset!r}; registered: {', '.join(sorted(_LOADERS))}."
        )
    loaded = _call(config.dataset, dict(config.dataset_options))
    if isinstance(loaded, Splits):
        if config.val_size:
            raise ConfigError(
                f"dataset {config.dataset!r} makes its own validation split (see its "
                f"dataset_options); set val_size=0 (got {config.val_size})."
            )
        if config.train_size:
            raise ConfigError(f"dataset {config.dataset!r} is sized by its dataset_options.")
        return loaded
    train, test = loaded
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
