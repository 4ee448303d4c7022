"""Where a print's ridges can be read, in numpy: the mask the minutiae matcher scores over.

The minutiae matcher (:mod:`devices.minutiae_match`) counts against a pair of prints only the
minutiae each could show of the other: those that its alignment carries into the other print's
readable region. This module computes that region as :func:`pretrain.data.minutiae.print_mask`
does (which the matcher's figures were measured with), in numpy alone, so that the phone
repeats it: the block foreground of :func:`devices.preprocess.foreground_blocks` (16-px blocks,
closed and with its holes filled), less what does not look like ridges (the coherence of the
band-passed print's structure tensor below :data:`MIN_COHERENCE`, unless enclosed: a core, a
delta or a smudge inside the print), eroded by :data:`EDGE_PX`. A test holds the two to the
same pixels, up to the rounding of floats at the thresholds.

References:
  Bazen, Gerez, "Systematic methods for the computation of the directional fields and singular
  points of fingerprints", TPAMI 24(7), 2002 (coherence of the structure tensor).
  Handbook of Fingerprint Recognition, 2nd ed., sec. 3.5 (segmentation by local variance).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from devices.preprocess import FINGERPRINT_SPEC, foreground_blocks

BLOCK = 16  # px: the foreground's blocks
EDGE_PX = 16  # the foreground is eroded this far: ridges fade at the print's edge
BAND_SIGMAS = (1.0, 4.0)  # px: difference of Gaussians around ridge periods of 6-14 px
QUALITY_SIGMA = 12.0  # px: the structure tensor's averaging, a few ridge periods
MIN_COHERENCE = 0.3  # below it (holes aside) the foreground is noise, not ridges
TRUNCATE = 4.0  # a Gaussian's kernel reaches this many sigmas (as scipy.ndimage's)


class ReadableError(ValueError):
    """A print that is not a 2-D image."""


def _along(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """``x`` correlated with a centred odd ``kernel`` along ``axis``, the edges mirrored
    (``d c b a | a b c d``, scipy.ndimage's "reflect"): one product of the padded rows' windows
    (a view) with the kernel, taken along the first axis (windows across contiguous rows: 5x
    faster than along the last)."""
    r = len(kernel) // 2
    p = np.pad(np.moveaxis(x, axis, 0), [(r, r)] + [(0, 0)] * (x.ndim - 1), mode="symmetric")
    windows = np.lib.stride_tricks.sliding_window_view(p, len(kernel), axis=0)
    return np.ascontiguousarray(np.moveaxis(windows @ kernel, 0, axis))


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """``x`` smoothed by a Gaussian of ``sigma`` px (separable; scipy.ndimage.gaussian_filter's
    kernel and edges)."""
    r = int(TRUNCATE * sigma + 0.5)
    t = np.arange(-r, r + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    return _along(_along(x, kernel, 0), kernel, 1)


def _sobel(x: np.ndarray, axis: int) -> np.ndarray:
    """scipy.ndimage.sobel: the derivative along ``axis``, smoothed 1-2-1 across it."""
    derivative, smooth = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0])
    return _along(_along(x, derivative, axis), smooth, 1 - axis)


def coherence(gray: np.ndarray) -> np.ndarray:
    """Pixel coherence in [0, 1] of the band-passed print's structure tensor averaged over
    :data:`QUALITY_SIGMA` (1: parallel ridges, 0: no direction)."""
    x = np.asarray(gray, np.float64)
    band = gaussian(x, BAND_SIGMAS[0]) - gaussian(x, BAND_SIGMAS[1])
    gx, gy = _sobel(band, 1), _sobel(band, 0)
    gxx, gyy, gxy = (gaussian(g, QUALITY_SIGMA) for g in (gx * gx, gy * gy, gx * gy))
    return np.hypot(gxx - gyy, 2 * gxy) / np.maximum(gxx + gyy, 1e-9)


def _cross_grown(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel to its 4 neighbours."""
    p = np.pad(mask, 1)
    return p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every region it encloses filled: what of its complement the frame cannot
    reach through 4-connected steps (scipy.ndimage.binary_fill_holes)."""
    free = ~mask
    edge = np.zeros_like(mask)
    edge[[0, -1], :], edge[:, [0, -1]] = True, True
    reach = free & edge
    while True:  # a few sweeps: each carries the reach along whole runs of rows, then columns
        grown = _along_runs(_along_runs(reach.T, free.T).T, free)
        if np.array_equal(grown, reach):
            return ~reach
        reach = grown


def _along_runs(reach: np.ndarray, free: np.ndarray) -> np.ndarray:
    """``reach`` (within ``free``) grown to the whole of every run of ``free`` pixels along a row
    that it touches: what 4-connected steps along the row reach."""
    starts = free & ~np.pad(free, ((0, 0), (1, 0)))[:, :-1]
    run = np.cumsum(starts.ravel()).reshape(free.shape) * free  # 0 outside free pixels
    touched = np.zeros(int(run.max()) + 1, bool)
    touched[run[reach]] = True
    touched[0] = False
    return touched[run]


def _closed(blocks: np.ndarray) -> np.ndarray:
    """The block map closed by the 4-neighbour cross, the map's edge replicated first (as
    :func:`pretrain.data.stats.foreground_mask` does) and the closing's border counted as
    outside."""
    p = np.pad(blocks, 1, mode="edge")
    grown = _cross_grown(p)
    shrunk = ~_cross_grown(~grown)
    shrunk[[0, -1], :], shrunk[:, [0, -1]] = False, False  # scipy's erosion: border_value 0
    return shrunk[1:-1, 1:-1]


def foreground(gray: np.ndarray) -> np.ndarray:
    """Pixel foreground: :func:`devices.preprocess.foreground_blocks` at :data:`BLOCK`-px
    blocks, closed and with its holes filled (the frame's partial blocks are background)."""
    spec = dataclasses.replace(FINGERPRINT_SPEC, foreground_block=BLOCK)
    blocks = foreground_blocks(gray, spec)
    out = np.zeros(gray.shape, bool)
    if blocks.size:
        up = np.repeat(np.repeat(fill_holes(_closed(blocks)), BLOCK, 0), BLOCK, 1)
        out[: up.shape[0], : up.shape[1]] = up
    return out


def inside_margin(mask: np.ndarray, margin: float) -> np.ndarray:
    """The mask's pixels at least ``margin`` px from its nearest outside pixel (the frame counts
    as outside): no outside pixel lies nearer than ``margin``."""
    h, w = mask.shape
    r = int(np.ceil(margin))
    p = np.pad(mask, r + 1)  # the frame, and beyond, is outside
    outside = np.cumsum(np.pad(~p, ((0, 0), (1, 0))), axis=1, dtype=np.int32)  # row prefixes
    keep = np.ones((h, w), bool)
    for dy in range(-r, r + 1):
        if dy * dy >= margin * margin:
            continue
        reach = int(np.ceil(np.sqrt(margin * margin - dy * dy))) - 1  # |dx| below the margin
        rows = outside[r + 1 + dy : r + 1 + dy + h]
        lo = r + 1 - reach  # the window of column x: prefixes x + lo .. x + lo + 2 reach + 1
        keep &= rows[:, lo + 2 * reach + 1 : lo + 2 * reach + 1 + w] == rows[:, lo : lo + w]
    return keep


def readable_mask(gray: np.ndarray) -> np.ndarray:
    """Boolean ``(h, w)``: the pixels of a uint8 500 dpi print where ridges can be read (the
    module's recipe).

    Raises:
      ReadableError: ``gray`` is not 2-D, or empty.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise ReadableError(f"expected a 2-D grayscale print, got shape {gray.shape}.")
    mask = foreground(gray) & fill_holes(coherence(gray) > MIN_COHERENCE)
    return inside_margin(mask, EDGE_PX)
