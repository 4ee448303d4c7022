"""Lower precision: fixed-point weights with per-layer scales, and range-constrained layers.

``fixed_point(bits)`` rounds each selected leaf to ``q * scale`` with a signed ``bits``-bit integer
``q`` (int8 by default). The scale comes from the layer's largest weight, or from a given range:
weights are then clipped to it (range-constrained), so the fixed-point range is known before
training. While retraining, the forward pass sees the rounded weights and the gradient passes
straight through to the float weights inside the range (zero outside it).

``clip_activations`` constrains the outputs of chosen Dense / Conv layers to ``[-b, b]`` (and
optionally rounds them to a ``bits``-bit grid) by intercepting the Flax modules, so activations
have a known fixed-point range too; ``activation_ranges`` measures the ranges to pick ``b``.

References:
  Plienlinger (the seed's list: "lower precision", "range-constrained topologies").
  Courbariaux, Bengio, David, "BinaryConnect", NeurIPS 2015 (straight-through rounding).
  Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
  Only Inference", CVPR 2018 (per-layer scales, clipped ranges).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pretrain.compression.base import (
    Compressor,
    Packed,
    Params,
    Select,
    kernels,
    named_leaves,
    pack,
    per_leaf,
    replace_leaves,
    selected,
    unpack,
)


class FixedPointState(NamedTuple):
    """Per leaf, the float32 scale: a weight is ``q * scale`` with ``|q| <= 2**(bits-1) - 1``."""

    scales: dict[str, jax.Array]


class FixedLeaf(NamedTuple):
    """A fixed-point leaf packed: integer values (int8 / int16), the scale, the float dtype."""

    values: np.ndarray
    scale: np.ndarray
    dtype: str


@jax.custom_vjp
def _round_clipped(w: jax.Array, scale: jax.Array, qmax: jax.Array) -> jax.Array:
    q = jnp.clip(jnp.round(w.astype(jnp.float32) / scale), -qmax, qmax)
    return (q * scale).astype(w.dtype)


def _round_fwd(w: jax.Array, scale: jax.Array, qmax: jax.Array) -> tuple[jax.Array, Any]:
    return _round_clipped(w, scale, qmax), (w, scale, qmax)


def _round_bwd(res: Any, g: jax.Array) -> tuple[jax.Array, None, None]:
    w, scale, qmax = res
    inside = jnp.abs(w.astype(jnp.float32)) <= (qmax + 0.5) * scale
    return jnp.where(inside, g, jnp.zeros((), g.dtype)), None, None


_round_clipped.defvjp(_round_fwd, _round_bwd)


def fake_quantize(w: jax.Array, scale: jax.Array, bits: int) -> jax.Array:
    """``clip(round(w / scale)) * scale`` with a straight-through gradient inside the range."""
    qmax = jnp.asarray(2 ** (bits - 1) - 1, jnp.float32)
    return _round_clipped(w, jnp.asarray(scale, jnp.float32), qmax)


def fixed_point(
    bits: int = 8,
    *,
    clip: float | Mapping[str, float] | None = None,
    select: Select | None = None,
) -> Compressor:
    """Signed fixed point with one scale per layer.

    Args:
      bits: integer width, 2..16 (8: int8).
      clip: weight range per layer (float or ``{layer: range}``): weights are clipped to
        ``[-clip, clip]`` and ``scale = clip / (2**(bits-1) - 1)``. None: the range is the layer's
        largest ``|w|`` when ``init`` runs.
      select: which leaves (default: every kernel).

    Returns:
      A :class:`Compressor` with :class:`FixedPointState`; packed form :class:`FixedLeaf`, exact.
    """
    if not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an int in [2, 16], got {bits!r}.")
    qmax = 2 ** (bits - 1) - 1
    if clip is not None:
        for v in clip.values() if isinstance(clip, Mapping) else [clip]:
            if not v > 0:
                raise ValueError(f"clip ranges must be positive, got {v!r}.")

    def init(params: Params) -> FixedPointState:
        chosen = selected(params, select or kernels())
        ranges = (
            {k: float(np.max(np.abs(np.asarray(v)))) for k, v in chosen.items()}
            if clip is None
            else per_leaf(clip, chosen, "clip")
        )
        scales = {}
        for name, r in ranges.items():
            if not r > 0:
                raise ValueError(f"{name}: range {r} (all zero, or not given in clip=).")
            scales[name] = jnp.asarray(r / qmax, jnp.float32)
        return FixedPointState(scales)

    def apply(params: Params, state: FixedPointState) -> tuple[Params, FixedPointState]:
        leaves = named_leaves(params)
        new = {k: fake_quantize(leaves[k], s, bits) for k, s in state.scales.items()}
        return replace_leaves(params, new), state

    def encode(params: Params, state: FixedPointState) -> Packed:
        leaves = named_leaves(jax.device_get(params))
        dtype = np.int8 if bits <= 8 else np.int16
        packed = {}
        for name, s in state.scales.items():
            w = np.asarray(leaves[name])
            q = np.clip(np.round(w.astype(np.float32) / np.float32(s)), -qmax, qmax)
            packed[name] = FixedLeaf(q.astype(dtype), np.asarray(s, np.float32), str(w.dtype))
        projected, _ = jax.jit(apply)(params, state)
        return pack(jax.device_get(projected), packed)

    return Compressor(init, apply, encode, decode_fixed_point, 0.0)


def _decode_leaf(leaf: FixedLeaf) -> np.ndarray:
    return (leaf.values.astype(np.float32) * leaf.scale).astype(leaf.dtype)


def decode_fixed_point(packed: Packed) -> Params:
    """Dense parameters from a fixed-point packing."""
    return unpack(packed, _decode_leaf)


def clip_activations(
    apply_fn: Callable[..., Any],
    bounds: float | Mapping[str, float],
    *,
    bits: int | None = None,
) -> Callable[..., Any]:
    """``apply_fn`` with the outputs of Dense / Conv layers clipped to ``[-b, b]``.

    Args:
      apply_fn: a Flax ``module.apply``.
      bounds: one bound for every Dense / Conv layer, or ``{layer name: bound}`` for some.
      bits: also round the clipped outputs to a signed ``bits``-bit grid (straight-through).

    Returns:
      A function with ``apply_fn``'s signature.
    """
    if bits is not None and not 2 <= bits <= 16:
        raise ValueError(f"bits must be in [2, 16], got {bits!r}.")

    def bound_of(module: nn.Module) -> float | None:
        if not isinstance(module, nn.Dense | nn.Conv):
            return None
        if isinstance(bounds, Mapping):
            return bounds.get(str(module.name))
        return float(bounds)

    def interceptor(next_fun: Callable[..., Any], args: Any, kwargs: Any, context: Any) -> Any:
        out = next_fun(*args, **kwargs)
        b = bound_of(context.module) if context.method_name == "__call__" else None
        if b is None:
            return out
        out = jnp.clip(out, -b, b)
        if bits is not None:
            out = fake_quantize(out, b / (2 ** (bits - 1) - 1), bits)
        return out

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with nn.intercept_methods(interceptor):
            return apply_fn(*args, **kwargs)

    return wrapped


def activation_ranges(
    apply_fn: Callable[..., Any], params: Params, images: np.ndarray
) -> dict[str, float]:
    """The largest ``|output|`` of every Dense / Conv layer over ``images``, by layer name."""
    ranges: dict[str, float] = {}

    def interceptor(next_fun: Callable[..., Any], args: Any, kwargs: Any, context: Any) -> Any:
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and isinstance(module, nn.Dense | nn.Conv):
            peak = float(jnp.max(jnp.abs(out)))
            ranges[str(module.name)] = max(ranges.get(str(module.name), 0.0), peak)
        return out

    with nn.intercept_methods(interceptor):
        apply_fn({"params": params}, images)
    return ranges
