"""Fits the zero-pole model with Vizcaya-Gerhardt corrections to a loop's measured flow.

A print's block orientation field (:func:`pretrain.data.stats.orientation_and_coherence`) is
matched by one core and one delta: their positions and each one's piecewise-linear correction
g_k, by least squares on the doubled angle, weighted by coherence, with a light pull of each g_k
towards a turned identity (the flow outside the print does not constrain it). Right loops are
mirrored to left ones first, so a table holds left loops only
(:class:`pretrain.data.fingerprint.flow.FlowTable`).

Reference: Vizcaya, Gerhardt, "A nonlinear orientation model for global description of
fingerprints", Pattern Recognition 29(7), 1996.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from scipy.optimize import least_squares

from pretrain.data.fingerprint.flow import ENDS, FlowTable
from pretrain.data.fingerprint.orientation import SingularPoints, orientation_field
from pretrain.data.stats import BLOCK, foreground_mask, orientation_and_coherence
from pretrain.data.stats_singular import classify, singular_points, smooth_orientation

# A loop's delta lies below its core on the side away from the opening (Handbook of Fingerprint
# Recognition, sec. 3.5): fits that put it elsewhere, or implausibly near or far, are dropped.
DELTA_ANGLE = (15.0, 90.0)  # degrees below the horizontal, towards the delta's side
DELTA_DISTANCE = (60.0, 300.0)  # px at 500 dpi
PULL = 0.05  # weight of the pull towards the identity's shape, per sqrt(block) of the fit
MIN_COHERENCE = 0.2  # blocks fitted
SEGMENTS = len(ENDS) - 1


class LoopFit(NamedTuple):
    """One fitted left loop: corrections minus identity (gauge fixed: the core's mean offset is
    0 and the delta's within (-pi, pi]), delta minus core (px), and the mean squared doubled-angle
    residual before (identity corrections at the detected points) and after the fit."""

    core: np.ndarray
    delta: np.ndarray
    offset: np.ndarray
    error_before: float
    error_after: float


def _unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    core, delta = x[0:2], x[2:4]
    gc = np.append(x[4 : 4 + SEGMENTS], x[4] + 2 * np.pi)
    gd = np.append(x[4 + SEGMENTS : 4 + 2 * SEGMENTS], x[4 + SEGMENTS] + 2 * np.pi)
    return core, delta, gc, gd


def fit_loop(gray: np.ndarray) -> LoopFit | None:
    """The fit of ``gray`` (uint8, 500 dpi) if it reads as a loop with one core, else None."""
    mask = foreground_mask(gray)
    theta, _ = orientation_and_coherence(gray)
    cores, deltas = singular_points(smooth_orientation(theta, 1.0), mask, BLOCK)
    label = classify(cores, deltas, smooth_orientation(theta, 1.0), BLOCK)
    if label not in ("left_loop", "right_loop") or len(cores) != 1:
        return None
    return _fit_left(gray[:, ::-1] if label == "right_loop" else gray)


def _fit_left(gray: np.ndarray) -> LoopFit | None:
    mask = foreground_mask(gray)
    theta, coherence = orientation_and_coherence(gray)
    theta = smooth_orientation(theta, 1.0)
    cores, deltas = singular_points(theta, mask, BLOCK)
    if len(cores) != 1 or classify(cores, deltas, theta, BLOCK) != "left_loop":
        return None  # mirroring moved a point across a block edge: skip rather than guess
    use = mask & (coherence > MIN_COHERENCE)
    rows, cols = (np.indices(theta.shape) + 0.5) * BLOCK
    rows, cols = rows[use], cols[use]
    weight = np.sqrt(coherence[use])
    target = 2 * theta[use]
    core = np.asarray(cores[0], float)
    delta = np.asarray(deltas[0], float) if deltas else core + np.array([80.0, 110.0])
    x0 = np.concatenate([core, delta, ENDS[:SEGMENTS], ENDS[:SEGMENTS]])
    pull = PULL * np.sqrt(use.sum())

    def residuals(x: np.ndarray) -> np.ndarray:
        c, d, gc, gd = _unpack(x)
        points = SingularPoints("left_loop", c[None], d[None], np.stack([gc, gd]))
        model = 2 * orientation_field(points, rows, cols)
        dc, dd = gc[:SEGMENTS] - ENDS[:SEGMENTS], gd[:SEGMENTS] - ENDS[:SEGMENTS]
        shape = np.concatenate([dc - dc.mean(), dd - dd.mean(), [0.3 * (dc.mean() - dd.mean())]])
        across = weight * (np.cos(model) - np.cos(target))
        along = weight * (np.sin(model) - np.sin(target))
        return np.concatenate([across, along, pull * shape])

    scale = np.concatenate([[30.0] * 4, [0.3] * (2 * SEGMENTS)])
    result = least_squares(residuals, x0, x_scale=scale, max_nfev=400)
    n = 2 * len(rows)
    before = float(np.mean(residuals(x0)[:n] ** 2))
    after = float(np.mean(result.fun[:n] ** 2))
    c, d, gc, gd = _unpack(result.x)
    shift = np.mean(gc - ENDS)
    gc, gd = gc - shift, gd - shift
    gd = gd - 2 * np.pi * np.round(np.mean(gd - ENDS) / (2 * np.pi))
    return LoopFit(gc - ENDS, gd - ENDS, d - c, before, after)


def plausible(fit: LoopFit) -> bool:
    """Whether the fitted delta sits where a loop's delta can (:data:`DELTA_ANGLE`,
    :data:`DELTA_DISTANCE`)."""
    x, y = fit.offset
    angle = np.degrees(np.arctan2(y, x))
    return bool(
        DELTA_ANGLE[0] <= angle <= DELTA_ANGLE[1]
        and DELTA_DISTANCE[0] <= np.hypot(x, y) <= DELTA_DISTANCE[1]
    )


def fit_table(images: Iterable[np.ndarray]) -> tuple[FlowTable, list[LoopFit]]:
    """The table of every loop among ``images`` whose fit is :func:`plausible`, and those fits."""
    fits = [f for f in (fit_loop(np.asarray(g)) for g in images) if f is not None and plausible(f)]
    if not fits:
        raise ValueError("no image read as a loop with one core and a plausible fit.")
    table = FlowTable(
        np.stack([f.core for f in fits]),
        np.stack([f.delta for f in fits]),
        np.stack([f.offset for f in fits]),
    )
    return table, fits
