"""Orientation fields from singular points: the zero-pole model with a piecewise-linear correction.

Angles are ridge directions in image axes (x right, y down), radians in [0, pi).

References:
  Sherlock, Monro, "A model for interpreting fingerprint topology", Pattern Recognition 26(7),
  1993 (zero-pole model).
  Vizcaya, Gerhardt, "A nonlinear orientation model for global description of fingerprints",
  Pattern Recognition 29(7), 1996 (piecewise-linear correction g_k of each singularity).
  Cappelli, Maio, Maltoni, "Synthetic fingerprint-database generation", ICPR 2002.
  Wilson, Candela, Watson, "Neural network fingerprint classification", J. Artificial Neural
  Networks 1(2), 1994 (class frequencies, as quoted in the Handbook of Fingerprint Recognition).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pretrain.data.fingerprint.silhouette import Silhouette

CLASSES = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")
# Natural frequencies (Wilson, Candela, Watson 1994): 3.7%, 2.9%, 33.8%, 31.7%, 27.9%.
CLASS_FREQUENCIES = (0.037, 0.029, 0.338, 0.317, 0.279)
CORRECTION_SEGMENTS = 8  # pieces of each Vizcaya-Gerhardt correction function
CORRECTION_STD = 0.12  # radians; below half a segment, so every g_k stays increasing


class SingularPoints(NamedTuple):
    """A master's class, singular points and orientation corrections.

    Attributes:
      fp_class: one of :data:`CLASSES`.
      cores: ``(n, 2)`` float ``(x, y)`` pixel positions.
      deltas: ``(m, 2)`` float ``(x, y)`` pixel positions.
      corrections: ``(n + m, CORRECTION_SEGMENTS + 1)`` values of g_k at the segment ends
        (cores first), or for an arch ``(1, 3)``: bump height, bump width and the column offset
        of its peak, in pixels.
    """

    fp_class: str
    cores: np.ndarray
    deltas: np.ndarray
    corrections: np.ndarray


def sample_class(rng: np.random.Generator) -> str:
    """Draws a class with the natural frequencies :data:`CLASS_FREQUENCIES`."""
    return CLASSES[int(rng.choice(len(CLASSES), p=np.asarray(CLASS_FREQUENCIES)))]


def sample_singular_points(
    rng: np.random.Generator, fp_class: str, sil: Silhouette
) -> SingularPoints:
    """Places cores and deltas for ``fp_class`` relative to the silhouette (pixels).

    Positions follow typical prints: the core a little above the middle of the print; a loop's
    delta 80-130 px below and 50-110 px to the side opposite to the opening; a tented arch's delta
    40-80 px right below its core; a whorl's two cores 10-40 px apart between two deltas.
    """
    if fp_class not in CLASSES:
        raise ValueError(f"unknown class {fp_class!r}; choose one of {', '.join(CLASSES)}.")
    top = sil.cy - sil.c / 2 - sil.b1
    height = sil.b1 + sil.c + sil.b2
    core = np.array([sil.cx + rng.normal(0, 12), top + height * rng.uniform(0.36, 0.5)])
    cores: list[np.ndarray] = []
    deltas: list[np.ndarray] = []
    if fp_class == "arch":
        corr = np.array([[rng.uniform(70, 140), rng.uniform(55, 85), rng.normal(0, 15)]])
        return SingularPoints(fp_class, np.zeros((0, 2)), np.zeros((0, 2)), corr)
    if fp_class == "tented_arch":
        cores = [core]
        deltas = [core + np.array([rng.normal(0, 6), rng.uniform(40, 80)])]
    elif fp_class in ("left_loop", "right_loop"):
        side = 1.0 if fp_class == "left_loop" else -1.0  # a left loop's delta is on the right
        cores = [core]
        deltas = [core + np.array([side * rng.uniform(50, 110), rng.uniform(80, 130)])]
    else:
        gap, tilt = rng.uniform(10, 40), rng.uniform(-0.6, 0.6) + np.pi / 2
        offset = 0.5 * gap * np.array([np.cos(tilt), -np.sin(tilt)])
        cores = [core - offset, core + offset]
        drop = rng.uniform(80, 120, size=2)
        deltas = [
            core + np.array([-rng.uniform(70, 110), drop[0]]),
            core + np.array([rng.uniform(70, 110), drop[1]]),
        ]
    n = len(cores) + len(deltas)
    ends = np.linspace(-np.pi, np.pi, CORRECTION_SEGMENTS + 1)
    noise = np.clip(rng.normal(0, CORRECTION_STD, (n, CORRECTION_SEGMENTS + 1)), -0.3, 0.3)
    noise[:, -1] = noise[:, 0]  # g(pi) - g(-pi) = 2 pi keeps the field continuous
    return SingularPoints(fp_class, np.array(cores), np.array(deltas), ends[None, :] + noise)


def _corrected(alpha: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The piecewise-linear g_k(alpha) through ``values`` at equally spaced ends on [-pi, pi]."""
    ends = np.linspace(-np.pi, np.pi, values.shape[0])
    return np.interp(alpha, ends, values)


def orientation_field(points: SingularPoints, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Ridge orientation at pixel coordinates (arrays of equal shape), radians in [0, pi).

    Loops, tented arches and whorls: theta = 1/2 [sum_cores g_c(arg(z - c)) - sum_deltas
    g_d(arg(z - d))] in y-up coordinates (Sherlock-Monro with the Vizcaya-Gerhardt correction).
    Arches have no singular point: ridges follow Gaussian bumps y = y0 - A exp(-x^2 / 2s^2) whose
    height A fades towards the bottom of the print.
    """
    if points.fp_class == "arch":
        height, width, shift = points.corrections[0]
        x = cols - cols.mean() - shift
        fade = np.clip((rows.max() - rows) / (rows.max() - rows.min() + 1e-9), 0, 1) ** 1.5
        # Ridge y = y0 - A(y0) exp(-x^2 / 2s^2): dy/dx in image axes (y down).
        slope = height * fade * x / width**2 * np.exp(-(x**2) / (2 * width**2))
        return np.mod(np.arctan(slope), np.pi)
    theta = np.zeros(rows.shape)
    sources = [(c, +1.0) for c in points.cores] + [(d, -1.0) for d in points.deltas]
    for (pos, sign), values in zip(sources, points.corrections, strict=True):
        alpha = np.arctan2(-(rows - pos[1]), cols - pos[0])  # y up
        theta += 0.5 * sign * _corrected(alpha, values)
    return np.mod(-theta, np.pi)  # back to y down
