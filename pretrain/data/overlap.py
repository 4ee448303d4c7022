"""How much of the finger two synthetic impressions share: their readable regions on the master.

An impression's readable pixels (:func:`pretrain.data.minutiae.print_mask`, the region a matcher
can use) are carried through the generator's placement (:func:`master_coordinates`, the skin
distortion included) onto a grid of ``cell``-px squares of the master finger. Two impressions of
one finger share the squares both cover. This is ground truth only the generator has: it tells
whether a genuine pair a matcher rejects had anything in common to match
(``notebooks/bench/bench_print_overlap.py``).
"""

from __future__ import annotations

import numpy as np

from pretrain.data.fingerprint import FingerprintGenerator, master_coordinates
from pretrain.data.fingerprint.synthetic import impression_placement
from pretrain.data.minutiae import PX_PER_MM, print_mask

CELL_PX = 2  # the master grid's square, px at 500 dpi (a quarter of a ridge period)
_SPAN = 1 << 20  # keys: row * _SPAN + column on the grid, offset so negatives stay unique


def readable_cells(
    generator: FingerprintGenerator,
    identity: int,
    impression: int,
    image: np.ndarray | None = None,
    cell: int = CELL_PX,
) -> np.ndarray:
    """Sorted int64 keys of the master-grid squares the readable pixels of impression
    ``impression`` of ``identity`` land on (``image``: that impression, drawn if None)."""
    if image is None:
        image = generator.impression(identity, impression)
    where = impression_placement(identity, impression, seed=generator.seed, config=generator.config)
    rows, cols = master_coordinates(where, image.shape, generator.master(identity).centre)
    mask = print_mask(image)
    r = np.floor(rows[mask] / cell).astype(np.int64) + _SPAN // 2
    c = np.floor(cols[mask] / cell).astype(np.int64) + _SPAN // 2
    return np.unique(r * _SPAN + c)


def shared_mm2(a: np.ndarray, b: np.ndarray, cell: int = CELL_PX) -> float:
    """The finger area (mm^2) two impressions' :func:`readable_cells` ``a`` and ``b`` share."""
    return np.intersect1d(a, b, assume_unique=True).size * cell**2 / PX_PER_MM**2


def overlap_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """The shared squares over the smaller impression's: 1 when one lies inside the other, 0
    when they share nothing (or one has no readable pixel)."""
    if a.size == 0 or b.size == 0:
        return 0.0
    return np.intersect1d(a, b, assume_unique=True).size / min(a.size, b.size)
