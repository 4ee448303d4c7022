"""Minutiae (ridge endings and bifurcations) of a fingerprint, and their density per mm^2.

A yardstick, not a matcher's extractor: the same code runs on real sensor prints and on the
generator's impressions and masters, so a difference in minutiae density is in the images, not in
the measurement. Steps: a band-pass around the ridge frequency, smoothing along the local ridge
orientation, binarisation, thinning (:func:`ridge_skeleton`); the crossing number on the skeleton,
then the usual skeleton post-processing: spurs, short ridges, bridges and broken ridges removed,
clusters merged, nothing near the print's border (:func:`skeleton_minutiae`).

Example:
  >>> found = minutiae(gray)  # uint8 (h, w), 500 dpi, dark ridges
  >>> minutiae_density(gray).per_mm2

References:
  Maltoni, Maio, Jain, Prabhakar, Handbook of Fingerprint Recognition, 2nd ed., Springer 2009,
  sec. 3.7 (minutiae detection: binarisation, thinning, crossing number) and 3.8 (minutiae
  filtering: structural post-processing of the skeleton).
  Rutovitz, "Pattern recognition", J. Royal Statistical Society A 129(4), 1966 (the crossing
  number).
  Xiao, Raafat, "Fingerprint image postprocessing: a combined statistical and structural
  approach", Pattern Recognition 24(10), 1991 (spurs, bridges, broken ridges).
  Zhang, Suen, "A fast parallel algorithm for thinning digital patterns", CACM 27(3), 1984
  (``skimage.morphology.skeletonize``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage, signal
from skimage.morphology import remove_small_holes, remove_small_objects, skeletonize

from devices.preprocess import PreprocessSpec, crop, to_gray_u8
from pretrain.data.fingerprint.silhouette import silhouette_radius
from pretrain.data.fingerprint.synthetic import Master
from pretrain.data.stats import BLOCK, foreground_mask

PX_PER_MM = 500 / 25.4  # 500 dpi
EDGE_PX = 16  # the block foreground is eroded this far: ridges fade at the print's edge
MARGIN_PX = 8  # minutiae this near the mask's border are cut ridges, not minutiae
BAND_SIGMAS = (1.0, 4.0)  # px: difference of Gaussians around periods of 6-14 px
ORIENTATION_SIGMA = 7.0  # px: structure-tensor averaging, about one ridge period and a half
QUALITY_SIGMA = 12.0  # px: coherence averaging for the quality mask, a few ridge periods
MIN_COHERENCE = 0.3  # below it (holes aside) the foreground is noise, not ridges
ALONG_SIGMA = 3.0  # px: smoothing along the ridge bridges pores and small breaks
ACROSS_SIGMA = 0.7  # px: keeps the oriented kernel smooth without merging ridges
ORIENTATIONS = 12  # oriented smoothing kernels over [0, pi)
SPECK_PX = 24  # ridge blobs and valley holes at most this large are noise
CLUSTER_PX = 2  # crossing-number hits this close belong to one junction
SPUR_PX = 8  # an ending this near a bifurcation along the skeleton: a spur
SHORT_PX = 10  # two endings this near along the skeleton: a dot or short island
BRIDGE_PX = 8  # two bifurcations this near along the skeleton: a bridge or a small lake
BREAK_PX = 12  # two facing endings this near (straight line): one broken ridge
FACING = np.radians(50.0)  # how far each ending's direction may turn from the other ending
ANGLE_PX = 7  # the skeleton is followed this far to measure a minutia's direction
ENDING, BIFURCATION = "ending", "bifurcation"
_STEPS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))  # circular


class MinutiaeError(ValueError):
    """An image the extractor cannot read: not 2-D, or no foreground to look in."""


class Minutia(NamedTuple):
    """One minutia in image pixels (x right, y down).

    Attributes:
      x: column.
      y: row.
      kind: ``"ending"`` or ``"bifurcation"``.
      angle: radians (image axes): for an ending, the way its ridge runs out; for a
        bifurcation, the way its fork opens (NaN if the skeleton is too short to tell).
    """

    x: float
    y: float
    kind: str
    angle: float = float("nan")


class MinutiaeDensity(NamedTuple):
    """Minutiae counted in a print's usable area.

    Attributes:
      per_mm2: minutiae per mm^2 of area (500 dpi; NaN without area).
      endings: ridge endings found.
      bifurcations: bifurcations found.
      area_mm2: the area they were looked for in: the mask at least :data:`MARGIN_PX` inside.
    """

    per_mm2: float
    endings: int
    bifurcations: int
    area_mm2: float

    @property
    def total(self) -> int:
        return self.endings + self.bifurcations


def _checked(gray: np.ndarray) -> np.ndarray:
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise MinutiaeError(f"expected a 2-D grayscale print, got shape {gray.shape}.")
    return gray


def print_mask(gray: np.ndarray) -> np.ndarray:
    """Pixel foreground of a print where ridges can be read, eroded by :data:`EDGE_PX`.

    The foreground is :func:`~pretrain.data.stats.foreground_mask`'s blocks, less what does not
    look like ridges: orientation coherence (:func:`ridge_orientation`) below
    :data:`MIN_COHERENCE`, unless enclosed (a core, a delta or a smudge inside the print). The
    erosion leaves out the ridges fading out at the print's edge.
    """
    gray = _checked(gray)
    blocks = foreground_mask(gray)
    mask = np.zeros(gray.shape, bool)
    up = np.repeat(np.repeat(blocks, BLOCK, axis=0), BLOCK, axis=1)
    mask[: up.shape[0], : up.shape[1]] = up
    _, coherence = ridge_orientation(band_pass(gray), QUALITY_SIGMA)
    mask &= ndimage.binary_fill_holes(coherence > MIN_COHERENCE)
    return inside_margin(mask, EDGE_PX)


def window_area_mm2(image: np.ndarray, spec: PreprocessSpec) -> float:
    """Readable print (:func:`print_mask`, mm^2) inside the window ``spec`` crops from a 500 dpi
    print: how much of the print a backbone with that preprocessing sees. The window is read at
    the print's own resolution (before the resize to the model's input); its frame counts as
    the print's edge."""
    window = crop(to_gray_u8(np.asarray(image)), spec)
    return float(print_mask(window).sum()) / PX_PER_MM**2


def master_mask(master: Master) -> np.ndarray:
    """The pixels of a generator master inside its fingertip's silhouette."""
    h, w = master.ridges.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    return silhouette_radius(master.silhouette, rows, cols) <= 1.0


def inside_margin(mask: np.ndarray, margin: float = MARGIN_PX) -> np.ndarray:
    """The mask's pixels at least ``margin`` px from its border (the frame counts as outside)."""
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return depth >= margin


def _oriented_kernels() -> list[np.ndarray]:
    radius = int(np.ceil(3 * ALONG_SIGMA))
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    kernels = []
    for k in range(ORIENTATIONS):
        a = np.pi * k / ORIENTATIONS
        along, across = x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)
        g = np.exp(-0.5 * ((along / ALONG_SIGMA) ** 2 + (across / ACROSS_SIGMA) ** 2))
        kernels.append(g / g.sum())
    return kernels


def band_pass(gray: np.ndarray) -> np.ndarray:
    """The print band-passed around the ridge frequency (difference of Gaussians, float)."""
    x = _checked(gray).astype(np.float64)
    return ndimage.gaussian_filter(x, BAND_SIGMAS[0]) - ndimage.gaussian_filter(x, BAND_SIGMAS[1])


def ridge_orientation(band: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel ridge orientation (radians in [0, pi), image axes) and coherence (in [0, 1]) of a
    band-passed print, from the structure tensor averaged over ``sigma`` px (Bazen and Gerez
    2002)."""
    gx, gy = ndimage.sobel(band, axis=1), ndimage.sobel(band, axis=0)
    gxx = ndimage.gaussian_filter(gx * gx, sigma)
    gyy = ndimage.gaussian_filter(gy * gy, sigma)
    gxy = ndimage.gaussian_filter(gx * gy, sigma)
    theta = np.mod(0.5 * np.arctan2(2 * gxy, gxx - gyy) + np.pi / 2, np.pi)
    return theta, np.hypot(gxx - gyy, 2 * gxy) / np.maximum(gxx + gyy, 1e-9)


def enhance(gray: np.ndarray) -> np.ndarray:
    """The print band-passed around the ridge frequency and smoothed along its ridges (float;
    negative on dark ridges, about zero-mean)."""
    band = band_pass(gray)
    theta, _ = ridge_orientation(band, ORIENTATION_SIGMA)
    nearest = np.rint(theta / np.pi * ORIENTATIONS).astype(int) % ORIENTATIONS
    out = np.zeros_like(band)
    for k, kernel in enumerate(_oriented_kernels()):
        where = nearest == k
        if where.any():
            out[where] = signal.fftconvolve(band, kernel, mode="same")[where]
    return out


def ridge_skeleton(gray: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The one-pixel ridge skeleton of a uint8 500 dpi print (dark ridges on a light background).

    Args:
      gray: the print.
      mask: where to look (default :func:`print_mask`); the skeleton ends at its border.

    Returns:
      bool ``gray.shape``: True on ridge centre lines inside ``mask``.
    """
    gray = _checked(gray)
    mask = print_mask(gray) if mask is None else np.asarray(mask, bool)
    if mask.shape != gray.shape:
        raise MinutiaeError(f"mask shape {mask.shape} differs from the print's {gray.shape}.")
    return binary_skeleton((enhance(gray) < 0) & mask)


def binary_skeleton(ridges: np.ndarray) -> np.ndarray:
    """Thinned binary ridges, after dropping specks and filling pinholes of :data:`SPECK_PX`."""
    ridges = remove_small_objects(ridges, max_size=SPECK_PX, connectivity=2)
    ridges = remove_small_holes(ridges, max_size=SPECK_PX)
    return skeletonize(ridges)


def crossing_number(skeleton: np.ndarray) -> np.ndarray:
    """int ``skeleton.shape``: half the 0/1 transitions around each skeleton pixel's
    8-neighbourhood (1 at an ending, 2 on a ridge, 3 at a bifurcation); 0 off the skeleton."""
    s = np.pad(np.asarray(skeleton, bool), 1).astype(np.int8)
    h, w = skeleton.shape
    ring = [s[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _STEPS]
    cn = sum(np.abs(ring[i] - ring[(i + 1) % 8]) for i in range(8)) // 2
    return np.where(skeleton, cn, 0).astype(np.int64)


class _Candidate(NamedTuple):
    pixels: list[tuple[int, int]]
    kind: str


def _candidates(skeleton: np.ndarray) -> list[_Candidate]:
    """Crossing-number hits; bifurcation hits within :data:`CLUSTER_PX` merged (one junction of
    a thinned skeleton often gives two or three)."""
    cn = crossing_number(skeleton)
    found = [
        _Candidate([(int(r), int(c))], ENDING) for r, c in zip(*np.nonzero(cn == 1), strict=True)
    ]
    forks = cn >= 3
    size = 2 * CLUSTER_PX - 1
    labels, n = ndimage.label(ndimage.binary_dilation(forks, np.ones((size, size), bool)))
    for index in range(1, n + 1):
        rows, cols = np.nonzero(forks & (labels == index))
        found.append(_Candidate(list(zip(rows.tolist(), cols.tolist(), strict=True)), BIFURCATION))
    return found


def _walk(
    skeleton: np.ndarray,
    owner: dict[tuple[int, int], int],
    me: int,
    start: list[tuple[int, int]],
    depth: int,
) -> tuple[list[tuple[int, int]], dict[tuple[int, int], int]]:
    """Breadth-first along the skeleton from candidate ``me``'s pixels, up to ``depth`` steps.

    Returns:
      The other candidates met ``(index, steps)`` (the walk does not pass through them), and
      every pixel reached with its step count.
    """
    h, w = skeleton.shape
    seen = {p: 0 for p in start}
    frontier, met = list(start), []
    for step in range(1, depth + 1):
        nxt = []
        for r, c in frontier:
            for dr, dc in _STEPS:
                p = (r + dr, c + dc)
                if p in seen or not (0 <= p[0] < h and 0 <= p[1] < w) or not skeleton[p]:
                    continue
                seen[p] = step
                other = owner.get(p, me)
                if other != me:
                    met.append((other, step))
                else:
                    nxt.append(p)
        frontier = nxt
    return met, seen


def _direction(seen: dict[tuple[int, int], int], centre: tuple[float, float]) -> float:
    """The mean direction (radians) from ``centre`` to the pixels reached :data:`ANGLE_PX` and
    more steps away (NaN if none)."""
    far = [p for p, step in seen.items() if step >= ANGLE_PX]
    if not far:
        return float("nan")
    vec = np.asarray(far, np.float64) - np.asarray(centre)
    unit = vec / np.maximum(np.hypot(vec[:, 0], vec[:, 1]), 1e-9)[:, None]
    dy, dx = unit.sum(axis=0)
    return float(np.arctan2(dy, dx)) if np.hypot(dx, dy) > 1e-6 else float("nan")


def _facing(a: Minutia, b: Minutia) -> bool:
    """Whether two endings point at each other (each one's ridge runs out towards the other)."""
    towards = np.arctan2(b.y - a.y, b.x - a.x)
    for m, way in ((a, towards), (b, towards + np.pi)):
        if not np.isfinite(m.angle):
            return False
        if abs((m.angle - way + np.pi) % (2 * np.pi) - np.pi) > FACING:
            return False
    return True


def skeleton_minutiae(
    skeleton: np.ndarray, mask: np.ndarray, *, margin: float = MARGIN_PX
) -> list[Minutia]:
    """Endings and bifurcations of a ridge skeleton, by crossing number, after clean-up.

    Removed, in this order: an ending joined to a bifurcation by a branch of at most
    :data:`SPUR_PX` steps (a spur: both); two endings joined within :data:`SHORT_PX` (a dot or
    short island); two bifurcations joined within :data:`BRIDGE_PX` (a bridge or small lake);
    two endings within :data:`BREAK_PX` px facing each other (a broken ridge); last, anything
    less than ``margin`` px from the mask's border (ridges cut by it).

    Args:
      skeleton: bool one-pixel-wide ridges (:func:`ridge_skeleton`).
      mask: bool, same shape: the area the skeleton was drawn in.
      margin: px from the mask's border (and the frame) within which nothing counts.

    Returns:
      The minutiae, endings first, each bifurcation at its junction's centroid.
    """
    skeleton = np.asarray(skeleton, bool)
    if skeleton.ndim != 2 or np.shape(mask) != skeleton.shape:
        raise MinutiaeError(
            f"skeleton and mask must be 2-D and alike, got {skeleton.shape}, {np.shape(mask)}."
        )
    found = _candidates(skeleton)
    owner = {p: i for i, cand in enumerate(found) for p in cand.pixels}
    depth = max(SPUR_PX, SHORT_PX, BRIDGE_PX, ANGLE_PX)
    walks = [_walk(skeleton, owner, i, cand.pixels, depth) for i, cand in enumerate(found)]
    items = []
    for cand, (_, seen) in zip(found, walks, strict=True):
        y, x = np.mean(cand.pixels, axis=0)
        way = _direction(seen, (y, x))
        if cand.kind == ENDING and np.isfinite(way):
            way = float(np.mod(way + 2 * np.pi, 2 * np.pi) - np.pi)  # away from the ridge
        items.append(Minutia(float(x), float(y), cand.kind, way))
    gone: set[int] = set()
    rules = (
        (ENDING, BIFURCATION, SPUR_PX),
        (ENDING, ENDING, SHORT_PX),
        (BIFURCATION, BIFURCATION, BRIDGE_PX),
    )
    for kind_a, kind_b, reach in rules:
        for i, (met, _) in enumerate(walks):
            if i in gone or found[i].kind != kind_a:
                continue
            for j, steps in sorted(met, key=lambda m: m[1]):
                if j not in gone and found[j].kind == kind_b and steps <= reach:
                    gone |= {i, j}
                    break
    endings = [i for i, cand in enumerate(found) if cand.kind == ENDING and i not in gone]
    pairs = sorted(
        (np.hypot(items[i].x - items[j].x, items[i].y - items[j].y), i, j)
        for n, i in enumerate(endings)
        for j in endings[n + 1 :]
        if abs(items[i].x - items[j].x) <= BREAK_PX and abs(items[i].y - items[j].y) <= BREAK_PX
    )
    for dist, i, j in pairs:
        if dist <= BREAK_PX and not {i, j} & gone and _facing(items[i], items[j]):
            gone |= {i, j}
    inside = inside_margin(np.asarray(mask, bool), margin)
    return [m for i, m in enumerate(items) if i not in gone and inside[round(m.y), round(m.x)]]


def found_in(gray: np.ndarray) -> tuple[list[Minutia], np.ndarray]:
    """The minutiae of a uint8 500 dpi print (:func:`ridge_skeleton` then
    :func:`skeleton_minutiae` in :func:`print_mask`) and that mask; none in an empty mask."""
    mask = print_mask(gray)
    return skeleton_minutiae(ridge_skeleton(gray, mask), mask), mask


def minutiae(gray: np.ndarray) -> list[Minutia]:
    """The minutiae of a uint8 500 dpi print (:func:`found_in`).

    Raises:
      MinutiaeError: not 2-D, or no foreground left after eroding the print's edge.
    """
    found, mask = found_in(gray)
    if not mask.any():
        raise MinutiaeError(
            f"no foreground in the {np.shape(gray)} print after eroding its edge by {EDGE_PX} "
            "px: is it blank, or smaller than a few 16-px blocks?"
        )
    return found


KINDS = {ENDING: 0, BIFURCATION: 1}  # a minutiae array's kind column


def minutiae_array(found: Sequence[Minutia]) -> np.ndarray:
    """``(n, 4)`` float64 rows x, y, angle, kind (0 ending, 1 bifurcation) of the minutiae with a
    direction, as :mod:`devices.minutiae_match` takes them (a minutia whose direction could not
    be measured cannot vote)."""
    rows = [(m.x, m.y, m.angle, KINDS[m.kind]) for m in found if np.isfinite(m.angle)]
    return np.asarray(rows, np.float64).reshape(-1, 4)


def master_minutiae(master: Master) -> list[Minutia]:
    """The minutiae of a generator master, from its clean ridge field (``ridges > 0``) inside
    its silhouette: the ones its impressions should show."""
    mask = master_mask(master)
    return skeleton_minutiae(binary_skeleton((master.ridges > 0) & mask), mask)


def density(
    found: Sequence[Minutia], mask: np.ndarray, *, margin: float = MARGIN_PX
) -> MinutiaeDensity:
    """Minutiae per mm^2 of the area they were looked for in (``mask`` less its margin)."""
    area = float(inside_margin(np.asarray(mask, bool), margin).sum()) / PX_PER_MM**2
    endings = sum(m.kind == ENDING for m in found)
    forks = len(found) - endings
    return MinutiaeDensity(len(found) / area if area else float("nan"), endings, forks, area)


def minutiae_density(gray: np.ndarray) -> MinutiaeDensity:
    """Minutiae per mm^2 of a uint8 500 dpi print's eroded foreground, with the counts.

    Raises:
      MinutiaeError: not 2-D, or no foreground left after the erosion.
    """
    found, mask = found_in(gray)
    if not inside_margin(mask, MARGIN_PX).any():
        raise MinutiaeError(
            f"no foreground in the {np.shape(gray)} print after eroding its edge by "
            f"{EDGE_PX + MARGIN_PX} px: is it blank, or smaller than a few 16-px blocks?"
        )
    return density(found, mask)


class Recovery(NamedTuple):
    """How many of a master's minutiae an impression shows again (:func:`recovered`).

    Attributes:
      found_again: true minutiae inside the counted area with a found one within the tolerance.
      expected: true minutiae inside the counted area.
      spurious: found minutiae with no true one within the tolerance.
      found: found minutiae.
    """

    found_again: int
    expected: int
    spurious: int
    found: int


def recovered(
    truth: np.ndarray, found: Sequence[Minutia], mask: np.ndarray, *, tolerance: float = 10.0
) -> Recovery:
    """Matches a master's minutiae, mapped into an impression (``truth``: ``(k, 2)`` ``(x,
    y)`` impression pixels), against the minutiae found in the impression within ``mask`` (its
    :func:`print_mask`), each side's nearest within ``tolerance`` px. At about 0.3 minutiae per
    mm^2, chance alone puts an unrelated minutia within 10 px of a point a fifth of the time."""
    truth = np.asarray(truth, np.float64).reshape(-1, 2)
    area = inside_margin(np.asarray(mask, bool))
    h, w = area.shape
    cols, rows = np.rint(truth[:, 0]).astype(int), np.rint(truth[:, 1]).astype(int)
    on = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    counted = np.zeros(len(truth), bool)
    counted[on] = area[rows[on], cols[on]]
    points = np.array([(m.x, m.y) for m in found], np.float64).reshape(-1, 2)
    if not len(points) or not len(truth):
        return Recovery(0, int(counted.sum()), len(points), len(points))
    dist = np.hypot(*(truth[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    again = (dist.min(axis=1) <= tolerance) & counted
    spurious = dist.min(axis=0) > tolerance
    return Recovery(int(again.sum()), int(counted.sum()), int(spurious.sum()), len(points))
