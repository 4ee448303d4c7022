"""Genuine-pair statistics: how far apart two impressions of one finger lie, and how much of that
the device's core registration takes out.

Each pair of impressions of one finger is aligned by :func:`pretrain.data.best_alignment`
(band-passed prints, normalised correlation inside the overlap of their ridge areas, rotations
of +-30 deg): once on the raw prints at half resolution (where the finger was placed), once on
the model inputs after a registration (what is left for the network): by default the learned
anchor's (``ANCHOR_SPEC``, what the committed backbone and the device use), or the symmetry
filter's core (``CORE_SPEC``). The same code
runs on the generator's output and on the FVC sets, so a difference is in the prints and the
registration's behaviour on them, not in the measurement. A large residual means the two
impressions were registered on different points: the network then compares two different parts
of the finger.

:func:`anchor_agreement` asks the same of the learned anchor directly, without a second
alignment: one impression's anchor carried into the other through the raw prints' alignment
lands how far from the other's own anchor, and would the localiser's second-best peak have
agreed where the best did not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from devices.localiser import (
    ANCHOR_SPEC,
    PEAK_SEPARATION,
    Localiser,
    cell_centre,
    localiser_input,
    peaks,
    shipped,
)
from devices.preprocess import PreprocessSpec, preprocess_image, to_gray_u8
from devices.registration import CORE_SPEC
from pretrain.data.stats import spread
from pretrain.data.stats_match import Alignment, best_alignment

ANGLES = tuple(range(-30, 31, 3))
# A residual beyond a quarter of the 256 px registered window: far outside the backbone's
# training translations (8% of the window) and the core's measured placement error (median
# 5.7 px, p90 10.1 px on the synthetic dev prints; notebooks/results/fingerprint_ablation.md).
MISREGISTERED_PX = 64
PAIRS = 140  # genuine pairs sampled per source (an FVC B set has 280)
ANY_SHIFT = 10_000  # px: no bound on the shift; only the overlap requirement limits it

REGISTRATIONS = {"anchor": ANCHOR_SPEC, "core": CORE_SPEC}  # by crop; the first is the device's
Prepared = tuple[np.ndarray, np.ndarray]  # (band-passed print, its ridge-area support)


def _band(x: np.ndarray) -> Prepared:
    """Difference of Gaussians around the ridge frequency, and where it has ridge energy."""
    band = ndimage.gaussian_filter(x, 0.8) - ndimage.gaussian_filter(x, 3.0)
    energy = ndimage.uniform_filter(band**2, 8)
    return band, energy > 0.2 * np.percentile(energy, 95)


def raw_half(image: np.ndarray) -> Prepared:
    """A raw print at half resolution (250 dpi: a ridge period is still 4-5 px), band-passed."""
    gray = to_gray_u8(image).astype(np.float64)
    h, w = gray.shape[0] // 2 * 2, gray.shape[1] // 2 * 2
    return _band(gray[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))


def registered(image: np.ndarray, spec: PreprocessSpec = ANCHOR_SPEC) -> Prepared:
    """The model's registered input window (``spec``: 128x128 at 250 dpi), band-passed."""
    return _band(preprocess_image(image, spec)[..., 0].astype(np.float64))


def _padded(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, x.dtype)
    out[: x.shape[0], : x.shape[1]] = x
    return out


def align(a: Prepared, b: Prepared, *, max_shift: int) -> Alignment:
    """The best alignment of two prepared prints (padded to one shape; overlap >= 20% of the
    smaller ridge area)."""
    shape = (max(a[0].shape[0], b[0].shape[0]), max(a[0].shape[1], b[0].shape[1]))
    return best_alignment(
        _padded(a[0], shape),
        _padded(b[0], shape),
        angles=ANGLES,
        max_shift=max_shift,
        min_overlap=0.2 * min(a[1].sum(), b[1].sum()),
        mask_a=_padded(a[1], shape),
        mask_b=_padded(b[1], shape),
    )


def genuine_pairs(
    owners: Sequence[int], count: int = PAIRS, seed: int = 0
) -> list[tuple[int, int]]:
    """``count`` pairs of indices with the same owner, sampled without replacement (all if fewer)."""
    groups: dict[int, list[int]] = {}
    for index, owner in enumerate(owners):
        groups.setdefault(int(owner), []).append(index)
    pairs = [p for g in groups.values() for p in itertools.combinations(g, 2)]
    if len(pairs) <= count:
        return pairs
    chosen = np.random.default_rng(seed).choice(len(pairs), count, replace=False)
    return [pairs[k] for k in sorted(chosen)]


def _alignments(
    images: Sequence[np.ndarray],
    pairs: Sequence[tuple[int, int]],
    prepare: Callable[[np.ndarray], Prepared],
    max_shift: int,
) -> dict[tuple[int, int], Alignment]:
    """Each pair's alignment (:func:`align`), keyed by the pair."""
    used = sorted({k for p in pairs for k in p})
    prepared = {k: prepare(images[k]) for k in used}
    return {(i, j): align(prepared[i], prepared[j], max_shift=max_shift) for i, j in pairs}


def pair_stats(
    images: Sequence[np.ndarray],
    owners: Sequence[int],
    *,
    count: int = PAIRS,
    seed: int = 0,
    spec: PreprocessSpec = ANCHOR_SPEC,
) -> dict[str, Any]:
    """Genuine-pair statistics of one source, in 500 dpi pixels and degrees.

    Returns:
      ``pair_shift_px`` (how far apart the finger was placed), ``pair_rotation_deg`` (absolute),
      ``pair_residual_px`` (what ``spec``'s registration leaves), ``misregistered_fraction`` (the
      share of pairs with a residual over :data:`MISREGISTERED_PX`), ``pair_overlap_fraction``
      (the registered windows' common ridge area, as a fraction of the window), ``pairs`` and
      ``registration`` (``spec``'s crop).
    """
    pairs = _pairs(owners, count, seed)
    raw = _alignments(images, pairs, raw_half, max_shift=ANY_SHIFT)
    return {
        "pairs": len(pairs),
        "pair_shift_px": spread([2 * float(np.hypot(r.dx, r.dy)) for r in raw.values()]),
        "pair_rotation_deg": spread([abs(r.degrees) for r in raw.values()]),
        **_residual(images, pairs, spec),
        **(_agreement(images, raw, shipped()) if spec.crop == "anchor" else {}),
    }


def residual_stats(
    images: Sequence[np.ndarray],
    owners: Sequence[int],
    *,
    count: int = PAIRS,
    seed: int = 0,
    spec: PreprocessSpec = ANCHOR_SPEC,
) -> dict[str, Any]:
    """:func:`pair_stats`' figures of what ``spec``'s registration leaves (``registration``,
    ``pair_residual_px``, ``misregistered_fraction``, ``pair_overlap_fraction``), without the
    raw prints' alignment: the same pairs measured under another registration."""
    return _residual(images, _pairs(owners, count, seed), spec)


def _residual(
    images: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]], spec: PreprocessSpec
) -> dict[str, Any]:
    reg = list(
        _alignments(images, pairs, lambda x: registered(x, spec), max_shift=ANY_SHIFT).values()
    )
    window = spec.input_size[0] * spec.input_size[1]
    residual = [2 * float(np.hypot(r.dx, r.dy)) for r in reg]  # the inputs are at 250 dpi
    return {
        "registration": spec.crop,
        "pair_residual_px": spread(residual),
        "misregistered_fraction": float(np.mean([v > MISREGISTERED_PX for v in residual])),
        "pair_overlap_fraction": spread([r.overlap / window for r in reg]),
    }


def carried(point: tuple[float, float], found: Alignment, shape: tuple[int, int]) -> np.ndarray:
    """Where ``point`` (row, col) of the first print of an :func:`align`-ed pair lies in the
    second, in the same pixels: the second print turned by ``found.degrees`` about the centre of
    the common ``shape`` and moved by ``(found.dy, found.dx)`` lies on the first, so the point is
    moved back and turned back."""
    c = (np.asarray(shape, np.float64) - 1) / 2
    y, x = np.asarray(point, np.float64) + np.array([found.dy, found.dx]) - c
    t = np.deg2rad(-found.degrees)  # ndimage.rotate's sense, undone
    return c + np.array([y * np.cos(t) - x * np.sin(t), y * np.sin(t) + x * np.cos(t)])


def anchor_peaks(
    gray: np.ndarray, localiser: Localiser, count: int = 2, separation: int = PEAK_SEPARATION
) -> np.ndarray:
    """``(count, 2)`` (row, col) px: the learned anchor (the heatmap's best block, as
    :meth:`devices.localiser.Localiser.locate`), then the best blocks at least ``separation``
    blocks from every earlier one (:func:`devices.localiser.peaks`)."""
    found = peaks(localiser.heatmap(localiser_input(gray)), count, separation)
    return np.asarray([cell_centre(i, j) for i, j, _ in found], np.float64)


def anchor_agreement(
    images: Sequence[np.ndarray],
    owners: Sequence[int],
    *,
    count: int = PAIRS,
    seed: int = 0,
    localiser: Localiser | None = None,
) -> dict[str, Any]:
    """Does the learned anchor land on the same point of the finger in two impressions?

    For each genuine pair (:func:`pair_stats`' pairs), the first impression's anchor carried
    into the second through the raw prints' alignment (:func:`carried`), against the second's
    own anchor, in 500 dpi px.

    Returns:
      ``anchor_gap_px`` (the distances' spread), ``anchors_apart_fraction`` (the share of pairs
      more than :data:`MISREGISTERED_PX` apart) and ``second_peak_agrees_fraction`` (of those, the
      share where some pair of the two impressions' two best peaks lies within it: what a second
      registration hypothesis could recover at most; 0 when no pair is apart).
    """
    pairs = _pairs(owners, count, seed)
    raw = _alignments(images, pairs, raw_half, max_shift=ANY_SHIFT)
    return _agreement(images, raw, localiser or shipped())


def _agreement(
    images: Sequence[np.ndarray], raw: dict[tuple[int, int], Alignment], localiser: Localiser
) -> dict[str, Any]:
    used = sorted({k for p in raw for k in p})
    grays = {k: to_gray_u8(images[k]) for k in used}
    peaks = {k: anchor_peaks(grays[k], localiser) for k in used}
    gaps, second = [], []
    for (i, j), found in raw.items():
        shape = tuple(max(a, b) // 2 for a, b in zip(grays[i].shape, grays[j].shape, strict=True))
        gap = [
            float(np.hypot(*(2 * carried(p / 2, found, shape) - q)))
            for p in peaks[i]
            for q in peaks[j]
        ]
        gaps.append(gap[0])
        if gap[0] > MISREGISTERED_PX:
            second.append(min(gap) <= MISREGISTERED_PX)
    return {
        "anchor_gap_px": spread(gaps),
        "anchors_apart_fraction": float(np.mean([g > MISREGISTERED_PX for g in gaps])),
        "second_peak_agrees_fraction": float(np.mean(second)) if second else 0.0,
    }


def _pairs(owners: Sequence[int], count: int, seed: int) -> list[tuple[int, int]]:
    pairs = genuine_pairs(owners, count, seed)
    if not pairs:
        raise ValueError("no two impressions share an owner: no genuine pairs to measure.")
    return pairs
