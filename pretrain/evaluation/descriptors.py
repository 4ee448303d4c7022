"""Hand-made image descriptors for the learning curves: dense SIFT and GIST (numpy), beside the
HOG and LBP of :mod:`pretrain.evaluation.baselines`.

Each descriptor maps ``(n, h, w[, 1])`` grayscale images to ``(n, d)`` float32 vectors,
deterministically (no randomness, nothing fitted), in batches so memory stays bounded.

References:
  Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 2004 (the SIFT
  descriptor: 4x4 cells x 8 orientations, Gaussian window, trilinear binning, clip at 0.2).
  Vedaldi, Fulkerson, "VLFeat", 2008 (dense SIFT: upright descriptors on a regular grid).
  Oliva, Torralba, "Modeling the shape of the scene: a holistic representation of the spatial
  envelope", IJCV 2001 (GIST: a Gabor bank of 4 scales x 8 orientations averaged over 4x4 blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.fft

from pretrain.evaluation.baselines import hog_features, lbp_features

# SIFT: 4x4 spatial cells x 8 orientation bins; Lowe's clip of the normalised vector.
SIFT_CELLS = 4
SIFT_BINS = 8
SIFT_CLIP = 0.2
# GIST: Oliva & Torralba's bank and grid.
GIST_SCALES = 4
GIST_ORIENTATIONS = 8
GIST_GRID = 4
# Images per batch: bounds the float32 temporaries to a few hundred MB on MNIST-sized inputs.
BATCH = 1000


class DescriptorError(ValueError):
    """Images a descriptor cannot take (wrong rank, channels, or too small for its grid)."""


def gray_images(images: np.ndarray) -> np.ndarray:
    """``(n, h, w)`` float32 from ``(n, h, w)`` or ``(n, h, w, 1)``; anything else is an error."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise DescriptorError(
            f"descriptors take (n, h, w) or (n, h, w, 1) grayscale images, got shape {x.shape}."
        )
    return x.astype(np.float32)


def _batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.concatenate([fn(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])


def sift_centres(size: int, cell: int, stride: int) -> np.ndarray:
    """Keypoint centres along one axis: every ``stride`` px, each window inside the image."""
    half = SIFT_CELLS * cell / 2
    if size < 2 * half:
        raise DescriptorError(
            f"a {SIFT_CELLS}x{SIFT_CELLS} SIFT window of {cell}-px cells needs >= {2 * half:.0f} "
            f"px, the image has {size}: use a smaller cell."
        )
    first, last = half - 0.5, size - half - 0.5
    count = int(np.floor((last - first) / stride)) + 1
    offset = (last - first - (count - 1) * stride) / 2  # centre the grid
    return first + offset + stride * np.arange(count)


def _sift_weights(size: int, centres: np.ndarray, cell: int) -> np.ndarray:
    """``(keypoints, 4, size)``: each cell's tent weight times the Gaussian window (sigma = half
    the window width), separable along one axis."""
    pixels = np.arange(size, dtype=np.float64)
    offsets = (np.arange(SIFT_CELLS) - (SIFT_CELLS - 1) / 2) * cell
    cell_centres = centres[:, None] + offsets[None, :]
    tent = np.maximum(0.0, 1.0 - np.abs(pixels[None, None, :] - cell_centres[..., None]) / cell)
    sigma = SIFT_CELLS * cell / 2
    window = np.exp(-((pixels[None, :] - centres[:, None]) ** 2) / (2 * sigma**2))
    return (tent * window[:, None, :]).astype(np.float32)


def _orientation_maps(x: np.ndarray) -> np.ndarray:
    """``(n, 8, h, w)``: gradient magnitude split linearly between the two nearest of 8 bins."""
    gy, gx = np.gradient(x, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), 2 * np.pi) / (2 * np.pi / SIFT_BINS)
    low = np.floor(angle)
    frac = (angle - low).astype(np.float32)
    low = low.astype(np.int64) % SIFT_BINS
    maps = np.zeros((x.shape[0], SIFT_BINS, *x.shape[1:]), np.float32)
    for b in range(SIFT_BINS):
        maps[:, b] = magnitude * ((low == b) * (1 - frac) + (low == (b - 1) % SIFT_BINS) * frac)
    return maps


def dense_sift_features(images: np.ndarray, *, cell: int = 4, stride: int = 6) -> np.ndarray:
    """Upright SIFT descriptors on a regular grid, concatenated: ``(n, keypoints * 128)``.

    Args:
      images: ``(n, h, w[, 1])`` grayscale images.
      cell: side of each of the 4x4 spatial cells, in pixels (the window is ``4 * cell``).
      stride: distance between keypoint centres, in pixels.
    """
    x = gray_images(images)
    _, h, w = x.shape
    wy = _sift_weights(h, sift_centres(h, cell, stride), cell)
    wx = _sift_weights(w, sift_centres(w, cell, stride), cell)

    def batch(chunk: np.ndarray) -> np.ndarray:
        maps = _orientation_maps(chunk)
        # (n, o, y, x) -> (n, ky, i, kx, j, o): cells x orientations per keypoint
        d = np.einsum("noyx,bjx->noybj", maps, wx, optimize=True)
        d = np.einsum("noybj,aiy->naibjo", d, wy, optimize=True)
        n, ky, _, kx, _, _ = d.shape
        d = d.transpose(0, 1, 3, 2, 4, 5).reshape(n, ky * kx, -1)
        d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
        d = np.minimum(d, SIFT_CLIP)
        d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
        return d.reshape(n, -1).astype(np.float32)

    return _batched(batch, x)


def gist_bank(shape: tuple[int, int]) -> np.ndarray:
    """``(scales * orientations, H, W)`` one-sided Gabor transfer functions on an FFT grid.

    Scale ``s`` is centred on ``0.25 / 2**s`` cycles per pixel with a one-octave bandwidth;
    orientation ``o`` on ``o * pi / 8`` with a Gaussian angular profile. One-sided filters give
    a complex response whose magnitude is the local energy of that band.
    """
    fy = scipy.fft.fftfreq(shape[0])[:, None]
    fx = scipy.fft.fftfreq(shape[1])[None, :]
    radius = np.hypot(fx, fy)
    theta = np.arctan2(fy, fx)
    bank = []
    for s in range(GIST_SCALES):
        centre = 0.25 / 2**s
        radial = np.exp(-((np.log(np.maximum(radius, 1e-9) / centre)) ** 2) / (2 * 0.35**2))
        for o in range(GIST_ORIENTATIONS):
            diff = np.angle(np.exp(1j * (theta - o * np.pi / GIST_ORIENTATIONS)))
            angular = np.exp(-(diff**2) / (2 * (np.pi / GIST_ORIENTATIONS) ** 2))
            bank.append(radial * angular)
    return np.stack(bank).astype(np.float32)


class _Grid(NamedTuple):
    rows: np.ndarray
    cols: np.ndarray


def _grid(h: int, w: int) -> _Grid:
    if min(h, w) < GIST_GRID:
        raise DescriptorError(f"GIST averages over a {GIST_GRID}x{GIST_GRID} grid; got {h}x{w}.")
    edges = np.arange(GIST_GRID + 1)
    return _Grid(edges * h // GIST_GRID, edges * w // GIST_GRID)


def gist_features(images: np.ndarray, *, pad: int = 4) -> np.ndarray:
    """GIST: Gabor energies of 4 scales x 8 orientations averaged over a 4x4 grid, ``(n, 512)``.

    Each image is standardised, reflect-padded by ``pad`` px against wrap-around at the borders,
    filtered in the frequency domain, cropped back, and its response magnitudes averaged per
    block. (The original prefilter's local contrast normalisation is replaced by the per-image
    standardisation.)
    """
    x = gray_images(images)
    _, h, w = x.shape
    grid = _grid(h, w)
    bank = gist_bank((h + 2 * pad, w + 2 * pad))

    def batch(chunk: np.ndarray) -> np.ndarray:
        z = chunk - chunk.mean(axis=(1, 2), keepdims=True)
        z = z / np.maximum(z.std(axis=(1, 2), keepdims=True), 1e-6)
        z = np.pad(z, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
        spectrum = scipy.fft.fft2(z, workers=-1)
        out = np.empty((len(chunk), len(bank), GIST_GRID, GIST_GRID), np.float32)
        for f, transfer in enumerate(bank):
            energy = np.abs(scipy.fft.ifft2(spectrum * transfer, workers=-1))
            energy = energy[:, pad : pad + h, pad : pad + w]
            for i in range(GIST_GRID):
                for j in range(GIST_GRID):
                    block = energy[
                        :, grid.rows[i] : grid.rows[i + 1], grid.cols[j] : grid.cols[j + 1]
                    ]
                    out[:, f, i, j] = block.mean(axis=(1, 2))
        return out.reshape(len(chunk), -1)

    return _batched(batch, x)


Descriptor = Callable[[np.ndarray], np.ndarray]


class DescriptorSpec(NamedTuple):
    """A descriptor by name with its options (they go into the cache key)."""

    name: str
    options: dict[str, int]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        fn = DESCRIPTORS[self.name]
        return np.asarray(
            _batched(lambda c: fn(c, **self.options), gray_images(images)), np.float32
        )


DESCRIPTORS: dict[str, Callable[..., np.ndarray]] = {
    "sift": dense_sift_features,
    "lbp": lbp_features,
    "hog": hog_features,
    "gist": gist_features,
}
