"""Impressions of a master print: placement, skin distortion, skin condition, noise, background.

Each impression is the master seen through one acquisition: the finger placed with a random
translation and rotation; non-linear (plastic) skin distortion outside the region of firm contact;
ridge thickness from pressure and skin condition (dry skin: thin, broken ridges; wet or pressed:
thick, merged ones); partial contact; dry blotches, scratches, blur and noise; a sensor-like
background.

References:
  Cappelli, Maio, Maltoni, "Synthetic fingerprint-database generation", ICPR 2002 (impression
  pipeline: displacement, rotation, distortion, noising and rendering, background).
  Cappelli, Maio, Maltoni, "Modelling plastic distortion in fingerprint images", ICAPR 2001
  (close-contact region, transitional region with a brake function, external region).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from pretrain.data.fingerprint.creases import crease_map
from pretrain.data.fingerprint.frequency import smooth_noise
from pretrain.data.fingerprint.silhouette import Silhouette, silhouette_radius


class Placement(NamedTuple):
    """Where and how the finger touches the sensor (pixels, radians).

    Attributes:
      shift: ``(dx, dy)`` of the window centre in the master.
      rotation: finger rotation.
      contact_centre: ``(x, y)`` of the close-contact ellipse in the impression.
      contact_axes: semi-axes ``(a, b)`` of that ellipse.
      distortion_shift: ``(dx, dy)`` of the external region relative to the contact region.
      distortion_rotation: rotation of the external region.
      brake: width of the transitional region.
    """

    shift: tuple[float, float]
    rotation: float
    contact_centre: tuple[float, float]
    contact_axes: tuple[float, float]
    distortion_shift: tuple[float, float]
    distortion_rotation: float
    brake: float


SHIFT_SD = 16.0  # px: the window's displacement per axis, ~ N(0, SHIFT_SD) ...
SHIFT_MAX = 40.0  # px: ... clipped to +-SHIFT_MAX
PARTIAL_PROB = 0.3  # share of impressions with partial contact (one side of the finger lifted)
PARTIAL_REACH = (40.0, 120.0)  # px: the lifted side's edge lies this far from the window centre


def sample_placement(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    shift_sd: float = SHIFT_SD,
    shift_max: float = SHIFT_MAX,
) -> Placement:
    """Draws a placement for an impression of ``shape``: the window displaced by ~ N(0,
    ``shift_sd``) px per axis within ``shift_max``, rotation ~ N(0, 6 deg) within 15 deg."""
    h, w = shape
    return Placement(
        shift=tuple(np.clip(rng.normal(0, shift_sd, 2), -shift_max, shift_max)),
        rotation=float(np.radians(np.clip(rng.normal(0, 6), -15, 15))),
        contact_centre=(w / 2 + rng.normal(0, 15), h / 2 + rng.normal(0, 15)),
        contact_axes=(rng.uniform(45, 75), rng.uniform(55, 90)),
        distortion_shift=tuple(np.clip(rng.normal(0, 5, 2), -12, 12)),
        distortion_rotation=float(np.radians(rng.normal(0, 2.0))),
        brake=rng.uniform(40, 80),
    )


def master_coordinates(
    placement: Placement, shape: tuple[int, int], centre: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` in the master for every impression pixel (the backward warp).

    Points in the close-contact ellipse move rigidly with the finger; outside it the skin is
    displaced by a further rigid motion (the external region's), weighted by a brake function
    of the distance to the ellipse that goes from 0 to 1 across the transitional region.
    """
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ex, ey = placement.contact_centre
    a, b = placement.contact_axes
    dx, dy = x - ex, y - ey
    outside = np.maximum(np.hypot(dx / a, dy / b) - 1.0, 0.0) * (a + b) / 2
    brake = 1.0 - np.exp(-(outside**2) / (2 * placement.brake**2))
    cr, sr = np.cos(placement.distortion_rotation), np.sin(placement.distortion_rotation)
    tx, ty = placement.distortion_shift
    x = x + brake * (cr * dx - sr * dy + tx - dx)
    y = y + brake * (sr * dx + cr * dy + ty - dy)
    return rigid_to_master(placement, shape, centre, y, x)


def rigid_to_master(
    placement: Placement, shape: tuple[int, int], centre: tuple[float, float], row: Any, col: Any
) -> tuple[Any, Any]:
    """``(rows, cols)`` in the master of impression points ``(row, col)`` (scalars or arrays)
    under the placement's rigid motion alone (no skin distortion); points outside the
    impression map too."""
    h, w = shape
    c, s = np.cos(placement.rotation), np.sin(placement.rotation)
    u, v = col - w / 2, row - h / 2
    rows = centre[1] + placement.shift[1] + s * u + c * v
    cols = centre[0] + placement.shift[0] + c * u - s * v
    return rows, cols


def rigid_to_impression(
    placement: Placement, shape: tuple[int, int], centre: tuple[float, float], x: float, y: float
) -> tuple[float, float]:
    """``(row, col)`` in the impression of master point ``(x, y)``: :func:`rigid_to_master`'s
    inverse."""
    h, w = shape
    dx, dy = x - centre[0] - placement.shift[0], y - centre[1] - placement.shift[1]
    c, s = np.cos(placement.rotation), np.sin(placement.rotation)
    return float(h / 2 - s * dx + c * dy), float(w / 2 + c * dx + s * dy)


def _scratches(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A [0, 1] map of a few thin random line segments (1 on a scratch)."""
    out = np.zeros(shape, np.float32)
    count = rng.poisson(1.5)
    if count == 0:
        return out
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    for _ in range(count):
        x0, y0 = rng.uniform(0, shape[1]), rng.uniform(0, shape[0])
        angle, length = rng.uniform(0, np.pi), rng.uniform(30, 160)
        ux, uy = np.cos(angle), np.sin(angle)
        t = np.clip((x - x0) * ux + (y - y0) * uy, 0, length)
        dist = np.hypot(x - x0 - t * ux, y - y0 - t * uy)
        out = np.maximum(out, np.clip(rng.uniform(1.0, 3.0) - dist, 0, 1))
    return out


def render(
    ridges: np.ndarray,
    silhouette: Silhouette,
    centre: tuple[float, float],
    shape: tuple[int, int],
    *,
    rng: np.random.Generator,
    shift_sd: float = SHIFT_SD,
    shift_max: float = SHIFT_MAX,
    partial_prob: float = PARTIAL_PROB,
    partial_reach: tuple[float, float] = PARTIAL_REACH,
    creases: np.ndarray | None = None,
) -> np.ndarray:
    """One uint8 impression of a master.

    Args:
      ridges: the master's band-limited ridge field at 500 dpi (positive on ridges).
      silhouette: the master's silhouette.
      centre: ``(x, y)`` in the master that the impression window is centred on (before shift).
      shape: ``(h, w)`` of the impression.
      rng: draws everything about this acquisition.
      shift_sd: spread of the finger's placement per axis (px; :func:`sample_placement`).
      shift_max: largest placement offset per axis (px).
      partial_prob: probability that one side of the finger does not touch the sensor.
      partial_reach: ``(low, high)`` px: that side's edge lies a uniform distance in this range
        from the window centre, in a uniform direction.
      creases: the finger's skin creases in master pixels
        (:func:`~pretrain.data.fingerprint.creases.sample_creases`); they draw nothing from
        ``rng``, so an impression without them is the one of before they existed.

    Returns:
      uint8 ``shape``: dark ridges on a light background, like an optical sensor.
    """
    placement = sample_placement(rng, shape, shift_sd=shift_sd, shift_max=shift_max)
    rows, cols = master_coordinates(placement, shape, centre)
    field = ndimage.map_coordinates(ridges, [rows, cols], order=1, mode="constant", cval=0.0)

    # Contact: the silhouette shrinks at low pressure; partial contact cuts one side off.
    pressure = rng.uniform(0.78, 1.02)
    radius = silhouette_radius(silhouette, rows, cols) / pressure
    edge = 1.0 - radius + 0.06 * smooth_noise(rng, shape, 12)
    contact = 1.0 / (1.0 + np.exp(-np.clip(edge * 30.0, -30, 30)))
    if rng.random() < partial_prob:
        angle, reach = rng.uniform(0, 2 * np.pi), rng.uniform(*partial_reach)
        side = (cols - centre[0]) * np.cos(angle) + (rows - centre[1]) * np.sin(angle)
        contact *= 1.0 / (1.0 + np.exp(np.clip((side - reach) / 8.0, -30, 30)))

    # Skin condition: the ridge threshold sets the ridge/valley width ratio.
    condition = np.clip(rng.normal(0.0, 0.22), -0.45, 0.45)
    # Slow variation (pressure across the finger) plus a ragged, pore-scale part (ridge edges,
    # breaks in dry skin, bridges in wet skin).
    rough = rng.uniform(0.4, 0.65)
    threshold = (
        condition + 0.15 * smooth_noise(rng, shape, 6) + rough * smooth_noise(rng, shape, 96)
    )
    ink = 1.0 / (1.0 + np.exp(-np.clip(5.0 * (field - threshold), -30, 30)))
    dryness = max(condition, 0.0) + 0.15
    blotches = smooth_noise(rng, shape, 48) > 2.6 - 1.5 * dryness
    ink = np.where(blotches, ink * 0.25, ink)
    # Wet or oily patches, where valleys fill in and ridges merge into smudges.
    wet = smooth_noise(rng, shape, 10) > 1.9 + 2.5 * condition
    ink = np.where(wet, np.maximum(ink, rng.uniform(0.5, 0.9)), ink)
    ink *= 1.0 - _scratches(rng, shape)
    if creases is not None and len(creases):
        ink *= 1.0 - crease_map(creases, rows, cols, pressure)
    ink *= contact * np.clip(0.85 + 0.25 * smooth_noise(rng, shape, 3), 0.4, 1.0)

    background = rng.uniform(170, 245) + rng.uniform(3, 15) * smooth_noise(rng, shape, 2)
    valley = rng.uniform(0, 35) * contact  # skin in contact darkens the valleys a little
    ridge_level = rng.uniform(15, 110)
    image = background - valley - (background - valley - ridge_level) * ink
    grain = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 1.0)
    image += rng.uniform(55, 100) * grain * (0.3 + contact)  # skin texture and sensor grain
    image = ndimage.gaussian_filter(image.astype(np.float32), rng.uniform(0.5, 1.0))
    image += rng.uniform(8, 22) * rng.standard_normal(shape, dtype=np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
