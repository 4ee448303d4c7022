"""MNIST, read from the four original idx files under ``$POCKETFIT_DATA/mnist/``.

References:
  LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document recognition",
  Proc. IEEE 1998.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pretrain.data.dataset import ArrayDataset
from pretrain.data.errors import DataError, DataNotFoundError
from pretrain.data.idx import read_idx
from pretrain.data.paths import ENV_VAR, dataset_dir

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def _find(base: Path, stem: str) -> Path | None:
    for candidate in (base / stem, base / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 ``(n, 28, 28)`` -> float32 ``(n, 28, 28, 1)`` in [0, 1], as the device repeats it."""
    return (images.astype(np.float32) / 255.0)[..., None]


def load_raw(
    split: str, root: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(images uint8 (n, 28, 28), labels uint8 (n,))`` for ``"train"`` or ``"test"``.

    Raises:
      DataNotFoundError: a file is missing (the message lists every expected name).
      DataError: a file is corrupt, or images and labels disagree.
    """
    if split not in FILES:
        raise ValueError(f"unknown MNIST split {split!r}; choose one of {sorted(FILES)}.")
    expected = [f"{stem}[.gz]" for pair in FILES.values() for stem in pair]
    base = dataset_dir("mnist", expected, root)
    paths = [_find(base, stem) for stem in FILES[split]]
    if any(p is None for p in paths):
        missing = [stem for stem, p in zip(FILES[split], paths, strict=True) if p is None]
        raise DataNotFoundError(
            f"MNIST {split} files missing in {base} ({ENV_VAR}/mnist): {', '.join(missing)} "
            f"(raw or .gz). Expected all of: {', '.join(expected)}."
        )
    image_path, label_path = paths
    assert image_path is not None and label_path is not None
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE[:2] or images.dtype != np.uint8:
        raise DataError(
            f"{image_path}: expected uint8 images of shape (n, 28, 28), got {images.dtype} "
            f"{images.shape}."
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{label_path}: expected uint8 labels of shape (n,), got {labels.shape}.")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"MNIST {split}: {image_path.name} holds {images.shape[0]} images but "
            f"{label_path.name} holds {labels.shape[0]} labels."
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DataError(f"{label_path}: label {int(labels.max())} is not a digit 0-9.")
    return images, labels


def load_mnist(split: str, root: str | os.PathLike[str] | None = None) -> ArrayDataset:
    """Loads an MNIST split, preprocessed (see :func:`preprocess`), labels as int32."""
    images, labels = load_raw(split, root)
    return ArrayDataset(preprocess(images), labels.astype(np.int32), f"mnist-{split}")
