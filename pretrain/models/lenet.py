"""The two MNIST networks of the Deep Compression paper, in their Caffe form.

LeNet-5's pooling and convolutions carry hand-written training passes that XLA:CPU runs faster
than the ones JAX derives (the same values and gradients up to float32 summation order; see
:func:`max_pool_2x2` and :func:`valid_conv`); inference and export see the plain
``reduce_window`` / ``conv`` ops.

References:
  LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document recognition", 1998.
  Han, Mao, Dally, "Deep Compression", ICLR 2016 (tables 2-3: LeNet-300-100 267K, LeNet-5 431K).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from pretrain.models.registry import register

PARTS = ("all", "front", "last")
# The layout of a Flax convolution: batch, height, width, channels; kernel height, width, in, out.
_NHWC = ("NHWC", "HWIO", "NHWC")


def _blocks(x: jax.Array) -> jax.Array:
    """``(n, h, w, c)`` -> ``(n, h//2, 2, w//2, 2, c)``: the 2x2 windows of a VALID pooling."""
    n, h, w, c = x.shape
    return x[:, : h - h % 2, : w - w % 2].reshape(n, h // 2, 2, w // 2, 2, c)


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
    """``nn.max_pool(x, (2, 2), strides=(2, 2))`` with a backward pass XLA:CPU runs fast.

    The values are ``nn.max_pool``'s (max is exact). The gradient goes, like XLA's
    select-and-scatter, to the first maximum of each window in row-major order (ties included):
    the forward pass records which one (an int8 per output) and the backward pass is one select,
    instead of an argmax and a scatter (1.56x LeNet-5's training throughput against
    ``nn.max_pool``; the recorded position, with :func:`valid_conv`'s im2col conv1, 6% less CPU
    per step than comparing the windows again; one process, alternating rounds, 2026-12-01).
    Without differentiation (eval, export) it is the plain ``reduce_window``.
    """
    return nn.max_pool(x, (2, 2), strides=(2, 2))


def _max_pool_fwd(x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, tuple[int, ...]]]:
    b = _blocks(x)
    w00, w01, w10, w11 = b[:, :, 0, :, 0], b[:, :, 0, :, 1], b[:, :, 1, :, 0], b[:, :, 1, :, 1]
    y = jnp.maximum(jnp.maximum(w00, w01), jnp.maximum(w10, w11))
    # The first maximum in window order (0,0), (0,1), (1,0), (1,1): 0..3.
    first = jnp.where(w00 == y, 0, jnp.where(w01 == y, 1, jnp.where(w10 == y, 2, 3)))
    return y, (first.astype(jnp.int8), x.shape)


def _max_pool_bwd(res: tuple[jax.Array, tuple[int, ...]], g: jax.Array) -> tuple[jax.Array]:
    first, (n, h, w, c) = res
    position = (  # of each element in its window, in the same order
        2 * lax.broadcasted_iota(jnp.int8, (1, 1, 2, 1, 2, 1), 2)
        + lax.broadcasted_iota(jnp.int8, (1, 1, 2, 1, 2, 1), 4)
    )
    hit = first[:, :, None, :, None, :] == position
    dx = jnp.where(hit, g[:, :, None, :, None, :], 0.0).reshape(n, h - h % 2, w - w % 2, c)
    return (jnp.pad(dx, ((0, 0), (0, h % 2), (0, w % 2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=_NHWC)


# Patch depth (kh * kw * in channels) up to which training runs the forward pass and the kernel
# gradient as im2col + one matrix product: LeNet-5's conv1 (25) does, 7% less CPU per training
# step than XLA:CPU's convolutions (one process, alternating rounds, 2026-12-01); conv2 (500)
# does not, its patches cost more to build than Eigen's convolution loses.
IM2COL_MAX_DEPTH = 64


def patches(x: jax.Array, kh: int, kw: int) -> jax.Array:
    """``(n, h, w, c)`` -> ``(n, h-kh+1, w-kw+1, kh*kw*c)``: each VALID window, in HWIO order.

    Two stacks of slices (first along the width, then the height) instead of one concatenation
    of ``kh * kw`` slices, which XLA:CPU copies in ``c``-wide pieces (3.5x slower for conv1).
    """
    n, h, w, c = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    rows = jnp.stack([x[:, :, j : j + ow, :] for j in range(kw)], axis=3)
    rows = rows.reshape(n, h, ow, kw * c)
    return jnp.stack([rows[:, i : i + oh] for i in range(kh)], axis=3).reshape(n, oh, ow, -1)


@jax.custom_vjp
def _valid_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return _conv(x, kernel)


def _valid_conv_fwd(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple]:
    kh, kw, c, o = kernel.shape
    if kh * kw * c > IM2COL_MAX_DEPTH:
        return _conv(x, kernel), (x, kernel, None)
    cols = patches(x, kh, kw)
    n, oh, ow, depth = cols.shape
    y = (cols.reshape(-1, depth) @ kernel.reshape(depth, o)).reshape(n, oh, ow, o)
    return y, (x, kernel, cols)


def _valid_conv_bwd(res: tuple, g: jax.Array) -> tuple[jax.Array, ...]:
    x, kernel, cols = res
    kh, kw, c, o = kernel.shape
    n, oh, ow, _ = g.shape
    if cols is None:
        _, kernel_vjp = jax.vjp(lambda k: _conv(x, k), kernel)
        (dkernel,) = kernel_vjp(g)
    else:
        # (o, depth) = g^T cols: the operand order XLA:CPU multiplies fastest here.
        dkernel = (g.reshape(-1, o).T @ cols.reshape(-1, kh * kw * c)).T.reshape(kernel.shape)
    # Input gradient as im2col's transpose: one matrix product with the forward's multiply-adds,
    # then each kernel tap's columns added back at its offset. XLA's own (a convolution of the
    # zero-padded output gradient) does (oh + kh - 1)(ow + kw - 1) / (oh ow) times the work:
    # 2.25x for LeNet-5's conv2. The adding back is :func:`patches`' own transpose, which
    # XLA:CPU runs as kh padded copies and one fused sum instead of kh * kw in-place updates of
    # dx (conv2's forward and backward 5% less CPU, 8.85 vs 9.32 ms, one process, alternating).
    taps = (g.reshape(-1, o) @ kernel.reshape(-1, o).T).reshape(n, oh, ow, kh * kw * c)
    _, patches_vjp = jax.vjp(lambda v: patches(v, kh, kw), x)
    (dx,) = patches_vjp(taps)
    return dx, dkernel


_valid_conv.defvjp(_valid_conv_fwd, _valid_conv_bwd)


def valid_conv(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: Any,
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    precision: Any = None,
    **kwargs: Any,
) -> jax.Array:
    """``lax.conv_general_dilated`` for ``nn.Conv(conv_general_dilated=...)``, with the input
    gradient of a stride-1 VALID NHWC convolution computed as im2col's transpose (1.85x LeNet-5's
    training throughput on top of :func:`max_pool_2x2`, measured the same way), and its forward
    pass and kernel gradient under differentiation as im2col matrix products when the patch
    depth is at most :data:`IM2COL_MAX_DEPTH`; other cases go to lax as is.
    """
    plain = (
        tuple(window_strides) == (1, 1)
        and padding in ("VALID", ((0, 0), (0, 0)), [(0, 0), (0, 0)])
        and all(d is None or tuple(d) == (1, 1) for d in (lhs_dilation, rhs_dilation))
        and feature_group_count == 1
        and precision is None
        and not kwargs
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    )
    if plain:
        return _valid_conv(lhs, rhs)
    return lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        precision=precision,
        **kwargs,
    )


def _check_part(part: str, model: str) -> None:
    if part not in PARTS:
        raise ValueError(f"{model}: part must be one of {PARTS}, got {part!r}.")


def _per_layer(values: Sequence[float], layers: int, what: str, model: str) -> Sequence[float]:
    if len(values) != layers:
        raise ValueError(
            f"{model}: {what} needs one value per layer ({layers}), got {len(values)}."
        )
    return values


@register("lenet300")
class LeNet300(nn.Module):
    """LeNet-300-100: 784 -> 300 -> 100 -> 10, ReLU; 266,610 parameters.

    Attributes:
      hidden: widths of the hidden layers.
      num_classes: output width.
      init_std: standard deviation of each layer's zero-mean Gaussian weight initialisation.
      bias_init: constant each layer's biases start from (0 or 1, as the seed describes).
      part: ``"all"`` (logits), ``"front"`` (input -> the last hidden layer's input) or
        ``"last"`` (that -> the last hidden activation, the embedding a device head reads).
    """

    hidden: Sequence[int] = (300, 100)
    num_classes: int = 10
    init_std: Sequence[float] = (0.05, 0.08, 0.14)
    bias_init: Sequence[float] = (0.0, 0.0, 0.0)
    part: str = "all"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_part(self.part, "lenet300")
        widths = (*self.hidden, self.num_classes)
        std = _per_layer(self.init_std, len(widths), "init_std", "lenet300")
        bias = _per_layer(self.bias_init, len(widths), "bias_init", "lenet300")
        last_hidden = len(widths) - 2
        layers = {
            "front": range(last_hidden),
            "last": range(last_hidden, last_hidden + 1),
            "all": range(len(widths)),
        }[self.part]
        if self.part != "last":
            x = x.reshape((x.shape[0], -1))
        for i in layers:
            x = nn.Dense(
                widths[i],
                kernel_init=nn.initializers.normal(std[i]),
                bias_init=nn.initializers.constant(bias[i]),
                name=f"fc{i + 1}",
            )(x)
            if i < len(widths) - 1:
                x = nn.relu(x)
        return x


@register("lenet5")
class LeNet5(nn.Module):
    """Caffe LeNet-5: conv 20@5x5, max-pool 2, conv 50@5x5, max-pool 2, fc 500, ReLU, fc 10.

    431,080 parameters. Layers: ``conv1, conv2, fc1, fc2``.

    Attributes:
      num_classes: output width.
      init_std: Gaussian standard deviation per layer (conv1, conv2, fc1, fc2).
      bias_init: initial bias constant per layer.
      part: ``"all"`` (logits), ``"front"`` (input -> flattened conv features) or ``"last"``
        (those -> the ReLU output of ``fc1``, the embedding a device head reads).
    """

    num_classes: int = 10
    init_std: Sequence[float] = (0.28, 0.063, 0.05, 0.045)
    bias_init: Sequence[float] = (0.0, 0.0, 0.0, 0.0)
    part: str = "all"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_part(self.part, "lenet5")
        std = _per_layer(self.init_std, 4, "init_std", "lenet5")
        bias = _per_layer(self.bias_init, 4, "bias_init", "lenet5")

        def conv(features: int, i: int) -> nn.Conv:
            return nn.Conv(
                features,
                (5, 5),
                padding="VALID",
                name=f"conv{i + 1}",
                conv_general_dilated=valid_conv,
                kernel_init=nn.initializers.normal(std[i]),
                bias_init=nn.initializers.constant(bias[i]),
            )

        def dense(features: int, i: int) -> nn.Dense:
            return nn.Dense(
                features,
                name=f"fc{i - 1}",
                kernel_init=nn.initializers.normal(std[i]),
                bias_init=nn.initializers.constant(bias[i]),
            )

        if self.part != "last":
            if x.ndim == 3:
                x = x[..., None]
            x = max_pool_2x2(conv(20, 0)(x))
            x = max_pool_2x2(conv(50, 1)(x))
            x = x.reshape((x.shape[0], -1))
            if self.part == "front":
                return x
        x = nn.relu(dense(500, 2)(x))
        if self.part == "last":
            return x
        return dense(self.num_classes, 3)(x)


def count_params(params: object) -> int:
    """Number of scalars in a parameter pytree."""
    return sum(int(jnp.size(leaf)) for leaf in jax.tree.leaves(params))
