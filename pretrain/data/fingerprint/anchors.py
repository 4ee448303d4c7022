"""Where a synthetic print's anchor is: the generator's truth the learned localiser is taught.

The anchor is one point of the finger, the same in every impression of it: the mean of the
master's cores (a loop's or tented arch's core, the midpoint of a whorl's two), or for an arch,
which has none, the top of its ridge bump (the column its bump is centred on, at the height a core
would be drawn: 43% of the way down the silhouette, the middle of
:func:`~pretrain.data.fingerprint.orientation.sample_singular_points`' 36-50%). In an impression
it is where the placement puts that master point, inside the print or not.
"""

from __future__ import annotations

import numpy as np

from pretrain.data.fingerprint.impressions import (
    Placement,
    master_coordinates,
    rigid_to_impression,
)
from pretrain.data.fingerprint.synthetic import Master

ARCH_ROW = 0.43  # an arch's anchor row: this share of the silhouette's height from its top
NEAR_PX = 3.0  # an impression pixel this near the master point is taken as its position


def master_anchor(master: Master) -> tuple[float, float]:
    """``(x, y)`` of the anchor in the master's pixels."""
    points, sil = master.points, master.silhouette
    if len(points.cores):
        x, y = points.cores.mean(axis=0)
        return float(x), float(y)
    width = master.ridges.shape[1]
    # orientation_field centres an arch's bump on the growth grid's mean column plus its shift.
    x = width / 2 - 0.5 + float(points.corrections[0, 2])
    top = sil.cy - sil.c / 2 - sil.b1
    return x, float(top + ARCH_ROW * (sil.b1 + sil.c + sil.b2))


def impression_anchor(
    master: Master, where: Placement, shape: tuple[int, int]
) -> tuple[float, float]:
    """``(row, col)`` of the master's anchor in an impression of ``shape`` placed by ``where``:
    the impression pixel that the placement (with its skin distortion) maps nearest to it, when
    within ``NEAR_PX``; otherwise (outside the print) the rigid placement's inverse."""
    x, y = master_anchor(master)
    rows, cols = master_coordinates(where, shape, master.centre)
    d = np.hypot(rows - y, cols - x)
    k = int(np.argmin(d))
    if d.flat[k] <= NEAR_PX:
        r, c = divmod(k, shape[1])
        return float(r), float(c)
    return rigid_to_impression(where, shape, master.centre, x, y)
