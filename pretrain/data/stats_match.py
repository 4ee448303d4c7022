"""A simple print-to-print similarity: normalised correlation after a search over alignments.

Not a matcher: a yardstick to check that impressions of one synthetic finger resemble each other
more than prints of two fingers do.

References:
  Handbook of Fingerprint Recognition, 2nd ed., 2009, sec. 4.2 (correlation-based matching).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from devices.preprocess import FINGERPRINT_SPEC, PreprocessSpec, preprocess_image


def ridge_band(image: np.ndarray, spec: PreprocessSpec = FINGERPRINT_SPEC) -> np.ndarray:
    """The preprocessed print band-passed around the ridge frequency (difference of Gaussians)."""
    x = preprocess_image(image, spec)[..., 0].astype(np.float64)
    band = ndimage.gaussian_filter(x, 0.8) - ndimage.gaussian_filter(x, 3.0)
    return band


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
    computed by FFT and normalised by the energy of both images inside the overlap.

    Returns:
      The best correlation, in [-1, 1].
    """
    fa = ridge_band(a)
    fb0 = ridge_band(b)
    h, w = fa.shape
    shape = (2 * h, 2 * w)
    ones = np.ones((h, w))
    spec_a = np.fft.rfft2(fa, shape)
    spec_a2 = np.fft.rfft2(fa**2, shape)
    spec_1 = np.fft.rfft2(ones, shape)
    best = -1.0
    for angle in angles:
        fb = ndimage.rotate(fb0, angle, reshape=False, order=1, mode="constant")
        valid = ndimage.rotate(ones, angle, reshape=False, order=1, mode="constant") > 0.5
        fb = fb * valid
        spec_b = np.fft.rfft2(fb[::-1, ::-1], shape)
        spec_v = np.fft.rfft2(valid[::-1, ::-1].astype(np.float64), shape)
        spec_b2 = np.fft.rfft2((fb**2)[::-1, ::-1], shape)
        cross = np.fft.irfft2(spec_a * spec_b, shape)
        energy_a = np.fft.irfft2(spec_a2 * spec_v, shape)  # a's energy under b's support
        energy_b = np.fft.irfft2(spec_1 * spec_b2, shape)  # b's energy under a's support
        ncc = cross / np.sqrt(np.maximum(energy_a * energy_b, 1e-9))
        # Full correlation index (h - 1, w - 1) is zero shift; keep shifts within max_shift and
        # overlaps of at least half the image, where the normalisation is meaningful.
        overlap = np.fft.irfft2(spec_1 * spec_v, shape)
        rows = np.arange(shape[0])[:, None] - (h - 1)
        cols = np.arange(shape[1])[None, :] - (w - 1)
        keep = (np.abs(rows) <= max_shift) & (np.abs(cols) <= max_shift) & (overlap > 0.5 * h * w)
        best = max(best, float(ncc[keep].max()))
    return best
