"""Random image augmentation in JAX, inside the jitted train step.

Each example gets its own key from ``jax.random.split(key, n)`` over the global batch, so the
augmented batch is the same whatever the number of devices or processes, and a resumed run
(whose step counter is restored) sees exactly the augmentations an uninterrupted one would.

Geometry (rotation, scale, translation, mirror, a smooth elastic warp) is one bilinear resampling;
then intensity (gamma, blur, noise), an erased rectangle (occlusion, partial contact), and finally
per-image standardisation, so augmented inputs have the statistics the device's preprocessing
gives (``devices.preprocess``: zero mean, unit deviation per image).

Options (all default to "off"):
  rotate: maximum rotation in degrees (uniform in +-rotate).
  translate: maximum shift as a fraction of the image side, per axis.
  scale: maximum relative zoom: the factor is log-uniform in [1/(1+scale), 1+scale].
  flip: mirror left-right with probability 1/2 (faces; never for fingerprints, whose mirror
    image is another finger).
  warp: amplitude in pixels of a smooth random displacement field (skin elasticity).
  gamma: maximum |log gamma| applied to min-max-normalised intensities.
  blur: maximum weight ``a`` of ``x + a (blur3x3(x) - x)`` (defocus, smudge).
  noise: maximum standard deviation of additive Gaussian noise (in standardised units).
  erase: probability of filling one random rectangle with the fill value.
  erase_area: largest fraction of the image that rectangle covers.
  fill: what geometry and erasing fill with: ``"mean"`` of the image or ``"bright"`` (its 90th
    percentile: the background of a fingerprint).

References:
  Chen et al., "A simple framework for contrastive learning of visual representations", ICML
  2020 (composition of augmentations).
  Zhong et al., "Random erasing data augmentation", AAAI 2020.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

FILLS = ("mean", "bright")

# The face configs' strengths (embed_face, embed_face_lfw): a capture's pose, light and occlusion
# for the margin-softmax stage; stronger for the contrastive stage's views.
FACE_AUGMENT = {
    "rotate": 10.0, "translate": 0.06, "scale": 0.1, "flip": True, "gamma": 0.4, "blur": 1.0,
    "noise": 0.2, "erase": 0.5, "erase_area": 0.2,
}  # fmt: skip
CONTRASTIVE_FACE_AUGMENT = {
    "rotate": 15.0, "translate": 0.1, "scale": 0.15, "flip": True, "gamma": 0.5, "blur": 1.0,
    "noise": 0.3, "erase": 0.5, "erase_area": 0.25,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Augment:
    """Augmentation settings; see the module docstring for each field."""

    rotate: float = 0.0
    translate: float = 0.0
    scale: float = 0.0
    flip: bool = False
    warp: float = 0.0
    gamma: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    erase: float = 0.0
    erase_area: float = 0.25
    fill: str = "mean"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and value < 0:
                raise ValueError(f"augment option {f.name} must be >= 0, got {value}.")
        if self.erase > 1 or not 0 < self.erase_area <= 1:
            raise ValueError("augment options erase and erase_area must be in [0, 1].")
        if self.fill not in FILLS:
            raise ValueError(f"augment fill must be one of {FILLS}, got {self.fill!r}.")

    @property
    def geometric(self) -> bool:
        return bool(self.rotate or self.translate or self.scale or self.flip or self.warp)


TARGET_FILL = -1.0  # a target map's value where the image shows nothing of it (ignored)


def make_augment(options: Mapping[str, Any] | None) -> Augment:
    """An :class:`Augment` from a dict of options; unknown options are an error listing them."""
    valid = [f.name for f in dataclasses.fields(Augment)]
    unknown = sorted(set(options or {}) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown augment option(s) {', '.join(unknown)}; valid: {', '.join(valid)}."
        )
    values: dict[str, Any] = {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in (options or {}).items()
    }
    return Augment(**values)


def _fill_value(image: jax.Array, how: str) -> jax.Array:
    return jnp.quantile(image, 0.9) if how == "bright" else jnp.mean(image)


def _geometry(key: jax.Array, image: jax.Array, aug: Augment, fill: jax.Array) -> jax.Array:
    """One bilinear resampling of ``image`` ``(h, w)`` under a random similarity + warp."""
    h, w = image.shape
    k_rot, k_scale, k_shift, k_flip, k_warp = jax.random.split(key, 5)
    angle = jax.random.uniform(k_rot, (), minval=-1.0, maxval=1.0) * math.radians(aug.rotate)
    log_s = math.log1p(aug.scale)
    zoom = jnp.exp(jax.random.uniform(k_scale, (), minval=-log_s, maxval=log_s))
    shift = jax.random.uniform(k_shift, (2,), minval=-1.0, maxval=1.0) * aug.translate
    mirror = jnp.where(jax.random.bernoulli(k_flip), -1.0, 1.0) if aug.flip else 1.0
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows, cols = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
    )
    # Output pixel -> source pixel: undo the shift, the zoom, the rotation, the mirror.
    y = rows - cy - shift[0] * h
    x = cols - cx - shift[1] * w
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    src_y = (cos * y + sin * x) / zoom + cy
    src_x = mirror * (-sin * y + cos * x) / zoom + cx
    if aug.warp:
        field = jax.random.normal(k_warp, (2, 5, 5)) * aug.warp
        field = jax.image.resize(field, (2, h, w), "cubic")
        src_y, src_x = src_y + field[0], src_x + field[1]
    # map_coordinates fills with a static constant: shift so the fill is 0.
    moved = map_coordinates(image - fill, [src_y, src_x], order=1, mode="constant", cval=0.0)
    return moved + fill


def _blur3(image: jax.Array) -> jax.Array:
    padded = jnp.pad(image, 1, mode="edge")
    h, w = image.shape
    taps = [
        padded[i : i + h, j : j + w] * (2 - abs(i - 1)) * (2 - abs(j - 1))
        for i in range(3)
        for j in range(3)
    ]
    return sum(taps[1:], taps[0]) / 16.0


def _erase(key: jax.Array, image: jax.Array, aug: Augment, fill: jax.Array) -> jax.Array:
    h, w = image.shape
    k_on, k_area, k_ratio, k_pos = jax.random.split(key, 4)
    area = jax.random.uniform(k_area, (), minval=0.02, maxval=max(aug.erase_area, 0.02)) * h * w
    ratio = jnp.exp(jax.random.uniform(k_ratio, (), minval=math.log(0.3), maxval=math.log(3.3)))
    eh = jnp.clip(jnp.sqrt(area * ratio), 1.0, h)
    ew = jnp.clip(jnp.sqrt(area / ratio), 1.0, w)
    top, left = jax.random.uniform(k_pos, (2,)) * jnp.array([h - eh, w - ew])
    rows = jnp.arange(h)[:, None]
    cols = jnp.arange(w)[None, :]
    inside = (rows >= top) & (rows < top + eh) & (cols >= left) & (cols < left + ew)
    inside &= jax.random.bernoulli(k_on, aug.erase)
    return jnp.where(inside, fill, image)


def _one(
    key: jax.Array, image: jax.Array, aug: Augment, target: jax.Array | None = None
) -> tuple[jax.Array, jax.Array | None]:
    """Augments one ``(h, w)`` image; a ``target`` map of it (``(h, w)``) moves with it: the
    same geometry and erasure (:data:`TARGET_FILL` where the image shows nothing of it), no
    photometric change."""
    k_geo, k_gamma, k_blur, k_noise, k_noise2, k_erase = jax.random.split(key, 6)
    fill = _fill_value(image, aug.fill)
    unseen = jnp.float32(TARGET_FILL)
    if aug.geometric:
        image = _geometry(k_geo, image, aug, fill)
        target = None if target is None else _geometry(k_geo, target, aug, unseen)
    if aug.gamma:
        lo, hi = jnp.min(image), jnp.max(image)
        unit = (image - lo) / jnp.maximum(hi - lo, 1e-6)
        g = jnp.exp(jax.random.uniform(k_gamma, (), minval=-aug.gamma, maxval=aug.gamma))
        image = lo + (hi - lo) * unit**g
    if aug.blur:
        weight = jax.random.uniform(k_blur, (), maxval=aug.blur)
        image = image + weight * (_blur3(image) - image)
    if aug.noise:
        sigma = jax.random.uniform(k_noise, (), maxval=aug.noise) * jnp.std(image)
        image = image + sigma * jax.random.normal(k_noise2, image.shape)
    if aug.erase:
        image = _erase(k_erase, image, aug, fill)
        target = None if target is None else _erase(k_erase, target, aug, unseen)
    mean = jnp.mean(image)
    return (image - mean) / jnp.maximum(jnp.std(image), 1e-6), target


def augment_batch(key: jax.Array, images: jax.Array, aug: Augment) -> jax.Array:
    """Augments every image of ``(n, h, w, 1)`` (or ``(n, h, w)``) with its own key.

    A second channel (``(n, h, w, 2)``) is a target map of each image (a minutiae map,
    :mod:`pretrain.data.minutiae_maps`): it moves with its image (:func:`_one`) and comes back
    unstandardised in the same channel.

    Returns:
      The augmented batch, same shape, the images standardised per image.
    """
    squeeze = images.ndim == 4
    if squeeze and images.shape[-1] not in (1, 2):
        raise ValueError(
            f"augmentation takes grayscale images (and a target map), got {images.shape[-1]} "
            "channels."
        )
    x = images.astype(jnp.float32)
    keys = jax.random.split(key, x.shape[0])
    if squeeze and images.shape[-1] == 2:

        def with_target(k: jax.Array, im: jax.Array, t: jax.Array) -> jax.Array:
            moved, target = _one(k, im, aug, t)
            assert target is not None
            return jnp.stack([moved, target], axis=-1)

        return jax.vmap(with_target)(keys, x[..., 0], x[..., 1])
    x = x[..., 0] if squeeze else x
    out = jax.vmap(lambda k, im: _one(k, im, aug)[0])(keys, x)
    return out[..., None] if squeeze else out
