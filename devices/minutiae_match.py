"""A classical minutiae matcher: the best rigid alignment of two prints' minutiae by Hough voting,
then one-to-one pairing of the minutiae it brings together.

Each print's minutiae are first centred on their mean position (the score does not depend on
where the frame's origin is, and a turn's error moves a vote's translation in proportion to the
distance from the origin). The turns tried are a grid of :data:`TURN_STEP` up to
:data:`MAX_TURN` either way (a generalised Hough transform): every pair of minutiae (one of each
print) whose directions differ by within :data:`TURN_TOLERANCE` of a grid turn votes, at that
turn, for the translation that would carry one onto the other, in bins of :data:`SHIFT_BIN` px.
The :data:`TOP` fullest (turn, translation) bins are tried: the alignment is the bin's turn and
its votes' median translation, and two minutiae pair when they land within :data:`PAIR_PX` px and
:data:`PAIR_TURN` radians of each other (nearest first, each used once). Without the prints'
masks the score is the number of pairs over the smaller print's count (``m / min(n_a, n_b)``: a
partial print is not punished for the minutiae the other shows outside it). With them it is
``m^2 / (n_a' n_b')``, where ``n_a'`` counts ``a``'s minutiae that the alignment carries into
``b``'s readable print and ``n_b'`` the other way (each at least ``m`` and :data:`FLOOR`): only
the minutiae both prints could show count against a pair of prints, as in NIST's Bozorth3 and
the handbook's normalisations by the overlap. The masks may be coarser than the pixels (the
device keeps them in the detector's 4-px cells, :mod:`devices.print_minutiae`).

Why a grid of turns rather than each pair's own direction difference (the first version, to
2026-12-07): a minutia's direction is measured to about 10 degrees, and a turn off by 10 degrees
moves the translation it votes for by a sixth of the minutia's distance from the origin, which
scattered the votes of a genuine pair over many bins. On held-out training identities
(1300-1349 x 8 of the flowmix generator, :mod:`pretrain.minutiae_detector`'s checkpoint at 5,000
steps; 2026-12-07) the learned detector's minutiae gave a matcher EER of 30.4% with the first
version, 22.2% with centring alone and 18.9% with centring and the grid; the true minutiae
(whose directions are exact) 13.5, 13.6 and 15.5%. Chosen there, for the minutiae a detector
gives; the development identities were not used to choose.

Why the overlap (2026-12-07, the same held-out identities, the detector's committed weights, its
prints' masks by :func:`pretrain.data.minutiae.print_mask`, which
:func:`devices.readable.readable_mask` repeats): the learned detector's minutiae
gave a matcher EER of 19.5% on flowmix prints and 20.1% on twin prints (twin EER 25.0) with
``m / min(n_a, n_b)``, 15.7% and 15.4% (19.8) over the overlap; the generator's true minutiae
15.5 and 14.5% -> 10.6 and 9.1%. A diagnosis there: an impostor pair pairs a median of 4
minutiae by chance, and a genuine pair of small overlap not many more; the overlap tells the
two apart where the smaller count does not. Tried there and not kept: the floor at 2, 4 or 10
(15.7-21.0%), ``m / min(n_a', n_b')`` (20.0), ``2m / (n_a' + n_b')`` (16.5), eight alignments
(17.7), pairing within 10 or 18 px (15.7, 16.3), the masks widened by 8 px (16.9), the block
variance foreground instead of the readable print (19.7), the convex hull of the minutiae (18.8),
and local minutia cylinder codes (MCC) alone (28.8) or as a gate on pairs (19.9).

What it is for: the matcher half of a minutiae pipeline beside the embedding, measured on the
development prints (``notebooks/bench/bench_minutiae_fusion.py``), with minutiae found by
:mod:`pretrain.data.minutiae`, taken from the generator's ground truth
(:func:`pretrain.data.minutiae_maps.impression_minutiae`) or by the learned detector
(:mod:`devices.minutiae_detector`), and the readable masks of :mod:`devices.readable`. It runs on
numpy alone, so the phone repeats it. Minutiae are ``(n, 4)`` rows x, y (px at 500 dpi, image
axes), direction (radians), kind (0 ending, 1 bifurcation; not used);
:func:`pretrain.data.minutiae.minutiae_array` makes them from the yardstick extractor's.

Example:
  >>> a, b = detector.detect(gray_a), detector.detect(gray_b)
  >>> match_score(a, b)  # 0 (nothing in common) .. 1 (every minutia of the smaller print)
  >>> match_score(a, b, readable_mask(gray_a), readable_mask(gray_b))  # over their overlap

Reference:
  Maltoni, Maio, Jain, Prabhakar, Handbook of Fingerprint Recognition, 2nd ed., Springer 2009,
  sec. 4.3 (minutiae-based matching; alignment by the generalised Hough transform, Ratha et al.
  1996; pairing under spatial and directional tolerances).
"""

from __future__ import annotations

import numpy as np

MAX_TURN = np.radians(45.0)  # a print is not turned further than this on a sensor
TURN_STEP = np.radians(5.0)  # the grid of turns tried
TURN_TOLERANCE = np.radians(15.0)  # a pair votes at the grid turns this near its own
SHIFT_BIN = 12.0  # px at 500 dpi, about one and a half ridge periods
PAIR_PX = 14.0  # px: distortion moves a minutia about a ridge period and a half
PAIR_TURN = np.radians(25.0)
TOP = 3  # alignments tried: the fullest bins
FLOOR = 3  # the overlap's counts are at least this (two chance pairs of tiny overlaps score low)


class MinutiaeMatchError(ValueError):
    """Minutiae arrays that are not ``(n, 4)`` finite x, y, angle, kind rows."""


def _checked(m: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(m, np.float64)
    if array.ndim != 2 or array.shape[1] != 4 or not np.all(np.isfinite(array)):
        raise MinutiaeMatchError(
            f"{name} must be (n, 4) finite rows x, y, angle, kind; got shape {np.shape(m)}."
        )
    return array


def _centred(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minutiae rows with x, y less their mean (the score is the same; see the module), and
    that mean."""
    out = m.copy()
    mean = m[:, :2].mean(axis=0)
    out[:, :2] -= mean
    return out, mean


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def alignments(a: np.ndarray, b: np.ndarray, top: int = TOP) -> list[tuple[float, float, float]]:
    """Up to ``top`` rigid alignments ``(turn, dx, dy)`` carrying ``a`` onto ``b``, the fullest
    Hough bins first (none when no two minutiae can correspond)."""
    own = _wrap(b[None, :, 2] - a[:, None, 2])
    grid = np.arange(-MAX_TURN, MAX_TURN + 1e-9, TURN_STEP)
    # the pairs whose turn is near the grid (|own - turn| beyond pi never wraps back near it),
    # then every (grid turn, pair) that votes: the grid turns a few steps either side of its own
    ai, bj = np.nonzero(np.abs(own) <= MAX_TURN + TURN_TOLERANCE + 1e-9)
    near = own[ai, bj]
    reach = int(np.ceil(TURN_TOLERANCE / TURN_STEP))
    below = np.floor((near - grid[0]) / TURN_STEP).astype(np.int64)
    k = (below[None, :] + np.arange(-reach, reach + 2)[:, None]).ravel()
    pair = np.tile(np.arange(near.size), 2 * reach + 2)
    votes = (k >= 0) & (k < grid.size)
    k, pair = k[votes], pair[votes]
    votes = np.abs(near[pair] - grid[k]) <= TURN_TOLERANCE
    k, pair = k[votes], pair[votes]
    if k.size == 0:
        return []
    c, s = np.cos(grid[k]), np.sin(grid[k])
    ai, bj = ai[pair], bj[pair]
    tx = b[bj, 0] - (c * a[ai, 0] - s * a[ai, 1])
    ty = b[bj, 1] - (s * a[ai, 0] + c * a[ai, 1])
    bx, by = (tx // SHIFT_BIN).astype(np.int64), (ty // SHIFT_BIN).astype(np.int64)
    # one integer per (turn, x bin, y bin), in their lexicographic order
    span_x, span_y = bx.max() - bx.min() + 1, by.max() - by.min() + 1
    code = (k * span_x + (bx - bx.min())) * span_y + (by - by.min())
    _, which, counts = np.unique(code, return_inverse=True, return_counts=True)
    out = []
    for b_ in np.argsort(-counts, kind="stable")[:top]:
        members = np.flatnonzero(which == b_)
        dx, dy = _median(tx[members]), _median(ty[members])
        out.append((float(grid[k[members[0]]]), dx, dy))
    return out


def _median(values: np.ndarray) -> float:
    """``np.median`` of a few values (the same number, without its checks: a pair's scoring
    takes six)."""
    v = np.sort(values)
    half = len(v) // 2
    return float(v[half]) if len(v) % 2 else float((v[half - 1] + v[half]) / 2)


def paired(a: np.ndarray, b: np.ndarray, alignment: tuple[float, float, float]) -> int:
    """Minutiae of ``a``, moved by ``alignment``, paired one-to-one with ``b``'s within
    :data:`PAIR_PX` and :data:`PAIR_TURN` (nearest pairs first)."""
    turn, dx, dy = alignment
    c, s = np.cos(turn), np.sin(turn)
    x = c * a[:, 0] - s * a[:, 1] + dx
    y = s * a[:, 0] + c * a[:, 1] + dy
    dist = np.hypot(x[:, None] - b[None, :, 0], y[:, None] - b[None, :, 1])
    apart = np.abs(_wrap(a[:, 2, None] + turn - b[None, :, 2]))
    cost = np.where((dist <= PAIR_PX) & (apart <= PAIR_TURN), dist, np.inf).ravel()
    near = np.flatnonzero(np.isfinite(cost))  # the few pairs within the tolerances
    used_a, used_b = np.zeros(len(a), bool), np.zeros(len(b), bool)
    count = 0
    for flat in near[np.argsort(cost[near], kind="stable")]:
        r, q = divmod(int(flat), len(b))
        if not (used_a[r] or used_b[q]):
            used_a[r] = used_b[q] = True
            count += 1
    return count


def _carried(
    x: np.ndarray, y: np.ndarray, turn: float, sx: float, sy: float
) -> tuple[np.ndarray, np.ndarray]:
    """x, y of points turned by ``turn`` about the origin, then shifted by ``(sx, sy)``."""
    c, s = np.cos(turn), np.sin(turn)
    return c * x - s * y + sx, s * x + c * y + sy


def _inside(x: np.ndarray, y: np.ndarray, mask: np.ndarray, cell: int = 1) -> int:
    """How many of the points (x, y px) fall on a true cell of ``mask`` (``cell`` px a side)."""
    h, w = mask.shape
    col, row = np.rint(x).astype(int) // cell, np.rint(y).astype(int) // cell
    seen = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    return int(mask[row[seen], col[seen]].sum())


def _overlap(
    centred: tuple[np.ndarray, np.ndarray],
    means: tuple[np.ndarray, np.ndarray],
    masks: tuple[np.ndarray, np.ndarray],
    alignment: tuple[float, float, float],
    cell: int = 1,
) -> tuple[int, int]:
    """``(n_a', n_b')``: the first print's minutiae (``centred``, less their ``means``) carried by
    ``alignment`` (found between the centred prints) onto the second's mask, and the second's
    carried back onto the first's."""
    (ac, bc), (mean_a, mean_b) = centred, means
    turn, dx, dy = alignment
    onto_b = _carried(ac[:, 0], ac[:, 1], turn, dx + mean_b[0], dy + mean_b[1])
    back = _carried(bc[:, 0] - dx, bc[:, 1] - dy, -turn, mean_a[0], mean_a[1])
    return _inside(*onto_b, masks[1], cell), _inside(*back, masks[0], cell)


def match_score(
    a: np.ndarray,
    b: np.ndarray,
    mask_a: np.ndarray | None = None,
    mask_b: np.ndarray | None = None,
    *,
    cell: int = 1,
) -> float:
    """How alike two prints' minutiae are (0 with fewer than two minutiae on either side): the
    best tried alignment's pairs over the smaller count, or, given both prints' readable masks
    (boolean, in their own pixels, or in cells of ``cell`` px a side), its pairs squared over the
    minutiae each could show of the other's (see the module).

    Raises:
      MinutiaeMatchError: ``a`` or ``b`` is not ``(n, 4)`` finite rows, or only one mask is
        given, or a mask is not 2-D.
    """
    a, b = _checked(a, "a"), _checked(b, "b")
    if (mask_a is None) != (mask_b is None):
        raise MinutiaeMatchError("give both prints' masks or neither.")
    masks = None
    if mask_a is not None and mask_b is not None:
        masks = (np.asarray(mask_a, bool), np.asarray(mask_b, bool))
        if masks[0].ndim != 2 or masks[1].ndim != 2:
            raise MinutiaeMatchError(
                f"masks must be 2-D; got shapes {masks[0].shape} and {masks[1].shape}."
            )
    if len(a) < 2 or len(b) < 2:
        return 0.0
    (ac, mean_a), (bc, mean_b) = _centred(a), _centred(b)
    best = 0.0
    for t in alignments(ac, bc):
        m = paired(ac, bc, t)
        if masks is None:
            score = m / min(len(a), len(b))
        else:
            overlap = _overlap((ac, bc), (mean_a, mean_b), masks, t, cell)
            n_a, n_b = (max(n, m, FLOOR) for n in overlap)
            score = m * m / (n_a * n_b)
        best = max(best, score)
    return best
