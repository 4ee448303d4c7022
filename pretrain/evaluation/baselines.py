"""Traditional baselines scored by the same protocol: HOG and LBP features, cosine matching.

References:
  Dalal, Triggs, "Histograms of oriented gradients for human detection", CVPR 2005.
  Ojala, Pietikainen, Maenpaa, "Multiresolution gray-scale and rotation invariant texture
  classification with local binary patterns", TPAMI 2002; Ahonen, Hadid, Pietikainen, "Face
  description with local binary patterns", TPAMI 2006 (regional LBP histograms for faces).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from skimage.feature import hog, local_binary_pattern


def _gray(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4:
        if x.shape[-1] != 1:
            raise ValueError(f"baselines take grayscale images, got {x.shape[-1]} channels.")
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"expected (n, h, w[, 1]) images, got shape {x.shape}.")
    return x


def hog_features(images: np.ndarray, *, cell: int = 8, orientations: int = 9) -> np.ndarray:
    """HOG descriptor of each image (L2-Hys block normalisation), ``(n, d)``."""
    options = {
        "orientations": orientations,
        "pixels_per_cell": (cell, cell),
        "cells_per_block": (2, 2),
        "block_norm": "L2-Hys",
        "feature_vector": True,
    }
    return np.stack([hog(im, **options) for im in _gray(images)])


def lbp_features(
    images: np.ndarray, *, grid: int = 4, points: int = 8, radius: float = 1.0
) -> np.ndarray:
    """Uniform-LBP histograms over a ``grid x grid`` partition, concatenated, ``(n, d)``."""
    x = _gray(images)
    bins = points + 2  # uniform patterns + one bin for the rest
    feats = []
    for im in x:
        scaled = np.round(255 * (im - im.min()) / max(np.ptp(im), 1e-12)).astype(np.uint8)
        codes = local_binary_pattern(scaled, points, radius, method="uniform")
        h, w = codes.shape
        cells = [
            codes[i * h // grid : (i + 1) * h // grid, j * w // grid : (j + 1) * w // grid]
            for i in range(grid)
            for j in range(grid)
        ]
        hist = [
            np.bincount(c.astype(np.int64).ravel(), minlength=bins)[:bins] / c.size for c in cells
        ]
        feats.append(np.concatenate(hist))
    return np.stack(feats)


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hog": hog_features,
    "lbp": lbp_features,
}
