"""The int8 grid a compressed kernel is stored on, so the int8 model holds exactly its weights.

LiteRT stores a kernel int8 with one symmetric scale per output channel, ``scale = max|w| / 127``
(the converter's weight quantization, and :func:`export.artifact.flatbuffer.quantize_per_channel`
for the wider scopes' starting kernels). :func:`snap` puts every weight of a decoded Deep
Compression kernel on that grid: per output channel (the last axis), the scale of its largest
weight, then each weight rounded to a multiple of it. A channel's shared values (the k-means
centroids its weights use) each land on the channel's grid, so the weights keep at most one
distinct value per centroid, and the converter, quantizing the snapped kernel, writes exactly
``q`` and ``scale``: ``q * scale`` read back from the model equals the snapped kernel, bit for bit.

One float subtlety: the converter recomputes the scale from the snapped maximum,
``float32(float32(127 * s) / 127)``, which for some ``s`` is one ulp away from ``s``.
:func:`fixed_scales` moves each scale to a value that maps to itself (a few ulps at most), so the
recomputed scale is the one the weights were snapped with.

Numpy only: the device's bundle decoder (:mod:`devices.bundle.download`) snaps the decoded
kernels with the same function the server built the model from.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

LEVELS = 127  # symmetric int8: -127..127
_MAX_NUDGES = 64


class Snapped(NamedTuple):
    """A kernel on its int8 grid: ``weights == q * scales`` (float32, broadcast on the last axis)."""

    weights: np.ndarray
    q: np.ndarray
    scales: np.ndarray


def _roundtrip(s: np.ndarray) -> np.ndarray:
    levels = np.float32(LEVELS)
    return ((s * levels).astype(np.float32) / levels).astype(np.float32)


def fixed_scales(max_abs: np.ndarray) -> np.ndarray:
    """Per-channel scales near ``max_abs / 127`` with ``float32(float32(127 s) / 127) == s``."""
    s = (np.asarray(max_abs, np.float32) / np.float32(LEVELS)).astype(np.float32)
    for _ in range(_MAX_NUDGES):
        bad = (_roundtrip(s) != s) & (s > 0)
        if not bad.any():
            return s
        s = np.where(bad, np.nextafter(s, np.float32(np.inf)), s).astype(np.float32)
    raise ArithmeticError("no int8 scale maps to itself near the channel maxima")  # unreachable


def snap(kernel: np.ndarray) -> Snapped:
    """``kernel`` on its per-output-channel (last axis) symmetric int8 grid (module docstring)."""
    w = np.asarray(kernel, np.float32)
    flat = w.reshape(-1, w.shape[-1])
    scales = fixed_scales(np.abs(flat).max(axis=0))
    safe = np.where(scales > 0, scales, np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(flat / safe), -LEVELS, LEVELS).astype(np.int8)
    # The largest weight of a channel sits at +-127 exactly: the converter recomputes its scale
    # from that weight, float32(127 * s), and fixed_scales made that map back to s.
    weights = (q.astype(np.float32) * scales).astype(np.float32)
    return Snapped(weights.reshape(w.shape), q.reshape(w.shape), scales)
