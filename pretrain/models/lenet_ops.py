"""LeNet-5's layers with hand-written training passes that XLA:CPU runs faster than JAX's own.

Each op is a ``jax.custom_vjp``: without differentiation (evaluation, export) it is the plain op
(``lax.conv_general_dilated`` + bias, ``nn.max_pool``'s ``reduce_window``); under differentiation
its forward pass keeps what the backward pass needs and the backward pass is laid out for what
XLA:CPU fuses well. Values and gradients are those of the plain ops up to float32 summation order
(pooling: exactly).

LeNet-5's train step, one process, the two versions in alternating rounds on a 2-core AMD EPYC
(2026-12-02, machine load ~10): 19.9 ms CPU per step with :func:`conv_bias` and :func:`col2im`,
23.8 with the previous passes (``nn.Conv``'s own bias, ``patches``' transpose as the input
gradient); ``bench-pretrain``'s Keras peer used 19.5 in the same bench run, ours 19.3.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from jax import lax

# The layout of a Flax convolution: batch, height, width, channels; kernel height, width, in, out.
NHWC = ("NHWC", "HWIO", "NHWC")
# Patch depth (kh * kw * in channels) up to which training runs a convolution's forward pass and
# kernel gradient as im2col + one matrix product: LeNet-5's conv1 (25) does; conv2 (500) does not,
# its patches cost more to build than Eigen's convolution loses (conv2 through im2col with the bias
# column: 26.2 vs 20.4 ms CPU per training step, alternating rounds, load ~10).
IM2COL_MAX_DEPTH = 64


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
    ``nn.max_pool``, 2026-12-01). Without differentiation (eval, export) it is the plain
    ``reduce_window``.
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
    return lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=NHWC)


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


def col2im(columns: jax.Array, kh: int, kw: int) -> jax.Array:
    """The transpose of :func:`patches`: each window's columns added back at its offset.

    ``(n, oh, ow, kh*kw*c)`` -> ``(n, oh+kh-1, ow+kw-1, c)``. Along the height, then the width,
    each tap is one in-place add into a single buffer. ``patches``' own transpose (a sum of padded
    copies) gave XLA:CPU elementwise sums that it fused into the pooling's backward select after
    it, recomputing them for each of the 4 positions of every window (LeNet-5's conv2 input
    gradient, pool1's backward select and conv1's kernel gradient: 3.8 ms CPU here, 5.5 that way;
    alternating, load ~11).
    """
    n, oh, ow, depth = columns.shape
    c = depth // (kh * kw)
    h, w = oh + kh - 1, ow + kw - 1
    taps = columns.reshape(n, oh, ow, kh, kw * c)
    rows = jnp.zeros((n, h, ow, kw * c), columns.dtype)
    for i in range(kh):
        rows = rows.at[:, i : i + oh].add(taps[:, :, :, i])
    rows = rows.reshape(n, h, ow, kw, c)
    out = jnp.zeros((n, h, w, c), columns.dtype)
    for j in range(kw):
        out = out.at[:, :, j : j + ow].add(rows[:, :, :, j])
    return out


def _with_ones(cols: jax.Array) -> jax.Array:
    """``cols`` with a column of ones appended: the bias is one more row of the kernel matrix."""
    return jnp.concatenate([cols, jnp.ones((*cols.shape[:-1], 1), cols.dtype)], axis=-1)


@jax.custom_vjp
def conv_bias(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """A stride-1 VALID NHWC convolution plus bias (``nn.Conv``'s output) that trains fast.

    Under differentiation:

    - patch depth up to :data:`IM2COL_MAX_DEPTH` (LeNet-5's conv1): the forward pass is im2col
      with a column of ones times the kernel with the bias as its last row, and the kernel and
      bias gradients are one matrix product with those columns. XLA:CPU reduced the bias gradient
      in a separate reduce-window pass (1.7 ms per LeNet-5 step), and recomputed the pooling's
      backward select for it;
    - deeper patches (conv2): XLA:CPU's convolution forward and for the kernel gradient, the bias
      gradient as a matrix-vector product;
    - the input gradient, when asked for: one matrix product with the forward's multiply-adds,
      then :func:`col2im`. XLA's own (a convolution of the zero-padded output gradient) does
      ``(oh+kh-1)(ow+kw-1) / (oh ow)`` times the work: 2.25x for LeNet-5's conv2.

    Without differentiation it is ``lax.conv_general_dilated(x, kernel) + bias``.
    """
    return _conv(x, kernel) + bias


def _conv_bias_fwd(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> tuple[jax.Array, tuple]:
    kh, kw, c, o = kernel.shape
    depth = kh * kw * c
    if depth > IM2COL_MAX_DEPTH:
        return _conv(x, kernel) + bias, (x, kernel, None)
    cols = _with_ones(patches(x, kh, kw))
    n, oh, ow, _ = cols.shape
    weights = jnp.concatenate([kernel.reshape(depth, o), bias[None]], axis=0)
    y = (cols.reshape(-1, depth + 1) @ weights).reshape(n, oh, ow, o)
    return y, (None, kernel, cols)


def _conv_bias_bwd(res: tuple, g: jax.Array) -> tuple[jax.Array, ...]:
    x, kernel, cols = res
    kh, kw, c, o = kernel.shape
    depth = kh * kw * c
    n, oh, ow, _ = g.shape
    rows = g.reshape(-1, o)
    if cols is None:
        _, kernel_vjp = jax.vjp(lambda k: _conv(x, k), kernel)
        (dkernel,) = kernel_vjp(g)
        dbias = jnp.ones((rows.shape[0],), g.dtype) @ rows
    else:
        # (o, depth + 1) = g^T cols: the operand order XLA:CPU multiplies fastest here.
        dweights = (rows.T @ cols.reshape(-1, depth + 1)).T
        dkernel, dbias = dweights[:depth].reshape(kernel.shape), dweights[depth]
    taps = (rows @ kernel.reshape(depth, o).T).reshape(n, oh, ow, depth)
    return col2im(taps, kh, kw), dkernel, dbias


conv_bias.defvjp(_conv_bias_fwd, _conv_bias_bwd)


class ValidConv(nn.Conv):
    """``nn.Conv`` for stride-1 VALID convolutions with a bias that trains through :func:`conv_bias`.

    The same parameters (``kernel`` then ``bias``, with the same initialisers and keys) and the
    same outputs as ``nn.Conv(features, kernel_size, padding="VALID")``, so saved models, the
    layer graph and the compression hooks see an ``nn.Conv``.
    """

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        ones = (None, 1, (1, 1), [1, 1])
        plain = (
            self.padding == "VALID"
            and all(v in ones for v in (self.strides, self.input_dilation, self.kernel_dilation))
            and self.feature_group_count == 1
            and self.use_bias
            and self.mask is None
            and inputs.ndim == 4
        )
        if not plain:
            raise ValueError(
                f"{self.name}: ValidConv trains only stride-1 VALID 2-D convolutions with a bias "
                f"on NHWC batches, got strides={self.strides}, padding={self.padding!r}, "
                f"groups={self.feature_group_count}, use_bias={self.use_bias} and an input of "
                f"rank {inputs.ndim}; use nn.Conv for those."
            )
        size = self.kernel_size
        kh, kw = (size, size) if isinstance(size, int) else size
        kernel_shape = (kh, kw, inputs.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, kernel_shape, self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        inputs, kernel, bias = promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        return conv_bias(inputs, kernel, bias)
