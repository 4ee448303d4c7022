"""MobileFaceNet: a mobile face-embedding backbone (inverted-residual bottlenecks and a global
depthwise convolution instead of global average pooling) that quantizes to int8 and trains its
last block on the device.

Differences from the paper's network, for this pipeline: ReLU6 instead of PReLU (a known range
for int8, fused into each convolution by the converter), and no batch normalisation (the trainer
keeps no batch statistics): every convolution is trained with scaled weight standardisation
(``standardize``) and every residual branch with a learned gain that starts at zero
(``skip_init``, SkipInit), the normaliser-free recipe of Brock et al. Both are
reparametrisations that :func:`fold_mobilefacenet` folds into plain kernels for export, as
batch normalisation is folded in the paper's deployment. ``gdc_norm`` standardises each GDC
channel by running training statistics (the paper's batch normalisation after the GDC, without
the learned scale and shift that ``embed`` already has; :class:`RunningStandardize`), folded into
the GDC's kernel and bias for export. An optional parameter-free standardisation of the pooled
features (``feature_norm``, as EmbedNet's) precedes ``embed``.

Parameter groups: ``stem`` (3x3 stride-2 convolution), ``stem_dw`` (3x3 depthwise),
``block1`` .. ``blockN`` (bottlenecks: ``expand`` 1x1, ``depthwise`` 3x3, ``project`` 1x1
linear, ``gain`` when residual and ``skip_init``), then the last block the device may train:
``tail`` (1x1 to ``tail_width``), ``gdc`` (linear depthwise convolution over the whole final
map), ``gdc_norm`` (its running statistics, under ``gdc_norm``) and ``embed`` (linear),
L2-normalised. ``part="front"`` runs the image to blockN's output,
``part="last"`` that map to the embedding.

References:
  Chen, Liu, Gao, Han, "MobileFaceNets: efficient CNNs for accurate real-time face verification
  on mobile devices", CCBR 2018.
  Sandler et al., "MobileNetV2: inverted residuals and linear bottlenecks", CVPR 2018.
  De, Smith, "Batch normalization biases residual blocks towards the identity function in deep
  networks", NeurIPS 2020 (SkipInit).
  Brock, De, Smith, "Characterizing signal propagation to close the performance gap in
  unnormalized ResNets", ICLR 2021 (scaled weight standardisation).
  Ioffe, Szegedy, "Batch normalization", ICML 2015 (running statistics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pretrain.models.embednet import (
    PARTS,
    DepthwiseConv,
    PointwiseConv,
    StemConv,
    _check_impl,
    standardize_features,
    standardize_kernel,
    unit_rows,
)
from pretrain.models.registry import register
from pretrain.models.running_norm import RunningStandardize, running_scale


class GlobalDepthwise(nn.Module):
    """Linear depthwise convolution whose kernel covers the whole ``(H, W)`` map ("VALID"), so
    each channel gets its own spatial weighting (the paper's GDC); kernel ``(H, W, 1, C)``.

    ``"native"`` is a grouped convolution (TFLite DEPTHWISE_CONV_2D); ``"fast"`` the same sum as
    an elementwise product and a reduction, whose gradient XLA computes faster and which
    converts to TFLite builtins.
    """

    impl: str = "fast"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_impl(self.impl)
        h, w, c = x.shape[1:]
        init = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
        kernel = self.param("kernel", init, (h, w, 1, c))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        if self.impl == "native":
            y = jax.lax.conv_general_dilated(
                x,
                kernel,
                (1, 1),
                "VALID",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=c,
            )
            y = y.reshape(y.shape[0], c)
        else:
            y = jnp.sum(x * kernel[:, :, 0], axis=(1, 2))
        return y + bias


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand -> ReLU6 -> 3x3 depthwise (strided) -> ReLU6 -> 1x1 linear
    projection, plus the input when the shapes allow (stride 1, same width), the branch scaled
    by ``gain`` (zero at initialisation) under ``skip_init``."""

    features: int
    expansion: int
    stride: int = 1
    impl: str = "fast"
    standardize: bool = True
    skip_init: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ws, impl = self.standardize, self.impl
        h = nn.relu6(PointwiseConv(x.shape[-1] * self.expansion, impl, ws, name="expand")(x))
        h = nn.relu6(DepthwiseConv(self.stride, impl, ws, name="depthwise")(h))
        h = PointwiseConv(self.features, impl, ws, name="project")(h)
        if self.stride != 1 or x.shape[-1] != self.features:
            return h
        if self.skip_init:
            h = h * self.param("gain", nn.initializers.zeros, ())
        return x + h


@register("mobilefacenet")
class MobileFaceNet(nn.Module):
    """Identity embeddings of a grayscale (or any-channel) face.

    Attributes:
      stem_width: channels of the stem convolution (3x3, stride 2) and its depthwise 3x3.
      widths, expansions, repeats, strides: one entry per stage of bottlenecks: output
        channels, expansion factor, number of blocks, stride of the stage's first block.
      tail_width: channels of the last block's 1x1 convolution before the GDC.
      embedding_dim: size of the embedding.
      normalize: L2-normalise the embedding.
      gdc_norm: standardise each GDC channel by its running training mean and variance
        (:class:`RunningStandardize`) before ``feature_norm`` and ``embed``.
      embed_norm: the same on ``embed``'s output, before the L2 norm (the paper's batch
        normalisation after its last linear layer).
      feature_norm: standardise the GDC's output over its channels before ``embed``.
      standardize: scaled weight standardisation of the stem, depthwise and 1x1 kernels.
      skip_init: a learned scalar gain, zero at first, on each residual branch.
      impl: ``"fast"`` (training on CPU) or ``"native"`` (grouped convolutions, for export).
      part: ``"all"``, ``"front"`` (image -> the last bottleneck's map) or ``"last"`` (that map
        -> ``tail``, ``gdc``, ``embed``, L2 norm); the parameter names are the whole network's.

    Example:
      >>> net = build_model("mobilefacenet")
      >>> params = net.init(jax.random.key(0), jnp.zeros((1, 112, 96, 1)))["params"]
    """

    stem_width: int = 64
    widths: Sequence[int] = (64, 128, 128, 128, 128)
    expansions: Sequence[int] = (2, 4, 2, 4, 2)
    repeats: Sequence[int] = (5, 1, 6, 1, 2)
    strides: Sequence[int] = (2, 2, 1, 2, 1)
    tail_width: int = 512
    embedding_dim: int = 128
    normalize: bool = True
    gdc_norm: bool = False
    embed_norm: bool = False
    feature_norm: bool = True
    standardize: bool = True
    skip_init: bool = True
    impl: str = "fast"
    part: str = "all"

    def _blocks(self) -> list[tuple[int, int, int]]:
        """``(features, expansion, stride)`` of every bottleneck, in order."""
        stages = (self.widths, self.expansions, self.repeats, self.strides)
        if len({len(s) for s in stages}) != 1:
            raise ValueError(
                "mobilefacenet: widths, expansions, repeats and strides need one entry per stage, "
                f"got {[len(s) for s in stages]}."
            )
        blocks = []
        for width, expansion, repeat, stride in zip(*stages, strict=True):
            if repeat < 1:
                raise ValueError(f"mobilefacenet: every stage needs >= 1 block, got {repeat}.")
            blocks += [(width, expansion, stride if i == 0 else 1) for i in range(repeat)]
        return blocks

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.part not in PARTS:
            raise ValueError(f"mobilefacenet: part must be one of {PARTS}, got {self.part!r}.")
        _check_impl(self.impl)
        if x.ndim == 3:
            x = x[..., None]
        ws, impl = self.standardize, self.impl
        if self.part != "last":
            x = nn.relu6(StemConv(self.stem_width, 2, ws, name="stem")(x))
            x = nn.relu6(DepthwiseConv(1, impl, ws, name="stem_dw")(x))
            for i, (width, expansion, stride) in enumerate(self._blocks()):
                x = Bottleneck(
                    width, expansion, stride, impl, ws, self.skip_init, name=f"block{i + 1}"
                )(x)
            if self.part == "front":
                return x
        x = nn.relu6(PointwiseConv(self.tail_width, impl, ws, name="tail")(x))
        x = GlobalDepthwise(impl, name="gdc")(x)
        if self.gdc_norm:
            x = RunningStandardize(name="gdc_norm")(x)
        if self.feature_norm:
            x = standardize_features(x)
        x = nn.Dense(self.embedding_dim, name="embed")(x)
        if self.embed_norm:
            x = RunningStandardize(name="embed_norm")(x)
        if self.normalize:
            x = unit_rows(x)
        return x


def fold_mobilefacenet(module: MobileFaceNet, params: Any) -> tuple[MobileFaceNet, Any]:
    """The same function as plain convolutions: standardised kernels stored as their values,
    each residual ``gain`` multiplied into its block's ``project`` kernel and bias, the running
    standardisations into the GDC's and ``embed``'s kernels and biases (``standardize=False,
    skip_init=False, gdc_norm=False, embed_norm=False``). What export and compression work on.

    Returns:
      ``(module, params)``; unchanged when no reparametrisation is on.
    """
    if not (module.standardize or module.skip_init or module.gdc_norm or module.embed_norm):
        return module, params
    standardized = ("stem", "stem_dw", "expand", "depthwise", "project", "tail")

    def fold(path: tuple[str, ...], leaf: Any) -> Any:
        if module.standardize and path[-1] == "kernel" and path[-2] in standardized:
            return standardize_kernel(jnp.asarray(leaf))
        return leaf

    folded = jax.tree_util.tree_map_with_path(
        lambda p, leaf: fold(tuple(k.key for k in p), leaf), params
    )
    folded = dict(folded)
    for name, group in list(folded.items()):
        if isinstance(group, dict) and "gain" in group:
            gain = group["gain"]
            project = {k: v * gain for k, v in group["project"].items()}
            folded[name] = {
                **{k: v for k, v in group.items() if k != "gain"},
                "project": project,
            }
    for layer in ("gdc", "embed"):  # statistics absent from a part="front" tree
        if getattr(module, f"{layer}_norm") and f"{layer}_norm" in folded:
            stats, linear = folded.pop(f"{layer}_norm"), folded[layer]
            scale = running_scale(jnp.asarray(stats["var"]))
            folded[layer] = {
                "kernel": jnp.asarray(linear["kernel"]) * scale,
                "bias": (jnp.asarray(linear["bias"]) - jnp.asarray(stats["mean"])) * scale,
            }
    plain = module.clone(standardize=False, skip_init=False, gdc_norm=False, embed_norm=False)
    return plain, folded
