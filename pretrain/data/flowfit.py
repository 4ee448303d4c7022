"""Fits the zero-pole model with Vizcaya-Gerhardt corrections to a print's measured flow.

A print's block orientation field (:func:`pretrain.data.stats.orientation_and_coherence`) is
matched by its singular points (a loop: one core and one delta; a whorl: two of each), their
positions and each one's piecewise-linear correction g_k, by least squares on the doubled angle,
weighted by coherence, with a light pull of each g_k towards a turned identity (the flow outside
the print does not constrain it). Right loops are mirrored to left ones first, so a table holds
left loops only (:class:`pretrain.data.fingerprint.flow.FlowTable`).

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

# A delta lies below the core (a whorl's: below its cores' midpoint) on its own side (Handbook
# of Fingerprint Recognition, sec. 3.5): fits that put one elsewhere, or implausibly near or
# far, are dropped.
DELTA_ANGLE = (15.0, 90.0)  # degrees below the horizontal, towards the delta's side
DELTA_DISTANCE = (60.0, 300.0)  # px at 500 dpi
PULL = 0.05  # weight of the pull towards the identity's shape, per sqrt(block) of the fit
MIN_COHERENCE = 0.2  # blocks fitted
SEGMENTS = len(ENDS) - 1
POSITION_SCALE = 30.0  # px: least squares' step scale for positions (0.3 rad for corrections)
GUESS_LOOP_DELTA = (80.0, 110.0)  # a loop's delta, when none is seen, starts here from its core
GUESS_WHORL_DELTA = (90.0, 100.0)  # a whorl's deltas start at (-+x, y) from its cores' midpoint
GUESS_WHORL_GAP = 24.0  # px: a whorl seen with one core starts with two, this far apart


class Fit(NamedTuple):
    """One fitted print, positions relative to its centre (a loop's core, a whorl's cores'
    midpoint). Corrections are minus the identity, gauge fixed: the cores' mean offset is 0 and
    each other one within (-pi, pi]. ``error_before`` is the mean squared doubled-angle residual
    of the identity corrections at the starting points, ``error_after`` the fit's."""

    fp_class: str
    cores: np.ndarray
    deltas: np.ndarray
    corrections: np.ndarray
    error_before: float
    error_after: float


class BlockFlow(NamedTuple):
    """A print's block flow and what it reads as (``BLOCK`` px blocks)."""

    mask: np.ndarray
    theta: np.ndarray
    coherence: np.ndarray
    label: str
    cores: list
    deltas: list


def _flow(gray: np.ndarray) -> BlockFlow:
    mask = foreground_mask(gray)
    theta, coherence = orientation_and_coherence(gray)
    theta = smooth_orientation(theta, 1.0)
    cores, deltas = singular_points(theta, mask, BLOCK)
    return BlockFlow(mask, theta, coherence, classify(cores, deltas, theta, BLOCK), cores, deltas)


def _start(label: str, cores: list, deltas: list) -> tuple[np.ndarray, np.ndarray]:
    """Starting cores and deltas ``(k, 2)`` of a left loop or a whorl."""
    if label == "left_loop":
        core = np.asarray(cores[0], float)
        delta = np.asarray(deltas[0], float) if deltas else core + np.array(GUESS_LOOP_DELTA)
        return core[None], delta[None]
    if len(cores) >= 2:
        pair = np.asarray(cores[:2], float)
    else:
        half = GUESS_WHORL_GAP / 2
        pair = np.asarray(cores[0], float) + np.array([[0.0, -half], [0.0, half]])
    pair = pair[np.argsort(pair[:, 1])]  # upper core first
    centre = pair.mean(axis=0)
    dx, dy = GUESS_WHORL_DELTA
    two = centre + np.array([[-dx, dy], [dx, dy]])
    for seen in deltas[:2]:
        two[0 if seen[0] < centre[0] else 1] = seen
    return pair, two


def fit_print(gray: np.ndarray) -> Fit | None:
    """The fit of ``gray`` (uint8, 500 dpi) if it reads as a loop with one core or a whorl with
    a core, else None (arches, tented arches and unreadable prints)."""
    flow = _flow(gray)
    label, cores = flow.label, flow.cores
    if label == "right_loop" and len(cores) == 1:
        return _fit(_flow(gray[:, ::-1]), "left_loop")
    if label == "left_loop" and len(cores) == 1:
        return _fit(flow, "left_loop")
    if label == "whorl" and cores:
        return _fit(flow, "whorl")
    return None


def _fit(flow: BlockFlow, expected: str) -> Fit | None:
    mask, theta, coherence, label, cores, deltas = flow
    if label != expected or not cores or (expected == "left_loop" and len(cores) != 1):
        return None  # mirroring moved a point across a block edge: skip rather than guess
    start_cores, start_deltas = _start(label, cores, deltas)
    n_points = len(start_cores) + len(start_deltas)
    use = mask & (coherence > MIN_COHERENCE)
    rows, cols = (np.indices(theta.shape) + 0.5) * BLOCK
    rows, cols = rows[use], cols[use]
    weight = np.sqrt(coherence[use])
    target = 2 * theta[use]
    positions = np.concatenate([start_cores, start_deltas])
    x0 = np.concatenate([positions.ravel(), np.tile(ENDS[:SEGMENTS], n_points)])
    pull = PULL * np.sqrt(use.sum())

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = x[: 2 * n_points].reshape(n_points, 2)
        g = x[2 * n_points :].reshape(n_points, SEGMENTS)
        return points, np.concatenate([g, g[:, :1] + 2 * np.pi], axis=1)

    def residuals(x: np.ndarray) -> np.ndarray:
        points, g = unpack(x)
        k = len(start_cores)
        model = 2 * orientation_field(SingularPoints(label, points[:k], points[k:], g), rows, cols)
        dev = g[:, :SEGMENTS] - ENDS[:SEGMENTS]
        shape = dev - dev.mean(axis=1, keepdims=True)
        level = dev.mean(axis=1)
        across = weight * (np.cos(model) - np.cos(target))
        along = weight * (np.sin(model) - np.sin(target))
        return np.concatenate([across, along, pull * shape.ravel(), [0.3 * pull * np.ptp(level)]])

    scale = np.concatenate([[POSITION_SCALE] * 2 * n_points, [0.3] * SEGMENTS * n_points])
    result = least_squares(residuals, x0, x_scale=scale, max_nfev=400)
    n = 2 * len(rows)
    before = float(np.mean(residuals(x0)[:n] ** 2))
    after = float(np.mean(result.fun[:n] ** 2))
    points, g = unpack(result.x)
    k = len(start_cores)
    dev = g - ENDS
    dev = dev - dev[:k].mean()
    dev = dev - 2 * np.pi * np.round(dev.mean(axis=1, keepdims=True) / (2 * np.pi))
    centre = points[:k].mean(axis=0)
    return Fit(label, points[:k] - centre, points[k:] - centre, dev, before, after)


def plausible(fit: Fit) -> bool:
    """Whether every fitted delta sits where one can (:data:`DELTA_ANGLE`,
    :data:`DELTA_DISTANCE`): a loop's on the right (it is a left loop), a whorl's first on the
    left and its second on the right."""
    sides = [1.0] if fit.fp_class == "left_loop" else [-1.0, 1.0]
    for (x, y), side in zip(fit.deltas, sides, strict=True):
        angle = np.degrees(np.arctan2(y, side * x))
        if not (
            DELTA_ANGLE[0] <= angle <= DELTA_ANGLE[1]
            and DELTA_DISTANCE[0] <= np.hypot(x, y) <= DELTA_DISTANCE[1]
        ):
            return False
    return True


def fit_table(images: Iterable[np.ndarray]) -> tuple[FlowTable, list[Fit]]:
    """The table of every loop and whorl among ``images`` whose fit is :func:`plausible`, and
    those fits."""
    fits = [f for f in (fit_print(np.asarray(g)) for g in images) if f is not None and plausible(f)]
    loops = [f for f in fits if f.fp_class == "left_loop"]
    whorls = [f for f in fits if f.fp_class == "whorl"]
    if not loops or not whorls:
        raise ValueError(
            f"the fit needs loops and whorls; {len(loops)} loop(s) and {len(whorls)} whorl(s) "
            "read with a plausible fit."
        )
    table = FlowTable(
        loop_core=np.stack([f.corrections[0] for f in loops]),
        loop_delta=np.stack([f.corrections[1] for f in loops]),
        loop_offset=np.stack([f.deltas[0] for f in loops]),
        whorl_cores=np.stack([f.cores for f in whorls]),
        whorl_deltas=np.stack([f.deltas for f in whorls]),
        whorl_corrections=np.stack([f.corrections for f in whorls]),
    )
    return table, fits


FLOW_STATS = ("steep_below_core", "delta_distance_px", "delta_angle_deg")


def closest_medians(
    target: dict[str, float], candidates: dict[str, dict[str, float]]
) -> tuple[str, dict[str, float]]:
    """The candidate whose :data:`FLOW_STATS` medians lie closest to ``target``'s (the smallest
    sum of relative gaps), and every candidate's gap."""
    if not candidates:
        raise ValueError("no candidates to choose from.")
    gaps = {
        name: float(sum(abs(found[k] - target[k]) / abs(target[k]) for k in FLOW_STATS))
        for name, found in candidates.items()
    }
    return min(gaps, key=gaps.__getitem__), gaps
