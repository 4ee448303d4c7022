"""Ridge growth by iterative space-variant Gabor filtering from random seeds (SFinGe step 3).

An image holding a few random seeds is filtered again and again; at each pixel the filter is a
Gabor filter tuned to the local orientation and ridge frequency, and a saturating non-linearity
keeps the values in [-1, 1]. Ridge fragments grow from every seed along the orientation field
until they fill the canvas; where fronts from different seeds meet out of phase, bifurcations
and ridge endings form on their own, as the minutiae of SFinGe do.

Vectorised form: the filters are a bank over ``ORIENTATIONS`` orientations x ``PERIODS``
periods, applied in the Fourier domain (one inverse FFT per filter in use per iteration); each
cell blends the responses of its two nearest orientations and two nearest periods linearly. The
growth runs on a grid of half the 500 dpi resolution (ridge period 4-5.5 cells, well above the
Nyquist limit of 2), and the band-limited result is interpolated back to 500 dpi.

References:
  Cappelli, Maio, Maltoni, "Synthetic fingerprint-database generation", ICPR 2002.
  Cappelli, "Synthetic fingerprint generation", in Handbook of Fingerprint Recognition, 2nd ed.,
  Springer 2009, ch. 6.
  Daugman, "Uncertainty relation for resolution in space, spatial frequency, and orientation
  optimized by two-dimensional visual cortical filters", JOSA A 2(7), 1985 (Gabor filters).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

ORIENTATIONS = 12
# Bank periods (cells), geometric: neighbouring filters overlap well within their bandwidth.
PERIODS = tuple(float(p) for p in 2.8 * 1.15 ** np.arange(9))
SIGMA_ACROSS = 0.45  # Gaussian envelope across the ridges, in periods
SIGMA_ALONG = 0.65  # and along them: longer, so ridges grow smoothly along the flow
GAIN = 4.0  # > 1 so that faint seeds grow until the non-linearity saturates them


@functools.lru_cache(maxsize=4)
def gabor_bank(shape: tuple[int, int]) -> np.ndarray:
    """Fourier transfer functions ``(ORIENTATIONS, len(PERIODS), h, w // 2 + 1)`` of even Gabors.

    Orientation ``k`` is ``k * pi / ORIENTATIONS`` (ridge direction, image axes); the filters have
    zero DC gain and unit gain at their tuned frequency. Cached per grid shape (read-only).
    """
    v = scipy.fft.fftfreq(shape[0])[:, None]
    u = scipy.fft.rfftfreq(shape[1])[None, :]
    out = np.empty((ORIENTATIONS, len(PERIODS), shape[0], u.shape[1]), np.float32)
    for k in range(ORIENTATIONS):
        theta = k * np.pi / ORIENTATIONS
        # Frequency coordinates across (n) and along (t) the ridges.
        fn = -u * np.sin(theta) + v * np.cos(theta)
        ft = u * np.cos(theta) + v * np.sin(theta)
        for m, period in enumerate(PERIODS):
            f = 1.0 / period
            sa, st = SIGMA_ACROSS * period, SIGMA_ALONG * period
            along = np.exp(-2 * np.pi**2 * (st * ft) ** 2)
            lobes = np.exp(-2 * np.pi**2 * (sa * (fn - f)) ** 2) + np.exp(
                -2 * np.pi**2 * (sa * (fn + f)) ** 2
            )
            # Remove the DC response with the envelope's own shape, so flat areas stay flat.
            dc = 2 * np.exp(-2 * np.pi**2 * (sa * f) ** 2) * np.exp(-2 * np.pi**2 * (sa * fn) ** 2)
            out[k, m] = along * (lobes - dc)
    out.setflags(write=False)
    return out


def _blend(theta: np.ndarray, period: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell bank indices ``(4, h, w)`` (flat ``k * len(PERIODS) + m``) and blend weights."""
    pos = np.mod(theta, np.pi) / (np.pi / ORIENTATIONS)
    k0 = np.floor(pos).astype(np.int64) % ORIENTATIONS
    k1 = (k0 + 1) % ORIENTATIONS
    wk = pos - np.floor(pos)
    ratio = np.log(PERIODS[1] / PERIODS[0])
    mpos = np.clip(np.log(period / PERIODS[0]) / ratio, 0, len(PERIODS) - 1 - 1e-6)
    m0 = np.floor(mpos).astype(np.int64)
    wm = mpos - m0
    n = len(PERIODS)
    index = np.stack([k0 * n + m0, k0 * n + m0 + 1, k1 * n + m0, k1 * n + m0 + 1])
    weight = np.stack([(1 - wk) * (1 - wm), (1 - wk) * wm, wk * (1 - wm), wk * wm])
    return index, weight.astype(np.float32)


def grow_ridges(
    theta: np.ndarray,
    period: np.ndarray,
    seeds: np.ndarray,
    *,
    iterations: int,
) -> np.ndarray:
    """Grows a ridge pattern on the grid of ``theta``.

    Args:
      theta: ridge orientation per cell (radians, image axes).
      period: ridge period per cell, in cells (within the bank's range, 2.8-8.6).
      seeds: the initial image: zeros except a few seed values.
      iterations: filtering iterations (each extends the pattern by about one period).

    Returns:
      float32 band-limited field of the grid's shape, the last filter response before
      saturation: positive on ridges, negative in valleys, about +-1 where grown.
    """
    shape = theta.shape
    bank = gabor_bank(shape).reshape(ORIENTATIONS * len(PERIODS), shape[0], -1)
    index, weight = _blend(theta, period)
    used = np.unique(index[weight > 0]) if (weight > 0).any() else np.zeros(0, np.int64)
    # Responses only for the filters some cell uses; ``slot`` maps bank index -> response row.
    slot = np.zeros(bank.shape[0], np.int64)
    slot[used] = np.arange(len(used))
    cells = theta.size
    flat_index = (slot[index] * cells + np.arange(cells).reshape(shape)).reshape(4, -1)
    flat_weight = weight.reshape(4, -1)
    responses = np.empty((len(used), *shape), np.float32)
    image = seeds.astype(np.float32)
    out = np.zeros(cells, np.float32)
    for _ in range(iterations):
        spectrum = scipy.fft.rfft2(image)
        for row, b in enumerate(used):
            responses[row] = scipy.fft.irfft2(spectrum * bank[b], s=shape)
        values = np.take(responses.ravel(), flat_index)
        out = GAIN * (values * flat_weight).sum(axis=0)
        image = np.tanh(out).reshape(shape)
    return out.reshape(shape)
