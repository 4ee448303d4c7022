"""EmbedNet: a mobile identity-embedding backbone that quantizes to int8 and trains on the device.

Strided and depthwise-separable convolutions (no pooling layers, so every part has gradients that
convert to TFLite builtins), ReLU6 activations (a known range for int8), global average pooling,
and an L2-normalised embedding. Parameters are grouped by name so training scopes can be chosen:
``stem``, ``block1`` .. ``blockN``, ``embed`` (the last block is ``block{N}`` + ``embed``).

References:
  Howard et al., "MobileNets: efficient convolutional neural networks for mobile vision
  applications", 2017 (depthwise-separable convolutions, ReLU6).
  Sandler et al., "MobileNetV2", CVPR 2018.
  Cai et al., "TinyTL: reduce memory, not parameters for efficient on-device learning",
  NeurIPS 2020 (which parts to train on the device).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from devices.views import FLIP, SINGLE, TestViews, view_of
from pretrain.models.registry import register
from pretrain.models.running_norm import RunningStandardize, running_scale

_HE = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def same_pads(size: int, stride: int, kernel: int) -> tuple[int, int]:
    """TensorFlow/XLA "SAME" padding of one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


IMPLS = ("fast", "native")
PARTS = ("all", "front", "last")
# Scaled weight standardisation keeps ReLU activations at unit scale: gamma = 1 / std(relu(z))
# for z ~ N(0, 1) (Brock et al. 2021).
_RELU_GAIN = math.sqrt(2.0 / (1.0 - 1.0 / math.pi))


def _check_impl(impl: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f"embednet impl must be one of {IMPLS}, got {impl!r}.")


def standardize_kernel(kernel: jax.Array, eps: float = 1e-4) -> jax.Array:
    """Scaled weight standardisation of an HWIO kernel: zero mean and unit-variance-preserving
    scale over each output channel's fan-in (H, W, I), times the ReLU gain.

    A fixed function of the stored kernel: :func:`fold_standardization` replaces the stored
    kernels by their standardised values, giving a plain network with the same outputs.
    """
    axes = (0, 1, 2)
    fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
    mean = jnp.mean(kernel, axis=axes, keepdims=True)
    var = jnp.var(kernel, axis=axes, keepdims=True)
    return _RELU_GAIN * (kernel - mean) * jax.lax.rsqrt(var * fan_in + eps)


def standardize_features(x: jax.Array) -> jax.Array:
    """Each row centred and scaled to unit mean square over its features (``feature_norm``)."""
    x = x - jnp.mean(x, axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6)


def unit_rows(x: jax.Array) -> jax.Array:
    """Rows scaled to unit L2 norm: ``x / max(||x||, 1e-12)`` (as ``devices.cosine.normalize``),
    written ``x * rsqrt(max(sum(x^2), 1e-24))``: the same values, and the form an int8 LiteRT
    conversion keeps in few cheap ops (the division form converts to MUL, SUM, SQRT, RESHAPE,
    MAXIMUM and an int8 DIV, 6.9 against 2.8 us for the whole embedding tail here)."""
    squares = jnp.sum(x * x, axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(squares, 1e-24))


class DepthwiseConv(nn.Module):
    """3x3 depthwise convolution, "SAME" padding, with bias; kernel ``(3, 3, 1, C)`` as Flax's.

    Two implementations of the same function over the same parameters: ``"native"`` is a grouped
    convolution (what export converts, so TFLite gets a native DEPTHWISE_CONV_2D); ``"fast"``
    sums nine shifted, scaled copies of the input, which XLA runs several times faster on CPU
    than its grouped convolution, forward and backward (measured here: 100 ms vs 844 ms forward
    on a 64x64x32 batch of 64; 28 ms vs 740 ms for the strided gradient). Its gradient also
    converts to TFLite builtins (slices, pads, multiplies), which the grouped convolution's
    kernel gradient does not: a device train signature that updates a depthwise kernel uses it.
    """

    stride: int = 1
    impl: str = "fast"
    standardize: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        kernel = self.param("kernel", _HE, (3, 3, 1, channels))
        bias = self.param("bias", nn.initializers.zeros, (channels,))
        if self.standardize:
            kernel = standardize_kernel(kernel)
        s = self.stride
        _check_impl(self.impl)
        if self.impl == "native":
            y = jax.lax.conv_general_dilated(
                x,
                kernel,
                (s, s),
                "SAME",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=channels,
            )
        else:
            (top, bottom), (left, right) = (same_pads(x.shape[a], s, 3) for a in (1, 2))
            padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
            h, w = -(-x.shape[1] // s), -(-x.shape[2] // s)
            # lax.slice, not strided indexing: under a symbolic batch (jax2tf) indexing becomes a
            # gather that TFLite cannot convert; slices keep the gradient in builtins.
            n, c = padded.shape[0], padded.shape[3]
            taps = [
                jax.lax.slice(
                    padded,
                    (0, i, j, 0),
                    (n, i + s * (h - 1) + 1, j + s * (w - 1) + 1, c),
                    (1, s, s, 1),
                )
                * kernel[i, j, 0]
                for i in range(3)
                for j in range(3)
            ]
            y = functools.reduce(jnp.add, taps)
        return y + bias


class PointwiseConv(nn.Module):
    """1x1 convolution with bias; kernel ``(1, 1, C, F)`` as Flax's ``Conv``.

    ``"native"`` is a convolution (TFLite CONV_2D); ``"fast"`` the same product as a matrix
    multiplication over channels, whose gradient XLA computes about 2x faster on CPU.
    """

    features: int
    impl: str = "fast"
    standardize: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_impl(self.impl)
        kernel = self.param("kernel", _HE, (1, 1, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if self.standardize:
            kernel = standardize_kernel(kernel)
        if self.impl == "native":
            y = jax.lax.conv_general_dilated(
                x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
        else:
            y = jnp.einsum("nhwc,cf->nhwf", x, kernel[0, 0])
        return y + bias


class SeparableBlock(nn.Module):
    """Depthwise 3x3 (optionally strided) -> ReLU6 -> pointwise 1x1 -> ReLU6."""

    features: int
    stride: int = 1
    impl: str = "fast"
    standardize: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ws = self.standardize
        x = nn.relu6(DepthwiseConv(self.stride, self.impl, ws, name="depthwise")(x))
        return nn.relu6(PointwiseConv(self.features, self.impl, ws, name="pointwise")(x))


class StemConv(nn.Module):
    """``kernel_size`` x ``kernel_size`` (3 unless pruned) strided convolution with bias, "SAME"
    padding; the parameters of Flax's ``Conv``."""

    features: int
    stride: int = 2
    standardize: bool = False
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", _HE, (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if self.standardize:
            kernel = standardize_kernel(kernel)
        s = self.stride
        y = jax.lax.conv_general_dilated(
            x, kernel, (s, s), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y + bias


class RidgeBranch(nn.Module):
    """A side path that reads the stem's output at its full resolution and joins the trunk at a
    later block (DeepPrint's second branch, Engelsma et al. 2019, in EmbedNet's blocks).

    The trunk's first stride leaves a fingerprint's ridges a period of 1-1.5 pixels, too few
    to hold ridge endings; the branch keeps them at the stem's 2-3: two separable blocks at
    stride 1, then ``downsample`` blocks at stride 2 down to the joining block's grid, the last
    one ``out`` channels wide. It returns those features ungated; :class:`EmbedNet` adds them
    to the trunk through a per-channel gate that starts at zero, so a trained backbone grown
    by a branch starts as the same function."""

    width: int
    out: int
    downsample: int
    impl: str = "fast"
    standardize: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ws = self.standardize
        for k in (1, 2):
            x = SeparableBlock(self.width, 1, self.impl, ws, name=f"block{k}")(x)
        for k in range(1, self.downsample + 1):
            features = self.out if k == self.downsample else 2 * self.width
            x = SeparableBlock(features, 2, self.impl, ws, name=f"down{k}")(x)
        return x


def ridge_downsample(strides: Sequence[int], into: int) -> int:
    """How many stride-2 blocks take the stem's grid to block ``into``'s: the product of the
    first ``into`` strides must be a power of two of at least 2."""
    product = math.prod(int(s) for s in strides[:into])
    steps = product.bit_length() - 1
    if product < 2 or 2**steps != product:
        raise ValueError(
            f"embednet: the ridge branch joins block {into}, whose grid the stem's reaches by a "
            f"stride of {product}; it needs a power of two >= 2 (strides {tuple(strides)})."
        )
    return steps


ONE_VIEW: dict[str, Any] = {"flip_average": False, "test_views": None}
"""EmbedNet options that are test-time views, not the network, each at its one-view value: a
model trained from a saved one's options (fine-tuning, export cuts) drops them and runs one
view (:func:`one_view` for a live module)."""
VIEW_OPTIONS = tuple(ONE_VIEW)


def one_view(module: nn.Module, **changes: Any) -> Any:
    """``module`` (an EmbedNet) cloned to embed one view (every :data:`VIEW_OPTIONS` field at
    its one-view value), with ``changes`` on top."""
    return module.clone(**{**ONE_VIEW, **changes})


@register("embednet")
class EmbedNet(nn.Module):
    """Identity embeddings from a grayscale (or any-channel) image.

    Attributes:
      stem_width: channels of the first (3x3, stride 2) convolution.
      stem_kernel: that convolution's kernel size: 3, or 2 after structured pruning kept the
        2x2 window of it a 2x2 "SAME" convolution reads
        (:func:`pretrain.compression.separable.shrink_stem`).
      widths: output channels of each separable block.
      strides: stride of each separable block (same length as ``widths``).
      embedding_dim: size of the embedding.
      normalize: L2-normalise the embedding (off only to inspect raw features).
      impl: ``"fast"`` (XLA-friendly training on CPU) or ``"native"`` (convolutions, for
        export); the same parameters give the same function either way.
      standardize: scaled weight standardisation of every convolution kernel (a
        reparametrisation for training without normalisation layers; fold it away with
        :func:`fold_standardization` for export and compression).
      feature_norm: standardise the pooled feature vector over its channels before ``embed``
        (no parameters). ReLU features are all positive, so without it every image starts with
        nearly the same embedding (cosine ~0.9) and margin losses stall.
      embed_norm: standardise ``embed``'s output by running training means and variances
        (:class:`~pretrain.models.running_norm.RunningStandardize`, batch normalisation's
        centred gradient) before the L2 norm. From random weights CosFace over 1,600
        identities moves every embedding the same way (all faces one direction, the class
        weights the other); the centred gradient cannot. Folded into ``embed`` for export.
      start_block: run from block ``start_block`` (its input is the feature map block
        ``start_block - 1`` outputs); 0 runs from the image (stem first). With
        :attr:`stop_after` this splits the network into a frozen front and a trainable tail
        with the same parameter names (e.g. the device trains ``block8`` + ``embed``).
      stop_after: return the feature map block ``stop_after`` outputs (0 = the whole network:
        pooling and the embedding).
      flip_average: the embedding of the image and of its left-right mirror, each normalised,
        summed and normalised again (test-time flip averaging of faces: chosen on the LFW dev
        people, see ``pretrain/configs/embed_face_lfw.py``). Only the whole network
        (image -> embedding) can do it; a cut (``part``, ``start_block``, ``stop_after``)
        refuses it: whoever composes the parts runs both views through them.
      test_views: the test-time views as a :class:`devices.views.TestViews` dict (``mirror``,
        ``shift_px``, ``zoom``): the embedding is the normalised sum of the unit embeddings of
        every view (chosen on the LFW dev people, ``pretrain/configs/embed_face_wide.py``);
        ``flip_average`` is ``{"mirror": True}``. Whole network only, as ``flip_average``.
      pool: how the last feature map becomes one vector: ``"mean"`` (global average pooling)
        or ``"gdc"`` (a global depthwise convolution: a learned weight per position and
        channel, ``params["gdc"]`` of shape ``(h, w, c)``, starting as the mean; MobileFaceNet's
        GDC, Chen et al. 2018, without its bias). Aligned faces keep identity in where things
        are, which the mean discards.
      ridge_width: channels of a :class:`RidgeBranch` from the stem's output to block
        ``ridge_into``'s (0, the default: none). Its features join the trunk after that block
        through ``params["ridge_gate"]`` (one weight per channel, starting at zero: a saved
        backbone grown by a branch starts as the same function). A cut must keep the stem and
        block ``ridge_into`` on the same side.
      ridge_into: the block after which the branch joins.
      part: the export cut, as the LeNets have it: ``"all"`` (the whole network), ``"front"``
        (image -> the feature map of the second-to-last block: stem, block1 .. block{N-1}) or
        ``"last"`` (that feature map -> block{N}, pooling, ``embed`` and the L2 norm: the block
        a device may train). Shorthand for ``stop_after=N-1`` / ``start_block=N``; the
        parameter names and tree are the same as the whole network's.

    Example:
      >>> front = build_model("embednet", stop_after=7)   # params: stem, block1..block7
      >>> tail = build_model("embednet", start_block=8)   # params: block8, embed
    """

    stem_width: int = 24
    stem_kernel: int = 3
    widths: Sequence[int] = (32, 64, 64, 96, 96, 128, 128, 192)
    strides: Sequence[int] = (2, 1, 2, 1, 2, 1, 2, 1)
    embedding_dim: int = 128
    normalize: bool = True
    impl: str = "fast"
    standardize: bool = False
    feature_norm: bool = False
    embed_norm: bool = False
    start_block: int = 0
    stop_after: int = 0
    part: str = "all"
    flip_average: bool = False
    test_views: Any = None
    pool: str = "mean"
    ridge_width: int = 0
    ridge_into: int = 4

    def _views(self) -> TestViews:
        if self.test_views:
            return TestViews.from_dict(dict(self.test_views))
        return FLIP if self.flip_average else SINGLE

    def _cut(self, blocks: int) -> tuple[int, int]:
        """``(start_block, stop_after)`` in force, ``part`` resolved."""
        if self.part not in PARTS:
            raise ValueError(f"embednet: part must be one of {PARTS}, got {self.part!r}.")
        if self.part == "all":
            return self.start_block, self.stop_after
        if self.start_block or self.stop_after:
            raise ValueError("embednet: give part or start_block/stop_after, not both.")
        if blocks < 2:
            raise ValueError("embednet: part needs at least 2 blocks to cut between.")
        return (0, blocks - 1) if self.part == "front" else (blocks, 0)

    def __call__(self, x: jax.Array) -> jax.Array:
        views = self._views()
        if views.count == 1:
            return self._embed(x)
        if self._cut(len(self.widths)) != (0, 0):
            raise ValueError(
                "embednet: flip_average / test_views need the whole network (part='all', no "
                "start_block or stop_after); run every view through the parts instead."
            )
        if x.ndim == 3:
            x = x[..., None]
        n = x.shape[0]
        # One batch of every view (devices.views.make_views' order and arithmetic).
        batch = [view_of(x, *g) for g in views.geometry()]  # the mirror: TFLite REVERSE_V2
        every = unit_rows(self._embed(jnp.concatenate(batch, axis=0)))
        total = every[:n]
        for k in range(1, views.count):
            total = total + every[k * n : (k + 1) * n]
        if not self.normalize:
            return total / views.count
        return unit_rows(total)

    def _ridge_steps(self, start_block: int, last: int) -> int:
        """The stride-2 blocks of the branch this cut runs (0: it runs none: no branch, or
        the cut ends before the branch joins or starts after it); a cut that runs the join but
        not the stem is refused."""
        if not self.ridge_width:
            return 0
        if not 1 <= self.ridge_into <= len(self.widths):
            raise ValueError(
                f"embednet: ridge_into must be a block in 1..{len(self.widths)}, "
                f"got {self.ridge_into}."
            )
        if not start_block <= self.ridge_into <= last:
            return 0
        if start_block:
            raise ValueError(
                f"embednet: the ridge branch runs from the stem to block {self.ridge_into}; a cut "
                f"starting at block {start_block} runs the join without the stem."
            )
        return ridge_downsample(self.strides, self.ridge_into)

    @nn.compact
    def _embed(self, x: jax.Array) -> jax.Array:
        blocks = len(self.widths)
        if blocks != len(self.strides):
            raise ValueError(f"embednet: {blocks} widths but {len(self.strides)} strides.")
        start_block, stop_after = self._cut(blocks)
        if not (0 <= start_block <= blocks and 0 <= stop_after <= blocks):
            raise ValueError(f"embednet: start_block and stop_after must be in 0..{blocks}.")
        if stop_after and stop_after < max(start_block, 1):
            raise ValueError("embednet: stop_after comes before start_block.")
        if x.ndim == 3:
            x = x[..., None]
        _check_impl(self.impl)
        ws = self.standardize
        last = stop_after or blocks
        ridge_steps = self._ridge_steps(start_block, last)
        if start_block == 0:
            stem = StemConv(self.stem_width, 2, ws, self.stem_kernel, name="stem")
            x = nn.relu6(stem(x))
        stem_out = x
        for i in range(max(start_block, 1) - 1, last):
            x = SeparableBlock(
                self.widths[i], self.strides[i], self.impl, ws, name=f"block{i + 1}"
            )(x)
            if ridge_steps and i + 1 == self.ridge_into:
                width = self.widths[i]
                branch = RidgeBranch(
                    self.ridge_width, width, ridge_steps, self.impl, ws, name="ridge"
                )
                gate = self.param("ridge_gate", nn.initializers.zeros, (width,))
                x = x + branch(stem_out) * gate
        if stop_after:
            return x
        if self.pool == "gdc":
            h, w, c = x.shape[1:4]
            gdc = self.param("gdc", lambda _, s: jnp.full(s, 1.0 / (h * w)), (h, w, c))
            x = jnp.einsum("nhwc,hwc->nc", x, gdc)
        elif self.pool == "mean":
            x = jnp.mean(x, axis=(1, 2))
        else:
            raise ValueError(f"embednet: pool must be 'mean' or 'gdc', got {self.pool!r}.")
        if self.feature_norm:
            x = standardize_features(x)
        x = nn.Dense(self.embedding_dim, name="embed")(x)
        if self.embed_norm:
            x = RunningStandardize(name="embed_norm")(x)
        if self.normalize:
            x = unit_rows(x)
        return x


def fold_standardization(module: EmbedNet, params: Any) -> tuple[EmbedNet, Any]:
    """The same function without weight standardisation or running statistics: stored kernels
    replaced by their standardised values, ``embed_norm``'s statistics multiplied into
    ``embed``'s kernel and bias (``standardize=False, embed_norm=False``). What export and
    compression should work on.

    Returns:
      ``(module, params)``; unchanged when the module does neither.
    """
    if not (module.standardize or module.embed_norm):
        return module, params
    folded = params
    if module.standardize:
        folded = jax.tree_util.tree_map_with_path(
            lambda path, leaf: (
                standardize_kernel(leaf)
                if getattr(path[-1], "key", None) == "kernel" and path[0].key != "embed"
                else leaf
            ),
            params,
        )
    if module.embed_norm and "embed_norm" in folded:  # absent from a part="front" tree
        folded = dict(folded)
        stats, linear = folded.pop("embed_norm"), folded["embed"]
        scale = running_scale(jnp.asarray(stats["var"]))
        folded["embed"] = {
            "kernel": jnp.asarray(linear["kernel"]) * scale,
            "bias": (jnp.asarray(linear["bias"]) - jnp.asarray(stats["mean"])) * scale,
        }
    return module.clone(standardize=False, embed_norm=False), folded
