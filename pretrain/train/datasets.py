"""Datasets for pretraining, chosen by name; ``config.dataset_options`` go to the loader."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pretrain.config import ConfigError, TrainConfig
from pretrain.data import ArrayDataset, Later, load_mnist, now, split_off


class Splits:
    """Train / validation / test. ``val`` is None when no examples are held out.

    A loader may give any part as a :class:`pretrain.data.Later`: it is drawn when first read,
    once, so a reader of the training set alone (the OTA retraining) never draws the held-out
    people. One ``Later`` given for two parts (validation = test) is drawn once for both.
    """

    def __init__(
        self,
        train: ArrayDataset | Later[ArrayDataset],
        val: ArrayDataset | Later[ArrayDataset] | None,
        test: ArrayDataset | Later[ArrayDataset],
    ) -> None:
        self._train, self._val, self._test = train, val, test

    @property
    def train(self) -> ArrayDataset:
        return now(self._train)

    @property
    def val(self) -> ArrayDataset | None:
        return None if self._val is None else now(self._val)

    @property
    def test(self) -> ArrayDataset:
        return now(self._test)

    def __repr__(self) -> str:
        """Each part's size, or ``later`` for one not drawn yet (the repr draws nothing)."""

        def shown(part: ArrayDataset | Later[ArrayDataset] | None) -> str:
            if part is None:
                return "None"
            if isinstance(part, Later) and not part.drawn:
                return "later"
            return f"{len(now(part))} examples"

        parts = {"train": self._train, "val": self._val, "test": self._test}
        return f"Splits({', '.join(f'{n}={shown(p)}' for n, p in parts.items())})"


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
