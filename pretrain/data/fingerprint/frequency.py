"""The ridge-frequency (period) map of a master print.

References:
  Cappelli, Maio, Maltoni, "Synthetic fingerprint-database generation", ICPR 2002: the density
  is lower above the northernmost core and below the southernmost delta, with smooth random
  variation elsewhere.
  Handbook of Fingerprint Recognition, 2nd ed., 2009, sec. 3.6 (periods 5-15 px at 500 dpi).
"""

from __future__ import annotations

import numpy as np

from pretrain.data.fingerprint.orientation import SingularPoints

# Mean ridge period of a master, px at 500 dpi. Measured medians of the five FVC sensor sets
# span 8.5-12.0 px (notebooks/results/data.json); most lie at 8.5-10.1.
PERIOD_RANGE = (8.2, 10.8)


def _cosine_knots(n_out: int, n_knots: int) -> tuple[np.ndarray, np.ndarray]:
    """Left knot index and C1-smooth (raised-cosine) weight of the right knot per sample."""
    pos = np.linspace(0, n_knots - 1, n_out)
    lo = np.minimum(np.floor(pos).astype(np.int64), n_knots - 2)
    weight = 0.5 - 0.5 * np.cos(np.pi * (pos - lo))
    return lo, weight.astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-std smooth random field: a random ``(cells + 1)^2`` knot grid interpolated.

    Separable gathers and elementwise blends (no BLAS, so no thread contention): a 256x256 field
    costs well under 1 ms.
    """
    knots = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
    lo, w = _cosine_knots(shape[0], cells + 1)
    rows = knots[lo] * (1 - w)[:, None] + knots[lo + 1] * w[:, None]
    lo, w = _cosine_knots(shape[1], cells + 1)
    field = rows[:, lo] * (1 - w)[None, :] + rows[:, lo + 1] * w[None, :]
    return (field - field.mean()) / (field.std() + 1e-6)


def period_map(
    rng: np.random.Generator,
    points: SingularPoints,
    rows: np.ndarray,
    cols: np.ndarray,
    period_range: tuple[float, float] = PERIOD_RANGE,
) -> np.ndarray:
    """Local ridge period (px at 500 dpi) at pixel coordinates laid out on a regular grid; the
    master's mean period is drawn uniformly from ``period_range``."""
    base = rng.uniform(*period_range)
    period = base * (1 + 0.05 * smooth_noise(rng, rows.shape, 4))
    if len(points.cores):
        top = points.cores[:, 1].min()
        period *= 1 + 0.08 / (1 + np.exp((rows - (top - 30)) / 15))  # wider above the core
    if len(points.deltas):
        bottom = points.deltas[:, 1].max()
        period *= 1 + 0.06 / (1 + np.exp(-(rows - (bottom + 30)) / 15))  # and below the delta
    return np.clip(period, 6.0, 14.0)
