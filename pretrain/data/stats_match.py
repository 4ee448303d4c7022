"""Print-to-print alignment: normalised correlation after a search over rotations and shifts.

Not a matcher: a yardstick to check that impressions of one synthetic finger resemble each other
more than prints of two fingers do (:func:`aligned_correlation`), and the measuring tool of the
genuine-pair statistics (:mod:`pretrain.data.stats_pairs`: how far apart two impressions of one
finger lie, before and after registration).

References:
  Handbook of Fingerprint Recognition, 2nd ed., 2009, sec. 4.2 (correlation-based matching).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from devices.preprocess import FINGERPRINT_SPEC, PreprocessSpec, preprocess_image


class Alignment(NamedTuple):
    """The best alignment of ``b`` onto ``a``.

    Attributes:
      score: normalised cross-correlation inside the overlap, in [-1, 1] (-1: no alignment had
        the overlap required).
      degrees: the rotation of ``b`` (about its centre).
      dx: column shift of ``b``'s content relative to ``a``'s, in the arrays' pixels.
      dy: row shift, likewise.
      overlap: pixels where both supports meet at that alignment.
    """

    score: float
    degrees: float
    dx: int
    dy: int
    overlap: float


def ridge_band(image: np.ndarray, spec: PreprocessSpec = FINGERPRINT_SPEC) -> np.ndarray:
    """The preprocessed print band-passed around the ridge frequency (difference of Gaussians)."""
    x = preprocess_image(image, spec)[..., 0].astype(np.float64)
    band = ndimage.gaussian_filter(x, 0.8) - ndimage.gaussian_filter(x, 3.0)
    return band


def best_alignment(
    fa: np.ndarray,
    fb: np.ndarray,
    *,
    angles: Sequence[float],
    max_shift: int,
    min_overlap: float,
    mask_a: np.ndarray | None = None,
    mask_b: np.ndarray | None = None,
) -> Alignment:
    """The rotation and shift of ``fb`` that best correlates with ``fa`` (same shape, float).

    For each angle, ``fb`` and its support (``mask_b``, default: the whole array) are rotated
    about the centre; the correlation at every shift up to ``max_shift`` pixels is computed by
    FFT and normalised by the energy of both arrays inside the overlap of their supports. Shifts
    whose overlap is ``min_overlap`` pixels or less are not considered (there the normalisation
    is not meaningful).
    """
    if fa.shape != fb.shape:
        raise ValueError(f"arrays differ in shape: {fa.shape} vs {fb.shape}.")
    h, w = fa.shape
    shape = (2 * h, 2 * w)
    ones = np.ones((h, w))
    support_a = ones if mask_a is None else mask_a.astype(np.float64)
    support_b = ones if mask_b is None else mask_b.astype(np.float64)
    fa = fa * support_a
    spec_a = np.fft.rfft2(fa, shape)
    spec_a2 = np.fft.rfft2(fa**2, shape)
    spec_1 = np.fft.rfft2(support_a, shape)
    rows = np.arange(shape[0])[:, None] - (h - 1)  # full correlation index (h-1, w-1): no shift
    cols = np.arange(shape[1])[None, :] - (w - 1)
    near = (np.abs(rows) <= max_shift) & (np.abs(cols) <= max_shift)
    best = Alignment(-1.0, 0.0, 0, 0, 0.0)
    for angle in angles:
        rotated = ndimage.rotate(fb, angle, reshape=False, order=1, mode="constant")
        valid = ndimage.rotate(support_b, angle, reshape=False, order=1, mode="constant") > 0.5
        rotated = rotated * valid
        spec_b = np.fft.rfft2(rotated[::-1, ::-1], shape)
        spec_v = np.fft.rfft2(valid[::-1, ::-1].astype(np.float64), shape)
        spec_b2 = np.fft.rfft2((rotated**2)[::-1, ::-1], shape)
        cross = np.fft.irfft2(spec_a * spec_b, shape)
        energy_a = np.fft.irfft2(spec_a2 * spec_v, shape)  # a's energy under b's support
        energy_b = np.fft.irfft2(spec_1 * spec_b2, shape)  # b's energy under a's support
        ncc = cross / np.sqrt(np.maximum(energy_a * energy_b, 1e-9))
        overlap = np.fft.irfft2(spec_1 * spec_v, shape)
        keep = near & (overlap > min_overlap)
        if not keep.any():
            continue
        flat = int(np.argmax(np.where(keep, ncc, -np.inf)))
        i, j = divmod(flat, shape[1])
        if ncc[i, j] > best.score:
            # Index (i, j) pairs a's pixel p with b's pixel p - (i - h + 1, j - w + 1): b's
            # content sits that far up and left of a's.
            best = Alignment(
                float(ncc[i, j]),
                float(angle),
                -int(cols[0, j]),
                -int(rows[i, 0]),
                float(overlap[i, j]),
            )
    return best


def aligned_correlation(
    a: np.ndarray,
    b: np.ndarray,
    *,
    angles: Sequence[float] = (-15, -10, -5, 0, 5, 10, 15),
    max_shift: int = 40,
) -> float:
    """Peak normalised cross-correlation of two prints over rotations and shifts.

    Both prints are preprocessed (fingerprint spec), band-passed, and ``b`` is rotated by each
    angle (degrees); for each, the correlation at every shift up to ``max_shift`` input pixels is
    computed by FFT and normalised by the energy of both images inside the overlap, which must
    cover at least half the image (:func:`best_alignment`).

    Returns:
      The best correlation, in [-1, 1].
    """
    fa = ridge_band(a)
    h, w = fa.shape
    return best_alignment(
        fa, ridge_band(b), angles=angles, max_shift=max_shift, min_overlap=0.5 * h * w
    ).score
