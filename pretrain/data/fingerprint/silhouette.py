"""The fingerprint silhouette of SFinGe: a rectangle capped by four elliptical arcs.

References:
  Cappelli, Maio, Maltoni, "Synthetic fingerprint-database generation", ICPR 2002.
  Handbook of Fingerprint Recognition, 2nd ed., 2009, sec. 6.4 (fingerprint area).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Silhouette(NamedTuple):
    """Shape parameters in pixels at 500 dpi.

    Attributes:
      a1: half-width left of the centre line.
      a2: half-width right of the centre line.
      b1: height of the upper (fingertip) elliptical cap.
      b2: height of the lower elliptical cap.
      c: height of the straight central part.
      cx: column of the centre line in the master canvas.
      cy: row of the middle of the straight part.
    """

    a1: float
    a2: float
    b1: float
    b2: float
    c: float
    cx: float
    cy: float


def sample_silhouette(
    rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0
) -> Silhouette:
    """Draws a silhouette (12-14 mm wide, 12-18 mm tall, times ``scale``) centred in a canvas of
    ``shape``; the same draws of ``rng`` at every scale."""
    a1, a2 = scale * rng.uniform(112, 138, size=2)
    b1, b2 = scale * rng.uniform(105, 135), scale * rng.uniform(75, 105)
    c = scale * rng.uniform(60, 125)
    height = b1 + c + b2
    cy = (shape[0] - height) / 2 + b1 + c / 2
    cx = shape[1] / 2 + (a1 - a2) / 2
    return Silhouette(a1, a2, b1, b2, c, cx, cy)


def silhouette_radius(sil: Silhouette, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Normalised radius at pixel coordinates: < 1 inside the silhouette, 1 on its edge.

    Each quadrant is an ellipse of semi-axes (a1 or a2, b1 or b2) around the ends of the central
    straight part, which makes the value grow smoothly outwards; the impression model uses it as
    a distance for pressure fall-off.
    """
    u = cols - sil.cx
    v = rows - sil.cy
    a = np.where(u < 0, sil.a1, sil.a2)
    half = sil.c / 2
    vy = np.where(v < -half, (-v - half) / sil.b1, np.where(v > half, (v - half) / sil.b2, 0.0))
    return np.hypot(u / a, vy)
