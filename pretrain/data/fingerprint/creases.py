"""Skin creases: white lines across the ridges that belong to the finger, not to one acquisition.

A crease is a fold of the skin where no ridge touches the sensor: a light line, a few pixels
wide, that cuts the ridges at any angle. Unlike a scratch on the sensor (drawn per impression in
:mod:`~pretrain.data.fingerprint.impressions`), it is a property of the finger: it sits at the
same place of the master in every impression, moves and bends with the skin, and shows more when
the finger is pressed lightly (the fold opens) than when pressed hard. A finger's creases tend to
run together, across the finger more often than along it: one main direction per finger, within
about 25 deg of the horizontal (the finger points up), each crease within about 20 deg of it.

Each crease is a slightly bent segment in master pixels: centre, direction, length, half-width,
bend (the offset at its ends, in px) and depth (how much ink it removes at its middle line).

References:
  Zhou, Chen, Wu, Wu, "Crease detection from fingerprint images and its applications in elderly
  people", Pattern Recognition 42(5), 2009 (creases as white lines across the ridges, common
  and more so with age).
"""

from __future__ import annotations

import numpy as np

from pretrain.data.fingerprint.silhouette import Silhouette

# Columns of a crease array: centre x, centre y, direction (rad), length, half-width, bend, depth.
FIELDS = ("x", "y", "angle", "length", "half_width", "bend", "depth")
LENGTH_PX = (40.0, 200.0)  # at finger scale 1
HALF_WIDTH_PX = (1.5, 4.5)
MAIN_RAD = np.radians(25.0)  # the finger's main crease direction around the horizontal
SPREAD_RAD = np.radians(20.0)  # each crease's direction around its finger's main one


def sample_creases(
    rng: np.random.Generator, silhouette: Silhouette, mean_count: float, scale: float = 1.0
) -> np.ndarray:
    """A finger's creases: float64 ``(k, 7)`` (:data:`FIELDS`), ``k ~ Poisson(mean_count)``,
    centres inside the silhouette's central 80%; lengths scale with the finger."""
    count = int(rng.poisson(mean_count)) if mean_count > 0 else 0
    if count == 0:
        return np.zeros((0, len(FIELDS)))
    main = rng.normal(0, MAIN_RAD)
    s = silhouette
    x = s.cx + rng.uniform(-0.8, 0.8, count) * np.where(rng.random(count) < 0.5, s.a1, s.a2)
    top, bottom = s.cy - s.c / 2 - 0.8 * s.b1, s.cy + s.c / 2 + 0.8 * s.b2
    y = rng.uniform(top, bottom, count)
    angle = main + rng.normal(0, SPREAD_RAD, count)
    length = scale * rng.uniform(*LENGTH_PX, count)
    half_width = rng.uniform(*HALF_WIDTH_PX, count)
    bend = rng.normal(0, 0.08, count) * length
    depth = rng.uniform(0.6, 1.0, count)
    return np.stack([x, y, angle, length, half_width, bend, depth], axis=1)


def crease_map(
    creases: np.ndarray, rows: np.ndarray, cols: np.ndarray, pressure: float
) -> np.ndarray:
    """float32 share of ink each pixel loses to the creases, in [0, 1].

    Args:
      creases: ``(k, 7)`` from :func:`sample_creases`.
      rows, cols: master coordinates of every impression pixel (the impression's backward warp),
        so a crease follows the finger's placement and skin distortion.
      pressure: the impression's pressure (about 0.78-1.02): a light touch opens the folds
        (widths x 1.3 at 0.78), a firm one closes them (x 0.8 at 1.02).
    """
    out = np.zeros(np.shape(rows), np.float32)
    opening = float(np.interp(pressure, [0.78, 1.02], [1.3, 0.8]))
    for x, y, angle, length, half_width, bend, depth in creases:
        ux, uy = np.cos(angle), np.sin(angle)
        dx, dy = cols - x, rows - y
        t = dx * ux + dy * uy  # along the crease, from its centre
        v = -dx * uy + dy * ux  # across it
        half = length / 2
        inside = np.abs(t) <= half
        # Parabolic bend: the middle line is offset by bend * (t / half)^2 across the crease.
        across = np.abs(v - bend * (np.clip(t, -half, half) / half) ** 2)
        ends = np.maximum(np.abs(t) - half, 0.0)
        dist = np.where(inside, across, np.hypot(across, ends))
        width = half_width * opening
        # Fades towards its ends (the fold flattens), a soft profile across.
        taper = np.clip(1.0 - (np.abs(t) / half) ** 4, 0.0, 1.0)
        line = depth * taper * np.clip(1.0 - (dist - width) / 1.5, 0.0, 1.0)
        np.maximum(out, line.astype(np.float32), out=out)
    return out
