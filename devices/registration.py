"""Fingerprint pose registration: find the core and its direction, cut a window aligned to them.

Numpy only and integer arithmetic throughout (gradients, orientation tensors, the symmetry filter,
the core search, the angle choice and the bilinear warp in fixed point), so the phone repeats
the server's result bit for bit: the same uint8 print gives the same uint8 window on any machine.

Steps, one function each:

1. :func:`orientation_vectors` - per 8x8 block, the doubled-angle orientation tensor
   ``(sum gx^2 - gy^2, sum 2 gx gy)`` of Sobel gradients, summed over ``smooth x smooth`` blocks,
   quantised to a unit vector (Q10) on :data:`DIRECTIONS` directions; zero outside the
   foreground (local-variance segmentation, as in :mod:`devices.preprocess`).
2. :func:`symmetry_response` - the parabolic-symmetry filter ``(x - iy) g(x, y)`` (g binomial)
   correlated with that field: its magnitude peaks at a core (a loop's turning point) and its
   phase is the core's direction, which turns by exactly the angle the print turns.
3. :func:`estimate_pose` - the strongest response inside the eroded foreground is the core;
   if it is weaker than ``min_strength`` of the filter's maximum (an arch, a smudge), the pose
   falls back to the foreground centroid with no rotation.
4. :func:`warp_window` - the ``size`` window with the core at ``core_at``, turned so the core
   points along :data:`UPRIGHT_DEGREES`, by integer bilinear interpolation; outside the print it
   is the background level.

References:
  Nilsson, Bigun, "Localization of corresponding points in fingerprints by complex filtering",
  Pattern Recognition Letters 24(13), 2003 (parabolic symmetry filters on the orientation
  tensor field; core position and direction).
  Maltoni, Maio, Jain, Prabhakar, "Handbook of Fingerprint Recognition", 2nd ed., Springer 2009
  (orientation by gradients, sec. 3.2; singularities and registration, sec. 3.5-3.6).
"""

from __future__ import annotations

import dataclasses
from math import comb, isqrt
from typing import NamedTuple

import numpy as np

from devices.preprocess import (
    CROP_FUNCTIONS,
    PreprocessError,
    PreprocessSpec,
    _background_level,
    foreground_blocks,
    foreground_centre,
    preprocess_image,
    to_gray_u8,
)

BLOCK = 8  # px per orientation block at 500 dpi (a ridge period is 8-11 px)
DIRECTIONS = 64  # doubled-angle quantisation of the orientation field (5.6 deg of ridge angle)
UNIT = 1 << 10  # fixed-point scale of the quantised orientation vectors
ANGLE_UNIT = 1 << 14  # fixed-point scale of the rotation's cosine and sine
# Filter phase (degrees) of an upright core: on generator masters (seed 0) left loops read
# 303-319 and right loops 222-249, their axes tilted either way from 270.
UPRIGHT_DEGREES = 270


def _table(count: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Rounded ``scale * (cos, sin)`` of ``2 pi k / count``: integers; one rounding per entry."""
    angle = 2.0 * np.pi * np.arange(count) / count
    return (
        np.rint(scale * np.cos(angle)).astype(np.int64),
        np.rint(scale * np.sin(angle)).astype(np.int64),
    )


_DIR_COS, _DIR_SIN = _table(DIRECTIONS, UNIT)
_DEG_COS, _DEG_SIN = _table(360, ANGLE_UNIT)


@dataclasses.dataclass(frozen=True)
class RegistrationConfig:
    """How a print is registered; checked on the synthetic validation identities 0-99 (seed 0).

    The block, smoothing, filter and strength settings were set beforehand and are measured by
    ``python notebooks/bench/bench_fingerprint_ablation.py --pose-truth`` (~1 min): the core
    lands a median 5.7 px from the generator's (96% within 16 px); the core's direction is a
    median 5 deg but at p90 19 deg off its finger's mean, wider than the prints' own rotation
    (N(0, 6 deg)), so ``rotate`` is off: turning cost the backbone 3.3 EER points there (see
    ``notebooks/results/fingerprint_ablation.md``).

    Attributes:
      size: ``(height, width)`` of the output window in source pixels.
      core_at: ``(row, col)`` where the core lands in the window; 30 px above the centre, as
        the generator frames its impressions (their centre is 30 px below the core), so the
        backbone sees windows framed as in training.
      smooth: orientation tensors are summed over ``smooth x smooth`` blocks (odd).
      filter_order: the binomial order of the symmetry filter's envelope (its side is
        ``filter_order + 1`` blocks; even).
      min_strength: ``(num, den)``: a core needs a response of at least ``num / den`` of the
        filter's largest possible one.
      rotate: turn the window to the core's direction; False keeps the print's own angle.
      erode: blocks of foreground required around a core candidate on every side.
    """

    size: tuple[int, int] = (256, 256)
    core_at: tuple[int, int] = (98, 128)
    smooth: int = 3
    filter_order: int = 10
    min_strength: tuple[int, int] = (1, 5)
    rotate: bool = False
    erode: int = 2

    def __post_init__(self) -> None:
        if min(self.size) < 2 * BLOCK:
            raise PreprocessError(f"size must be at least {2 * BLOCK} px a side, got {self.size}.")
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise PreprocessError(f"smooth must be a positive odd number, got {self.smooth}.")
        # Above 10 the squared response could overflow int64 (|response| < 2^31 up to 10).
        if self.filter_order < 2 or self.filter_order % 2 or self.filter_order > 10:
            raise PreprocessError(f"filter_order must be even in 2..10, got {self.filter_order}.")
        num, den = self.min_strength
        if not (0 <= num < den):
            raise PreprocessError(f"min_strength must be num/den in [0, 1), got {num}/{den}.")


class Pose(NamedTuple):
    """Where the print's core is and which way it points.

    Attributes:
      row: core row in the source image (px).
      col: core column (px).
      degrees: rotation (whole degrees, 0..359) that takes the print to upright.
      strength: response at the core relative to the filter's maximum, in 1/1000.
      found: False when no core was strong enough (centroid and no rotation used).
    """

    row: int
    col: int
    degrees: int
    strength: int
    found: bool


def _sobel(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer Sobel gradients (edge pixels replicated)."""
    p = np.pad(gray.astype(np.int64), 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return gx, gy


def _block_sum(x: np.ndarray, block: int) -> np.ndarray:
    nh, nw = x.shape[0] // block, x.shape[1] // block
    return x[: nh * block, : nw * block].reshape(nh, block, nw, block).sum(axis=(1, 3))


def _box(x: np.ndarray, side: int) -> np.ndarray:
    """Integer sum over a ``side x side`` neighbourhood (zero outside), fixed order."""
    r = side // 2
    p = np.pad(x, r)
    out = np.zeros_like(x)
    for i in range(side):
        for j in range(side):
            out += p[i : i + x.shape[0], j : j + x.shape[1]]
    return out


def _foreground(gray: np.ndarray) -> np.ndarray:
    spec = PreprocessSpec(modality="fingerprint", input_size=(1, 1), foreground_block=BLOCK)
    return foreground_blocks(gray, spec)


def orientation_vectors(gray: np.ndarray, *, smooth: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Quantised doubled-angle orientation per block: ``(vx, vy)`` int64, ``|v| = UNIT`` or 0.

    The direction of each smoothed tensor is the table entry with the largest dot product
    (an exact integer comparison); blocks outside the foreground, or with no gradient, are 0.
    """
    gx, gy = _sobel(gray)
    a = _box(_block_sum(gx * gx - gy * gy, BLOCK), smooth)
    b = _box(_block_sum(2 * gx * gy, BLOCK), smooth)
    k = np.argmax(a[..., None] * _DIR_COS + b[..., None] * _DIR_SIN, axis=-1)
    keep = _foreground(gray) & ((a != 0) | (b != 0))
    return np.where(keep, _DIR_COS[k], 0), np.where(keep, _DIR_SIN[k], 0)


def symmetry_filter(order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x g, y g)`` on ``(order + 1)^2`` blocks, g the binomial envelope: exact integers."""
    weights = np.array([comb(order, i) for i in range(order + 1)], np.int64)
    envelope = weights[:, None] * weights[None, :]
    offsets = np.arange(order + 1) - order // 2
    return offsets[None, :] * envelope, offsets[:, None] * envelope


def symmetry_response(vx: np.ndarray, vy: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary part of ``sum_d v(p + d) (dx - i dy) g(d)`` at each block ``p``."""
    hx, hy = symmetry_filter(order)
    r = order // 2
    px, py = np.pad(vx, r), np.pad(vy, r)
    re, im = np.zeros_like(vx), np.zeros_like(vx)
    h, w = vx.shape
    for i in range(order + 1):
        for j in range(order + 1):
            sx, sy = px[i : i + h, j : j + w], py[i : i + h, j : j + w]
            # (sx + i sy)(hx - i hy) = (sx hx + sy hy) + i (sy hx - sx hy)
            re += sx * hx[i, j] + sy * hy[i, j]
            im += sy * hx[i, j] - sx * hy[i, j]
    return re, im


def _eroded(mask: np.ndarray, margin: int) -> np.ndarray:
    side = 2 * margin + 1
    return _box(mask.astype(np.int64), side) == side * side


def estimate_pose(image: np.ndarray, config: RegistrationConfig = RegistrationConfig()) -> Pose:
    """The core's position and the rotation to upright of one print (see the module steps)."""
    gray = to_gray_u8(image)
    return pose_from_vectors(gray, *orientation_vectors(gray, smooth=config.smooth), config)


def pose_from_vectors(
    gray: np.ndarray, vx: np.ndarray, vy: np.ndarray, config: RegistrationConfig
) -> Pose:
    """:func:`estimate_pose` from the print's orientation vectors, already computed with
    ``config.smooth`` (for a caller that also reads them)."""
    re, im = symmetry_response(vx, vy, config.filter_order)
    power = re * re + im * im
    candidates = _eroded((vx != 0) | (vy != 0), config.erode)
    hx, hy = symmetry_filter(config.filter_order)
    # The response of a perfect core (every vector along the filter), in exact integers.
    peak = UNIT * sum(isqrt(int(v)) for v in (hx * hx + hy * hy).ravel())
    if candidates.any():
        flat = int(np.argmax(np.where(candidates, power, -1)))
        i, j = divmod(flat, power.shape[1])
        best = int(power[i, j])
    else:
        best = 0
    num, den = config.min_strength
    strength = isqrt(best) * 1000 // peak
    if best == 0 or den * den * best < num * num * peak * peak:
        row, col = foreground_centre(gray, _spec())
        return Pose(row, col, 0, strength, False)
    degrees = 0
    if config.rotate:
        phase = int(np.argmax(int(re[i, j]) * _DEG_COS + int(im[i, j]) * _DEG_SIN))
        degrees = (phase - UPRIGHT_DEGREES) % 360
    return Pose(i * BLOCK + BLOCK // 2, j * BLOCK + BLOCK // 2, degrees, strength, True)


def _spec() -> PreprocessSpec:
    return PreprocessSpec(modality="fingerprint", input_size=(1, 1))


def warp_window(
    image: np.ndarray, pose: Pose, config: RegistrationConfig = RegistrationConfig()
) -> np.ndarray:
    """The uint8 ``config.size`` window: ``pose``'s core at ``config.core_at``, turned upright.

    Output pixel ``(r, c)`` samples the source at ``core + R(degrees) (r - r0, c - c0)`` by
    bilinear interpolation in Q14 fixed point (exact integers, rounded half up); samples
    outside the source take the print's background level.
    """
    gray = to_gray_u8(image)
    h, w = gray.shape
    oh, ow = config.size
    r0, c0 = config.core_at
    cos, sin = int(_DEG_COS[pose.degrees]), int(_DEG_SIN[pose.degrees])
    dr = (np.arange(oh, dtype=np.int64) - r0)[:, None]
    dc = (np.arange(ow, dtype=np.int64) - c0)[None, :]
    one = ANGLE_UNIT
    # Rotation about the core by `degrees` (x right, y down): source = core + R d.
    x = pose.col * one + cos * dc - sin * dr
    y = pose.row * one + sin * dc + cos * dr
    x0, y0 = x >> 14, y >> 14
    fx, fy = x & (one - 1), y & (one - 1)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    xa, ya = np.clip(x0, 0, w - 2), np.clip(y0, 0, h - 2)
    g = gray.astype(np.int64)
    top = g[ya, xa] * (one - fx) + g[ya, xa + 1] * fx
    bottom = g[ya + 1, xa] * (one - fx) + g[ya + 1, xa + 1] * fx
    value = (top * (one - fy) + bottom * fy + (1 << 27)) >> 28
    fill = _background_level(gray, _spec())
    return np.where(inside, value, fill).astype(np.uint8)


def register_print(
    image: np.ndarray, config: RegistrationConfig = RegistrationConfig()
) -> np.ndarray:
    """One raw print -> the uint8 window aligned to its core (:func:`estimate_pose`, then
    :func:`warp_window`); feed it to ``preprocess_image`` with a ``crop="none"`` spec."""
    return warp_window(image, estimate_pose(image, config), config)


WINDOW_SPEC = PreprocessSpec(modality="fingerprint", input_size=(128, 128), crop="none")
"""The registered window's model input: the 256x256 window halved by area, standardised."""

# The generator frames an impression 30 px below its core; registered windows keep that framing.
CORE_ABOVE_CENTRE = 30


def framed(size: tuple[int, int]) -> RegistrationConfig:
    """The ``size`` window with its anchor ``CORE_ABOVE_CENTRE`` px above the centre, no
    rotation: how the ``"core"`` and ``"anchor"`` crops frame a print."""
    h, w = size
    return RegistrationConfig(size=(h, w), core_at=(h // 2 - CORE_ABOVE_CENTRE, w // 2))


def core_window(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The uint8 ``size`` window of a print registered on its core (translation only), the
    core ``CORE_ABOVE_CENTRE`` px above the window's centre: ``crop="core"`` of
    :func:`devices.preprocess.preprocess_image`."""
    return register_print(gray, framed(size))


CROP_FUNCTIONS["core"] = core_window

CORE_SPEC = PreprocessSpec(
    modality="fingerprint", input_size=(128, 128), crop="core", crop_size=(256, 256)
)
"""``FINGERPRINT_SPEC`` with the core-registered window in place of the foreground-centred one:
the same model input as :func:`registered_inputs` (register, then ``WINDOW_SPEC``), in one
spec the artifact carries to the device."""


def register_views(
    image: np.ndarray,
    config: RegistrationConfig = RegistrationConfig(),
    *,
    shifts: tuple[tuple[int, int], ...] = ((0, 0),),
    turns: tuple[int, ...] = (0,),
) -> np.ndarray:
    """uint8 ``(len(turns) * len(shifts), *config.size)``: the registered window, then copies
    turned by each of ``turns`` (degrees) and moved by each ``(drow, dcol)`` of ``shifts``
    (source px), for matching under small residual misregistration. View 0 is the plain window
    when ``shifts[0] == (0, 0)`` and ``turns[0] == 0``."""
    pose = estimate_pose(image, config)
    views = []
    for turn in turns:
        turned = pose._replace(degrees=(pose.degrees + turn) % 360)
        for dr, dc in shifts:
            moved = dataclasses.replace(
                config, core_at=(config.core_at[0] + dr, config.core_at[1] + dc)
            )
            views.append(warp_window(image, turned, moved))
    return np.stack(views)


def registered_inputs(
    images: list[np.ndarray] | tuple[np.ndarray, ...],
    config: RegistrationConfig = RegistrationConfig(),
    spec: PreprocessSpec = WINDOW_SPEC,
) -> np.ndarray:
    """Model inputs ``(n, *spec.shape)`` float32 of registered prints (:func:`register_print`
    then ``preprocess_image``)."""
    out = np.empty((len(images), *spec.shape), np.float32)
    for k, image in enumerate(images):
        out[k] = preprocess_image(register_print(image, config), spec)
    return out
