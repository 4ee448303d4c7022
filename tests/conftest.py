"""Shared fixtures. Real data comes from $POCKETFIT_DATA; tests that need it skip, saying where."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pretrain.data import ArrayDataset


def _data_root() -> Path | None:
    value = os.environ.get("POCKETFIT_DATA")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real datasets folder, or a skip that says how to provide it."""
    root = _data_root()
    if root is None:
        pytest.skip(
            "real datasets not found: set POCKETFIT_DATA to the datasets folder "
            "(e.g. ../shared/datasets); `make test` sets it when that folder exists."
        )
    return root


@pytest.fixture(scope="session")
def mnist_dir(data_root: Path) -> Path:
    path = data_root / "mnist"
    if not path.is_dir():
        pytest.skip(f"MNIST not found: put the four idx files in {path}.")
    return path


def toy_dataset(n: int = 640, *, seed: int = 0, classes: int = 10) -> ArrayDataset:
    """A learnable stand-in for MNIST: each class is a noisy fixed 28x28 template.

    The templates are the same for every ``seed``; the seed draws the labels and the noise, so
    datasets with different seeds are train / validation / test splits of one task.
    """
    templates = np.random.default_rng(1234).random((classes, 28, 28, 1), dtype=np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.int32)
    noise = 0.3 * rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    return ArrayDataset(templates[labels] + noise, labels, f"toy-{seed}")


@pytest.fixture(scope="session")
def make_toy():
    """The :func:`toy_dataset` factory (tests import nothing from conftest directly)."""
    return toy_dataset
