"""Loop and whorl flows fitted to prints: the Vizcaya-Gerhardt corrections of their singular points.

The zero-pole model with corrections near the identity (:mod:`.orientation`) opens a loop
sideways, towards a delta placed close beside it, and draws whorls as round as the model is.
Fitted to SFinGe's own prints (FVC2000 DB4, whose generator fits these corrections to real
prints), the corrections are far from the identity and the deltas sit further below: loops open
downwards, their legs run steeply down, as on real fingers (``pretrain.data.stats``-style
figures in notebooks/results/fingerprint_ablation.md). A backbone that never saw such flows maps
them all to one place: with identity-like corrections, the committed backbone puts real prints
in a narrow cone (fingerprint_ablation.md, "The cone is the loops' flow").

``flow="sfinge"`` in :class:`~.synthetic.GeneratorConfig` draws each loop's and each whorl's
singular points around its own core (a whorl: around its cores' midpoint) and their corrections
from one fitted print of the table, at random, with the default draws' noise; a right loop takes
a fitted left loop's mirror image. Arches and tented arches are unchanged. ``flow="sfinge_blend"``
draws two fitted prints of the class and a weight w ~ U(0, 1), and takes (1 - w) of the one plus
w of the other (positions and corrections alike; a blend of increasing corrections is one): a
table of n prints gives a continuum of flows instead of n, so that a flow is an identity's own and
not shared with one in n identities. The table is written
by ``notebooks/bench/bench_flow_fit.py`` with :func:`pretrain.data.flowfit.fit_table`.

References:
  Vizcaya, Gerhardt, "A nonlinear orientation model for global description of fingerprints",
  Pattern Recognition 29(7), 1996.
  Cappelli, Maio, Maltoni, "Synthetic fingerprint-database generation", ICPR 2002.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pretrain.data.fingerprint.orientation import (
    CORRECTION_SEGMENTS,
    CORRECTION_STD,
    SingularPoints,
)

FLOWS = ("zero_pole", "sfinge", "sfinge_blend")
FITTED_CLASSES = ("left_loop", "right_loop", "whorl")
TABLE = Path(__file__).with_name("flow_sfinge.npz")
ENDS = np.linspace(-np.pi, np.pi, CORRECTION_SEGMENTS + 1)


class FlowTable(NamedTuple):
    """Fitted flows. Corrections are minus the identity (radians, at :data:`ENDS`); positions
    are ``(x, y)`` px at 500 dpi (y down).

    Attributes:
      loop_core, loop_delta: ``(n, len(ENDS))`` a left loop's core and delta corrections.
      loop_offset: ``(n, 2)`` its delta minus its core (x > 0: the delta on the right).
      whorl_cores, whorl_deltas: ``(m, 2, 2)`` a whorl's cores (upper first) and deltas (left
        first), minus the cores' midpoint.
      whorl_corrections: ``(m, 4, len(ENDS))`` cores' then deltas' corrections.
    """

    loop_core: np.ndarray
    loop_delta: np.ndarray
    loop_offset: np.ndarray
    whorl_cores: np.ndarray
    whorl_deltas: np.ndarray
    whorl_corrections: np.ndarray


@functools.lru_cache(maxsize=2)
def load_table(path: Path = TABLE) -> FlowTable:
    """The fitted table in ``path`` (read once; arrays are read-only)."""
    with np.load(path) as data:
        table = FlowTable(*(data[name] for name in FlowTable._fields))
    for array in table:
        array.setflags(write=False)
    loops = {len(table.loop_core), len(table.loop_delta), len(table.loop_offset)}
    whorls = {len(table.whorl_cores), len(table.whorl_deltas), len(table.whorl_corrections)}
    if len(loops) != 1 or len(whorls) != 1 or 0 in loops | whorls:
        raise ValueError(f"{path}: a class of the flow table is empty or its arrays differ.")
    return table


def periodic(values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The piecewise-linear g through ``values`` at :data:`ENDS`, extended by g(a + 2 pi) =
    g(a) + 2 pi to any angle."""
    alpha = np.asarray(alpha, float)
    turns = np.floor((alpha + np.pi) / (2 * np.pi))
    return np.interp(alpha - 2 * np.pi * turns, ENDS, values) + 2 * np.pi * turns


def mirrored(values: np.ndarray) -> np.ndarray:
    """The correction of the mirror image (x -> -x): g'(a) = -g(pi - a)."""
    return -periodic(values, np.pi - ENDS)


def _noise(rng: np.random.Generator, rows: int) -> np.ndarray:
    noise = np.clip(rng.normal(0, CORRECTION_STD, (rows, len(ENDS))), -0.3, 0.3)
    noise[:, -1] = noise[:, 0]  # g(pi) - g(-pi) = 2 pi keeps the field continuous
    return noise


def _drawn(rng: np.random.Generator, rows: int, blend: bool) -> tuple[np.ndarray, np.ndarray]:
    """Table rows and their weights: one row (weight 1), or two rows weighted 1 - w and w."""
    if not blend:
        return np.array([rng.integers(rows)]), np.ones(1)
    w = rng.random()
    return rng.integers(rows, size=2), np.array([1 - w, w])


def _mix(array: np.ndarray, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights, np.asarray(array, float)[rows], axes=1)


def fitted_flow(
    rng: np.random.Generator,
    points: SingularPoints,
    table: FlowTable,
    *,
    blend: bool = False,
    delta_scale: tuple[float, float] = (1.0, 1.0),
) -> SingularPoints:
    """``points`` (a loop or a whorl) with the singular points and corrections of one fitted
    print drawn from ``table`` (``blend``: a random blend of two), plus the default draws'
    noise, placed on its own core (a loop) or its cores' midpoint (a whorl); a loop's delta
    offset from its core is scaled by ``delta_scale`` ``(x, y)``."""
    if points.fp_class == "whorl":
        rows, weights = _drawn(rng, len(table.whorl_cores), blend)
        centre = points.cores.mean(axis=0)
        return points._replace(
            cores=centre + _mix(table.whorl_cores, rows, weights),
            deltas=centre + _mix(table.whorl_deltas, rows, weights),
            corrections=ENDS + _mix(table.whorl_corrections, rows, weights) + _noise(rng, 4),
        )
    if points.fp_class not in ("left_loop", "right_loop"):
        raise ValueError(f"fitted flows are for loops and whorls, not {points.fp_class!r}.")
    rows, weights = _drawn(rng, len(table.loop_core), blend)
    noise = _noise(rng, 2)
    core = ENDS + _mix(table.loop_core, rows, weights) + noise[0]
    delta = ENDS + _mix(table.loop_delta, rows, weights) + noise[1]
    offset = _mix(table.loop_offset, rows, weights) * np.asarray(delta_scale, float)
    if points.fp_class == "right_loop":
        core, delta = mirrored(core), mirrored(delta)
        offset[0] = -offset[0]
    return points._replace(
        deltas=(points.cores[0] + offset)[None], corrections=np.stack([core, delta])
    )
