"""Loop flows fitted to prints: the Vizcaya-Gerhardt corrections of a loop's core and delta.

The zero-pole model with corrections near the identity (:mod:`.orientation`) opens a loop
sideways, towards a delta placed close beside it. Fitted to SFinGe's own prints (FVC2000 DB4,
whose generator fits these corrections to real prints), the core's correction is far from the
identity and the delta sits further below: the loop opens downwards and its legs run
steeply down, as on real fingers (``pretrain.data.stats``: loop axis, share of steep ridges
below the core). A backbone that never saw such loops maps them all to one place: with the
identity-like corrections, the committed backbone puts real prints in a narrow cone
(notebooks/results/fingerprint_ablation.md, "The cone is the loops' flow").

``flow="sfinge"`` in :class:`~.synthetic.GeneratorConfig` draws each loop's corrections and
delta offset from the fitted table (one fitted print at random, mirrored for right loops), with
the same small noise the default draws add; other classes are unchanged. The table is written
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

FLOWS = ("zero_pole", "sfinge")
TABLE = Path(__file__).with_name("flow_sfinge.npz")
ENDS = np.linspace(-np.pi, np.pi, CORRECTION_SEGMENTS + 1)


class FlowTable(NamedTuple):
    """Fitted left loops: ``core`` and ``delta`` ``(n, CORRECTION_SEGMENTS + 1)`` corrections
    minus the identity (radians, at :data:`ENDS`), ``offset`` ``(n, 2)`` delta minus core
    ``(x, y)`` px at 500 dpi (x > 0: the delta on the right, as a left loop has it)."""

    core: np.ndarray
    delta: np.ndarray
    offset: np.ndarray


@functools.lru_cache(maxsize=2)
def load_table(path: Path = TABLE) -> FlowTable:
    """The fitted table in ``path`` (read once; arrays are read-only)."""
    with np.load(path) as data:
        table = FlowTable(data["core"], data["delta"], data["offset"])
    for array in table:
        array.setflags(write=False)
    if not len(table.core) or not (len(table.core) == len(table.delta) == len(table.offset)):
        raise ValueError(f"{path}: the flow table is empty or its arrays differ in length.")
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


def fitted_loop(
    rng: np.random.Generator, points: SingularPoints, table: FlowTable
) -> SingularPoints:
    """``points`` (a loop) with the delta and corrections of one fitted print drawn from
    ``table``, plus the default draws' noise; the core stays where it is."""
    if points.fp_class not in ("left_loop", "right_loop"):
        raise ValueError(f"fitted flows are for loops, not {points.fp_class!r}.")
    k = int(rng.integers(len(table.core)))
    noise = np.clip(rng.normal(0, CORRECTION_STD, (2, len(ENDS))), -0.3, 0.3)
    noise[:, -1] = noise[:, 0]
    core, delta = ENDS + table.core[k] + noise[0], ENDS + table.delta[k] + noise[1]
    offset = np.array(table.offset[k], float)
    if points.fp_class == "right_loop":
        core, delta = mirrored(core), mirrored(delta)
        offset[0] = -offset[0]
    return points._replace(
        deltas=(points.cores[0] + offset)[None], corrections=np.stack([core, delta])
    )
