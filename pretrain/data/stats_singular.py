"""Singular points by the Poincare index, and the five-class estimate they give.

Rule-based, in the spirit of Karu and Jain: no core -> arch; two cores (or a core and two deltas)
-> whorl; one core -> a loop whose side is given by the delta (or, when the delta lies outside
the print, by the direction in which the loop opens), or a tented arch when the delta sits right
below the core. Crude on noisy or partial prints; it is applied identically to real and synthetic
images, and its accuracy on synthetic prints (known classes) is reported beside the mix.

References:
  Kawagoe, Tojo, "Fingerprint pattern classification", Pattern Recognition 17(3), 1984
  (Poincare index).
  Karu, Jain, "Fingerprint classification", Pattern Recognition 29(3), 1996.
  Bazen, Gerez, IEEE TPAMI 24(7), 2002 (averaged squared gradients; core direction).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CLASSES = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")
SMOOTH_BLOCKS = 1.5  # Gaussian smoothing of the doubled-angle field, in blocks
TENTED_DEGREES = 20.0  # a core-delta line (or loop axis) this close to vertical: tented arch


def smooth_orientation(theta: np.ndarray, sigma: float = SMOOTH_BLOCKS) -> np.ndarray:
    """Averages orientations (radians, [0, pi)) as doubled-angle vectors; returns [0, pi)."""
    c = ndimage.gaussian_filter(np.cos(2 * theta), sigma, mode="nearest")
    s = ndimage.gaussian_filter(np.sin(2 * theta), sigma, mode="nearest")
    return np.mod(0.5 * np.arctan2(s, c), np.pi)


def poincare(theta: np.ndarray) -> np.ndarray:
    """Poincare index of each 2x2 cell of grid points, in half-turns: +1 core, -1 delta, 0 else.

    Orientation differences around the cell are wrapped into [-pi/2, pi/2). Image axes (y down):
    a loop's core sums to +pi.
    """
    ring = [theta[:-1, :-1], theta[:-1, 1:], theta[1:, 1:], theta[1:, :-1]]
    total = np.zeros(ring[0].shape)
    for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
        total += np.mod(b - a + np.pi / 2, np.pi) - np.pi / 2
    return np.rint(total / np.pi).astype(int)


def singular_points(
    theta: np.ndarray, mask: np.ndarray, block: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Cores and deltas ``[(x, y) px, ...]`` inside the foreground.

    Args:
      theta: block orientation field (radians, [0, pi)).
      mask: foreground blocks on the same grid.
      block: block size in pixels, to convert grid to pixel coordinates.

    Returns:
      ``(cores, deltas)``; adjacent detections are merged into their centroid.
    """
    if theta.shape[0] < 4 or theta.shape[1] < 4:
        return [], []
    index = poincare(smooth_orientation(theta))
    # Only cells whose neighbourhood is well inside the print: borders create false points.
    inner = ndimage.binary_erosion(mask, iterations=2)
    cell_ok = inner[:-1, :-1] & inner[:-1, 1:] & inner[1:, 1:] & inner[1:, :-1]
    found = []
    for sign in (1, -1):
        labels, n = ndimage.label((index == sign) & cell_ok, structure=np.ones((3, 3)))
        centres = ndimage.center_of_mass(np.ones_like(labels), labels, range(1, n + 1))
        # Cell (i, j) spans grid points i..i+1; a grid point is a block centre.
        found.append([((c + 1.0) * block, (r + 1.0) * block) for r, c in centres])
    return found[0], found[1]


def core_axis(theta: np.ndarray, core: tuple[float, float], block: int, radius: int = 3) -> float:
    """Direction (radians, image axes, y down) in which a loop opens, seen from its core.

    Around a core the orientation turns by half the polar angle, so exactly one direction has
    ridges running radially: the loop's legs.
    """
    smooth = smooth_orientation(theta)
    phi = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    cx, cy = core[0] / block - 0.5, core[1] / block - 0.5
    cols = np.clip(np.rint(cx + radius * np.cos(phi)).astype(int), 0, theta.shape[1] - 1)
    rows = np.clip(np.rint(cy + radius * np.sin(phi)).astype(int), 0, theta.shape[0] - 1)
    return float(phi[np.argmax(np.cos(2 * (smooth[rows, cols] - phi)))])


def classify(
    cores: list[tuple[float, float]],
    deltas: list[tuple[float, float]],
    theta: np.ndarray,
    block: int,
) -> str:
    """One of :data:`CLASSES` or ``"unknown"`` from the singular points (see module doc)."""
    if not cores:
        return "arch" if not deltas else "unknown"
    if len(cores) >= 2 or len(deltas) >= 2:
        return "whorl"
    limit = np.sin(np.radians(TENTED_DEGREES))
    (cx, cy) = cores[0]
    if deltas:
        dx, dy = deltas[0][0] - cx, deltas[0][1] - cy
        if dy > 0 and abs(dx) < limit * np.hypot(dx, dy):
            return "tented_arch"
        return "left_loop" if dx > 0 else "right_loop"
    phi = core_axis(theta, cores[0], block)
    ax, ay = np.cos(phi), np.sin(phi)
    if ay > 0 and abs(ax) < limit:
        return "tented_arch"
    return "left_loop" if ax < 0 else "right_loop"
