"""Fingerprint image statistics, to check synthetic prints against real ones.

Measured per image (uint8 grayscale at 500 dpi), then summarised over a set: ridge period (px),
orientation coherence, foreground area, intensity histogram and, via singular points, the class.
The same code runs on the generator's output and on the FVC sets, so differences are in the
images, not in the measurement.

References:
  Bazen, Gerez, "Systematic methods for the computation of the directional fields and singular
  points of fingerprints", IEEE TPAMI 24(7), 2002 (structure tensor, coherence).
  Hong, Wan, Jain, "Fingerprint image enhancement: algorithm and performance evaluation",
  IEEE TPAMI 20(8), 1998 (local ridge frequency).
  Handbook of Fingerprint Recognition, 2nd ed., 2009, sec. 3.2-3.5.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from devices.preprocess import FINGERPRINT_SPEC, foreground_blocks
from devices.registration import BLOCK as REGISTRATION_BLOCK
from devices.registration import RegistrationConfig, orientation_vectors, pose_from_vectors
from pretrain.data.stats_singular import (
    CLASSES,
    classify,
    core_axis,
    singular_points,
    smooth_orientation,
)

BLOCK = 16  # foreground and coherence blocks (px)
PERIOD_WINDOW = 64  # spectral window for the ridge period (px)
PERIOD_RANGE = (3.0, 25.0)  # periods considered (px)
HIST_BINS = 16
FLOW_RADIUS = 160.0  # px around a core where the flow statistics look
FLOW_GAP = 40.0  # px: blocks this near the core's row are neither above nor below it
FLOW_COHERENCE = 0.3  # blocks below it are too unsure of their orientation to count
STEEP_DEGREES = 30.0  # ridges this close to vertical are steep


@dataclasses.dataclass(frozen=True)
class PrintStats:
    """Statistics of one image.

    Attributes:
      period_px: median local ridge period over foreground windows (NaN if none).
      coherence: mean orientation coherence over foreground blocks, in [0, 1].
      foreground_px: foreground area in pixels (block segmentation).
      foreground_fraction: foreground area / image area.
      mean: mean intensity of the whole image.
      std: intensity standard deviation of the whole image.
      histogram: ``HIST_BINS`` fractions of pixels over [0, 256).
      cores: number of detected cores.
      deltas: number of detected deltas.
      fp_class: class estimated from the singular points (see ``stats_singular.classify``).
      core_strength: the device's registration: its core's symmetry response, in 1/1000 of
        a perfect core's (:func:`devices.registration.estimate_pose`).
      core_edge_px: how far that core lies inside the print: its distance to the nearest block
        outside the orientation field's foreground or the frame, in px (block centres).
      loop_axis_deg: where a print with one core opens, seen from it (degrees, image axes: 90
        is straight down); NaN without exactly one core.
      steep_below_core: of the coherent foreground blocks 40-160 px below that core (within
        :data:`FLOW_RADIUS`), the share whose ridges run within 30 degrees of vertical: a
        loop's legs; NaN without exactly one core or such blocks.
      delta_distance_px: with one core, how far its nearest delta lies (px); NaN without exactly
        one core or without a delta.
      delta_angle_deg: that delta's direction below the horizontal through the core (degrees;
        90 is straight below, 0 level with it, negative above); NaN likewise.
    """

    period_px: float
    coherence: float
    foreground_px: int
    foreground_fraction: float
    mean: float
    std: float
    histogram: tuple[float, ...]
    cores: int
    deltas: int
    fp_class: str
    core_strength: int
    core_edge_px: float
    loop_axis_deg: float = float("nan")
    steep_below_core: float = float("nan")
    delta_distance_px: float = float("nan")
    delta_angle_deg: float = float("nan")


def foreground_mask(gray: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Block foreground map (the same segmentation as the fingerprint preprocessing crop)."""
    spec = dataclasses.replace(FINGERPRINT_SPEC, foreground_block=block)
    mask = foreground_blocks(gray, spec)
    if not mask.size:
        return mask
    # Ridges are periodic, so a block in a valley-free area (or a pore) can drop out: close holes.
    # Padding by edge replication keeps the closing from eating blocks at the image border.
    padded = np.pad(mask, 1, mode="edge")
    closed = ndimage.binary_closing(padded, iterations=1)[1:-1, 1:-1]
    return ndimage.binary_fill_holes(closed)


def structure_tensor(gray: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-block sums ``(gxx, gyy, gxy)`` of the gradient outer product (whole blocks only)."""
    img = ndimage.gaussian_filter(gray.astype(np.float32), 1.0)
    gx = ndimage.sobel(img, axis=1)
    gy = ndimage.sobel(img, axis=0)
    nh, nw = gray.shape[0] // block, gray.shape[1] // block

    def sums(a: np.ndarray) -> np.ndarray:
        return a[: nh * block, : nw * block].reshape(nh, block, nw, block).sum(axis=(1, 3))

    return sums(gx * gx), sums(gy * gy), sums(gx * gy)


def orientation_and_coherence(
    gray: np.ndarray, block: int = BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Block ridge orientation (radians in [0, pi), image axes: x right, y down) and coherence.

    Coherence is ``|(gxx - gyy, 2 gxy)| / (gxx + gyy)``: 1 for parallel ridges, 0 for isotropic
    texture (Bazen and Gerez 2002).
    """
    gxx, gyy, gxy = structure_tensor(gray, block)
    # The gradient's doubled angle; ridges run perpendicular to it.
    theta = 0.5 * np.arctan2(2 * gxy, gxx - gyy) + np.pi / 2
    energy = gxx + gyy
    coherence = np.hypot(gxx - gyy, 2 * gxy) / np.maximum(energy, 1e-9)
    return np.mod(theta, np.pi), coherence


def _all_foreground(mask: np.ndarray, row: int, col: int, size: int) -> bool:
    if row < 0 or col < 0 or row + size > mask.shape[0] or col + size > mask.shape[1]:
        return False
    return bool(mask[row : row + size, col : col + size].all())


def ridge_periods(gray: np.ndarray, mask: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Local ridge periods (px) from the spectral peak of Hann-windowed 64x64 foreground windows.

    Windows step by 32 px; one is used when the 32x32 square at its centre is all foreground.
    The peak is refined by a Gaussian (log-parabolic) fit in each frequency axis.
    """
    n = PERIOD_WINDOW
    h, w = gray.shape
    step = n // 2
    b0, b1 = step // 2 // block, (step + step // 2) // block  # the centre square, in blocks
    centres = [
        (r, c)
        for r in range(n // 2, h - n // 2 + 1, step)
        for c in range(n // 2, w - n // 2 + 1, step)
        if _all_foreground(mask, (r - n // 2) // block + b0, (c - n // 2) // block + b0, b1 - b0)
    ]
    if not centres:
        return np.zeros(0)
    img = gray.astype(np.float32)
    windows = np.stack([img[r - n // 2 : r + n // 2, c - n // 2 : c + n // 2] for r, c in centres])
    windows -= windows.mean(axis=(1, 2), keepdims=True)
    hann = np.hanning(n).astype(np.float32)
    power = np.abs(np.fft.fftshift(np.fft.fft2(windows * np.outer(hann, hann)), axes=(1, 2))) ** 2
    k = np.arange(n) - n // 2
    radius = np.hypot(k[:, None], k[None, :])
    band = (radius >= n / PERIOD_RANGE[1]) & (radius <= n / PERIOD_RANGE[0])
    flat = np.where(band, power, 0.0).reshape(len(centres), -1)
    peak = flat.argmax(axis=1)
    py, px = np.divmod(peak, n)
    log_p = np.log(power + 1e-12)
    idx = np.arange(len(centres))

    def refine(centre: np.ndarray, minus: np.ndarray, plus: np.ndarray) -> np.ndarray:
        denom = minus - 2 * centre + plus
        return np.where(
            np.abs(denom) > 1e-9, 0.5 * (minus - plus) / np.where(denom == 0, 1, denom), 0.0
        )

    py_c, px_c = np.clip(py, 1, n - 2), np.clip(px, 1, n - 2)
    dy = refine(log_p[idx, py_c, px_c], log_p[idx, py_c - 1, px_c], log_p[idx, py_c + 1, px_c])
    dx = refine(log_p[idx, py_c, px_c], log_p[idx, py_c, px_c - 1], log_p[idx, py_c, px_c + 1])
    freq = np.hypot(py_c + np.clip(dy, -0.5, 0.5) - n // 2, px_c + np.clip(dx, -0.5, 0.5) - n // 2)
    return n / np.maximum(freq, 1e-6)


def measure(gray: np.ndarray) -> PrintStats:
    """All statistics of one uint8 grayscale fingerprint image (500 dpi)."""
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (h, w) image, got {gray.dtype} {gray.shape}.")
    mask = foreground_mask(gray)
    _, coherence = orientation_and_coherence(gray)
    periods = ridge_periods(gray, mask)
    # Singular points need a finer grid than the 16-px statistics blocks.
    fine = BLOCK // 2
    theta_fine, _ = orientation_and_coherence(gray, fine)
    mask_fine = np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)[
        : theta_fine.shape[0], : theta_fine.shape[1]
    ]
    mask_fine = np.pad(
        mask_fine,
        [
            (0, theta_fine.shape[0] - mask_fine.shape[0]),
            (0, theta_fine.shape[1] - mask_fine.shape[1]),
        ],
    )
    cores, deltas = singular_points(theta_fine, mask_fine, fine)
    hist = np.bincount(gray.ravel() // (256 // HIST_BINS), minlength=HIST_BINS) / gray.size
    fg_px = int(mask.sum()) * BLOCK * BLOCK
    return PrintStats(
        period_px=float(np.median(periods)) if periods.size else float("nan"),
        coherence=float(coherence[mask].mean()) if mask.any() else float("nan"),
        foreground_px=fg_px,
        foreground_fraction=fg_px / gray.size,
        mean=float(gray.mean()),
        std=float(gray.std()),
        histogram=tuple(float(v) for v in hist),
        cores=len(cores),
        deltas=len(deltas),
        fp_class=classify(cores, deltas, theta_fine, fine),
        **registered_core(gray),
        **_flow_around_core(gray, mask, cores, theta_fine, fine),
        **_delta_from_core(cores, deltas),
    )


def _flow_around_core(
    gray: np.ndarray,
    mask: np.ndarray,
    cores: list[tuple[float, float]],
    theta_fine: np.ndarray,
    fine: int,
) -> dict[str, Any]:
    """The loop's axis and the share of steep ridges below a print's single core (the flow
    statistics of :class:`PrintStats`)."""
    if len(cores) != 1:
        return {}
    axis = float(np.degrees(core_axis(theta_fine, cores[0], fine, radius=6)) % 360)
    theta, coherence = orientation_and_coherence(gray)
    theta = smooth_orientation(theta, 1.0)
    rows, cols = (np.indices(theta.shape) + 0.5) * BLOCK
    cx, cy = cores[0]
    below = (
        mask[: theta.shape[0], : theta.shape[1]]
        & (coherence > FLOW_COHERENCE)
        & (np.hypot(cols - cx, rows - cy) < FLOW_RADIUS)
        & (rows > cy + FLOW_GAP)
    )
    steep = np.abs(np.cos(theta[below])) < np.sin(np.radians(STEEP_DEGREES))
    return {
        "loop_axis_deg": axis,
        "steep_below_core": float(steep.mean()) if below.any() else float("nan"),
    }


def _delta_from_core(
    cores: list[tuple[float, float]], deltas: list[tuple[float, float]]
) -> dict[str, Any]:
    """Where a print's single core's nearest delta lies from it (the statistics of
    :class:`PrintStats`)."""
    if len(cores) != 1 or not deltas:
        return {}
    offsets = np.asarray(deltas, float) - np.asarray(cores[0], float)
    dx, dy = offsets[np.argmin(np.hypot(*offsets.T))]
    return {
        "delta_distance_px": float(np.hypot(dx, dy)),
        "delta_angle_deg": float(np.degrees(np.arctan2(dy, abs(dx)))),
    }


def registered_core(gray: np.ndarray) -> dict[str, Any]:
    """Where the device's registration finds the core: its strength and its depth in the print."""
    config = RegistrationConfig()
    vx, vy = orientation_vectors(gray, smooth=config.smooth)
    pose = pose_from_vectors(gray, vx, vy, config)
    inside = np.pad((vx != 0) | (vy != 0), 1)  # the frame counts as outside
    depth = ndimage.distance_transform_edt(inside)[1:-1, 1:-1]
    row = min(pose.row // REGISTRATION_BLOCK, depth.shape[0] - 1)
    col = min(pose.col // REGISTRATION_BLOCK, depth.shape[1] - 1)
    return {
        "core_strength": pose.strength,
        "core_edge_px": float(REGISTRATION_BLOCK * depth[row, col]),
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, p10, p90 and mean of the finite values (NaN when there are none)."""
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    if v.size == 0:
        return {"median": float("nan"), "p10": float("nan"), "p90": float("nan")}
    p10, median, p90 = np.percentile(v, [10, 50, 90])
    return {"median": float(median), "p10": float(p10), "p90": float(p90), "mean": float(v.mean())}


def summarise(
    stats: Iterable[PrintStats], true_classes: Sequence[str] | None = None
) -> dict[str, Any]:
    """Set-level summary: median / p10 / p90 of each scalar, mean histogram, class mix.

    Args:
      stats: per-image statistics.
      true_classes: the known class of each image (synthetic prints), to report the true mix
        and the accuracy of the singular-point estimate beside it.

    Returns:
      A JSON-ready dict.
    """
    items = list(stats)
    if not items:
        raise ValueError("no images to summarise.")
    out: dict[str, Any] = {"images": len(items)}
    scalars = (
        "period_px",
        "coherence",
        "foreground_px",
        "foreground_fraction",
        "mean",
        "std",
        "core_strength",
        "core_edge_px",
        "loop_axis_deg",
        "steep_below_core",
        "delta_distance_px",
        "delta_angle_deg",
    )
    for name in scalars:
        out[name] = spread([float(getattr(s, name)) for s in items])
    out["histogram"] = np.mean([s.histogram for s in items], axis=0).round(5).tolist()
    out["histogram_bins"] = [int(b) for b in range(0, 257, 256 // HIST_BINS)]
    estimated = [s.fp_class for s in items]
    out["class_mix_estimated"] = {c: estimated.count(c) / len(items) for c in (*CLASSES, "unknown")}
    if true_classes is not None:
        out["class_mix_true"] = {c: list(true_classes).count(c) / len(items) for c in CLASSES}
        hits = sum(e == t for e, t in zip(estimated, true_classes, strict=True))
        out["class_estimate_accuracy"] = hits / len(items)
    return out
