"""Minutiae maps of generator impressions, in the model's input window: the generator's ground
truth as a training target (DeepPrint-style multi-task training, Engelsma et al. 2019).

The generator knows every master's minutiae (:func:`pretrain.data.minutiae.master_minutiae`, from
the clean ridge field) and where each impression placed the master
(:func:`pretrain.data.fingerprint.synthetic.impression_placement`). A minutia is mapped into the
impression by that rigid placement, then into the registered window the model reads
(``"anchor"`` or ``"core"`` crop: a translation, no rotation), and drawn as a Gaussian bump on a
map the size of the model input. Minutiae the impression does not show (outside the sensor, on
a lifted side, in the window's padding) are left out: only those on the window's readable print
(:func:`pretrain.data.minutiae.print_mask`) count. The map is 1 at a minutia, falls to 0 away
from every one, and is :data:`UNREAD` (-1) where the window shows no readable print: there the
map says nothing (a loss should ignore it), as the print may hide minutiae there.

Example:
  >>> maps = minutiae_maps(range(300, 302), 8, seed=0, spec=ANCHOR_SPEC)  # (16, 128, 128, 1)

Reference:
  Engelsma, Cao, Jain, "Learning a Fixed-Length Fingerprint Representation", IEEE TPAMI 2019
  (DeepPrint: a minutiae-map branch trained beside the identity loss).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from devices.preprocess import PreprocessSpec, resize, to_gray_u8
from devices.registration import Pose, estimate_pose, framed, warp_window
from pretrain.data.fingerprint.impressions import rigid_to_impression
from pretrain.data.fingerprint.synthetic import (
    GeneratorConfig,
    Master,
    generate_impression,
    generate_master,
    impression_placement,
)
from pretrain.data.minutiae import Minutia, master_minutiae, print_mask

SIGMA_PX = 1.5  # model-input px: a bump about a third of a ridge period wide at 128 x 128
UNREAD = -1.0  # map value where the window shows no readable print
MAP_CROPS = ("anchor", "core")  # registered windows: a translation of the impression


def _pose(gray: np.ndarray, spec: PreprocessSpec) -> Pose:
    if spec.crop == "anchor":
        from devices.localiser import anchor_pose  # the localiser registers its crop on import

        return anchor_pose(gray)
    return estimate_pose(gray, framed(spec.crop_size))


def window_map(gray: np.ndarray, points: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """float32 ``spec.shape``: the map of the impression points ``points`` (``(k, 2)``
    ``(row, col)`` px of the uint8 impression ``gray``) in ``spec``'s window: :func:`draw_map`
    of those on the readable print, :data:`UNREAD` where the window shows none.

    Raises:
      ValueError: ``spec``'s crop is not a registered window (:data:`MAP_CROPS`).
    """
    if spec.crop not in MAP_CROPS:
        raise ValueError(f"minutiae maps need a crop in {MAP_CROPS}, got {spec.crop!r}.")
    gray = to_gray_u8(gray)
    pose = _pose(gray, spec)
    frame = framed(spec.crop_size)
    if pose.degrees:
        raise ValueError("minutiae maps take windows without rotation.")
    window = warp_window(gray, pose, frame)
    readable = print_mask(window)
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    rows = pts[:, 0] - pose.row + frame.core_at[0]
    cols = pts[:, 1] - pose.col + frame.core_at[1]
    h, w = spec.crop_size
    ri, ci = np.floor(rows).astype(int), np.floor(cols).astype(int)
    inside = (ri >= 0) & (ci >= 0) & (ri < h) & (ci < w)
    keep = np.zeros(len(pts), bool)
    keep[inside] = readable[ri[inside], ci[inside]]
    # Area resize: model pixel i covers window pixels [i s, (i + 1) s).
    sy, sx = spec.input_size[0] / h, spec.input_size[1] / w
    found = np.stack([(rows[keep] + 0.5) * sy - 0.5, (cols[keep] + 0.5) * sx - 0.5], axis=1)
    seen = resize(readable.astype(np.float32), spec.input_size, "area") >= 0.5
    return np.where(seen, draw_map(found, spec.input_size), UNREAD).astype(np.float32)[..., None]


def draw_map(points: np.ndarray, shape: tuple[int, int], sigma: float = SIGMA_PX) -> np.ndarray:
    """float32 ``shape``: the largest Gaussian bump (peak 1) of the ``(row, col)`` points."""
    out = np.zeros(shape, np.float32)
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    cols = np.arange(shape[1], dtype=np.float32)[None, :]
    for r, c in np.asarray(points, np.float32).reshape(-1, 2):
        bump = np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * sigma**2))
        np.maximum(out, bump, out=out)
    return out


def minutiae_maps(
    identities: Iterable[int],
    impressions: int,
    *,
    seed: int,
    spec: PreprocessSpec,
    config: GeneratorConfig | None = None,
) -> np.ndarray:
    """float32 ``(n * impressions, *spec.shape)``: the minutiae map of every impression, in
    :func:`pretrain.data.fingerprint.synthetic.synthetic_fingerprints`' order (identity-major)."""
    config = config or GeneratorConfig()
    out = []
    for identity in identities:
        master = generate_master(identity, seed=seed, config=config)
        truth = master_minutiae(master)
        for k in range(impressions):
            image = generate_impression(identity, k, seed=seed, config=config, master=master)
            placed = _placed(truth, identity, k, seed, config, master)
            points = np.array([(m.y, m.x) for m in placed], np.float64).reshape(-1, 2)
            out.append(window_map(image, points, spec))
    return np.stack(out) if out else np.zeros((0, *spec.shape), np.float32)


def _placed(
    truth: list[Minutia],
    identity: int,
    impression: int,
    seed: int,
    config: GeneratorConfig,
    master: Master,
) -> list[Minutia]:
    """A master's minutiae moved into one impression by its rigid placement (a direction turns
    with the finger: the impression's x axis is the master's turned by the placement)."""
    placement = impression_placement(identity, impression, seed=seed, config=config)
    shape = config.impression_shape
    out = []
    for m in truth:
        row, col = rigid_to_impression(placement, shape, master.centre, m.x, m.y)
        angle = (m.angle - placement.rotation + np.pi) % (2 * np.pi) - np.pi
        out.append(Minutia(col, row, m.kind, angle))
    return out


def impression_minutiae(
    identity: int, impression: int, *, seed: int, config: GeneratorConfig | None = None
) -> tuple[np.ndarray, list[Minutia]]:
    """An impression (uint8, as :func:`generate_impression` draws it) and the minutiae it shows
    by the generator's ground truth: its master's minutiae placed rigidly, those on the
    impression's readable print (:func:`pretrain.data.minutiae.print_mask`). What a minutiae
    extractor would find with no error but the impression's non-rigid distortion (not undone)."""
    config = config or GeneratorConfig()
    master = generate_master(identity, seed=seed, config=config)
    image = generate_impression(identity, impression, seed=seed, config=config, master=master)
    readable = print_mask(image)
    h, w = readable.shape
    placed = _placed(master_minutiae(master), identity, impression, seed, config, master)
    inside = [
        m
        for m in placed
        if 0 <= round(m.y) < h and 0 <= round(m.x) < w and readable[round(m.y), round(m.x)]
    ]
    return image, inside
