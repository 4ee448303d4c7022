"""Structured pruning: whole channels, whole kernels and strided positions inside kernels.

A :class:`Structure` says, per layer of a feed-forward chain (``LENET5_CHAIN``), which output
channels survive (channel-wise), which 2-D kernels (input channel, output channel) survive
(kernel-wise) and which positions inside each kernel survive (intra-kernel strided: every
``stride``-th position of the flattened ``kh x kw`` window from a per-filter offset). A removed
channel takes its kernel slice and the next layer's weights that read it, so the masked
network equals a narrower dense one (:mod:`pretrain.compression.shrink`). :func:`structured_pruning`
is a pruning :class:`~pretrain.compression.base.Compressor` over those masks: it chains with
``fixed_point`` and retrains with ``retrain`` like magnitude pruning. What to remove is chosen by
particle filters (:mod:`pretrain.compression.particles`) or, for the baseline, by the filters' L1
norms (:func:`l1_structure`).

References:
  Anwar, Hwang, Sung, "Structured Pruning of Deep Convolutional Neural Networks", ACM JETC 2017
  (arXiv 1512.08571), section 3: channel, kernel and intra-kernel strided sparsity.
  Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from pretrain.compression.base import Compressor, Params, named_leaves
from pretrain.compression.pruning import PruneState, _encode, decode_pruned, masked

# LeNet-5's layers in execution order; the last one's outputs (the classes) are never pruned.
LENET5_CHAIN = ("conv1", "conv2", "fc1", "fc2")


class Structure(NamedTuple):
    """What survives, per layer name (a layer absent from a field loses nothing there).

    Attributes:
      channels: ``{layer: bool (out,)}``, True = the output channel (filter, unit) is kept.
      kernels: ``{conv layer: bool (in, out)}``, True = the 2-D kernel is kept.
      positions: ``{conv layer: bool (kh, kw, out)}``, True = that kernel position is kept.
    """

    channels: dict[str, np.ndarray]
    kernels: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]


def empty_structure() -> Structure:
    """Nothing removed."""
    return Structure({}, {}, {})


def _kernel(leaves: Mapping[str, Any], layer: str) -> np.ndarray:
    name = f"{layer}/kernel"
    if name not in leaves:
        raise ValueError(f"no parameter {name!r}; leaves are: {', '.join(leaves)}.")
    return np.asarray(leaves[name])


def _check_chain(leaves: Mapping[str, Any], chain: Sequence[str]) -> None:
    for a, b in itertools.pairwise(chain):
        out, rows = _kernel(leaves, a).shape[-1], _kernel(leaves, b)
        width = rows.shape[2] if rows.ndim == 4 else rows.shape[0]
        if width % out:
            raise ValueError(f"{b} reads {width} inputs, not a multiple of {a}'s {out} channels.")


def drop_inputs(kernel_mask: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``kernel_mask`` of a layer with the inputs of removed channels (``~keep``) cleared.

    A convolution's input channels are axis 2; a dense layer after a flatten of NHWC features
    reads channel ``c`` at rows ``p * C + c`` for every spatial position ``p``.
    """
    out = kernel_mask.copy()
    if out.ndim == 4:
        out[:, :, ~keep, :] = False
        return out
    rows = out.reshape(-1, keep.size, out.shape[-1])
    rows[:, ~keep, :] = False
    return rows.reshape(out.shape)


def structure_masks(
    params: Params, structure: Structure, chain: Sequence[str] = LENET5_CHAIN
) -> dict[str, np.ndarray]:
    """Boolean masks (True = kept) of every kernel of ``chain`` for ``structure``.

    Biases are not masked: a removed channel's output is its bias alone, and the next layer's
    weights that read it are masked, so it reaches nothing (:func:`~pretrain.compression.shrink`
    drops it with the channel).
    """
    leaves = named_leaves(params)
    _check_chain(leaves, chain)
    prunable = chain[:-1]
    bad = [k for k in structure.channels if k not in prunable]
    for field in (structure.kernels, structure.positions):
        bad += [k for k in field if k not in prunable or _kernel(leaves, k).ndim != 4]
    if bad:
        raise ValueError(
            f"the structure names {sorted(set(bad))}: not prunable layers of {list(prunable)} "
            "(kernels and positions are for convolutions only)."
        )
    masks = {f"{layer}/kernel": np.ones(_kernel(leaves, layer).shape, bool) for layer in chain}
    for i, layer in enumerate(chain[:-1]):
        k = masks[f"{layer}/kernel"]
        if layer in structure.kernels:
            k &= np.asarray(structure.kernels[layer], bool)[None, None]
        if layer in structure.positions:
            k &= np.asarray(structure.positions[layer], bool)[:, :, None, :]
        if layer in structure.channels:
            keep = np.asarray(structure.channels[layer], bool)
            k[..., ~keep] = False
            nxt = f"{chain[i + 1]}/kernel"
            masks[nxt] = drop_inputs(masks[nxt], keep)
    return masks


def structured_pruning(structure: Structure, chain: Sequence[str] = LENET5_CHAIN) -> Compressor:
    """A pruning compressor whose masks remove ``structure``'s channels, kernels and positions.

    Example:
      >>> prune = structured_pruning(l1_structure(params, {"conv1": 10, "conv2": 20}))
      >>> state = prune.init(params)
      >>> params, state = prune.apply(params, state)

    Returns:
      A :class:`Compressor` with :class:`~pretrain.compression.PruneState` (so ``retrain`` and
      ``chain(..., fixed_point(bits))`` take it); packed form ``SparseLeaf``, exact.

    References:
      Anwar, Hwang, Sung, "Structured Pruning of Deep Convolutional Neural Networks", 2017.
    """

    def init(params: Params) -> PruneState:
        masks = structure_masks(params, structure, chain)
        return PruneState({k: jnp.asarray(v) for k, v in masks.items()})

    def apply(params: Params, state: PruneState) -> tuple[Params, PruneState]:
        return masked(params, state.masks), state

    return Compressor(init, apply, _encode, decode_pruned, 0.0)


def filter_norms(params: Params, layer: str) -> np.ndarray:
    """L1 norm of each output channel's weights (a conv filter, a dense unit's inputs)."""
    k = np.abs(_kernel(named_leaves(params), layer).astype(np.float64))
    return k.reshape(-1, k.shape[-1]).sum(0)


def keep_largest(scores: np.ndarray, count: int) -> np.ndarray:
    """Bool mask keeping the ``count`` highest scores (ties: the earlier position)."""
    if not 1 <= count <= scores.size:
        raise ValueError(f"keep {count} of {scores.size}: must be 1..{scores.size}.")
    keep = np.zeros(scores.size, bool)
    keep[np.argsort(-scores, kind="stable")[:count]] = True
    return keep


def l1_structure(params: Params, keep: Mapping[str, int]) -> Structure:
    """Li et al.'s baseline: per layer, the ``keep[layer]`` filters of largest L1 norm survive.

    Each layer is ranked on its own trained weights (their "independent" strategy).

    References:
      Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017.
    """
    return Structure(
        {layer: keep_largest(filter_norms(params, layer), n) for layer, n in keep.items()}, {}, {}
    )


def strided_positions(kh: int, kw: int, stride: int, offsets: np.ndarray) -> np.ndarray:
    """``(kh, kw, out)`` mask keeping flattened window positions ``q`` with
    ``q % stride == offsets[o]`` in filter ``o`` (intra-kernel strided sparsity)."""
    offsets = np.asarray(offsets)
    if stride < 1 or np.any(offsets < 0) or np.any(offsets >= stride):
        raise ValueError(f"stride {stride} needs offsets in [0, {stride}), got {offsets}.")
    q = np.arange(kh * kw).reshape(kh, kw, 1)
    return q % stride == offsets.reshape(1, 1, -1)


def output_positions(
    apply_fn: Callable[..., Any], params: Params, example: np.ndarray
) -> dict[str, int]:
    """Output positions per example of every Dense / Conv layer (``oh * ow``; 1 for Dense)."""
    out: dict[str, int] = {}

    def interceptor(next_fun: Callable[..., Any], args: Any, kwargs: Any, context: Any) -> Any:
        y = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and isinstance(context.module, nn.Dense | nn.Conv):
            out[str(context.module.name)] = int(np.prod(y.shape[1:-1], dtype=np.int64))
        return y

    with nn.intercept_methods(interceptor):
        apply_fn({"params": params}, example[:1])
    return out


def macs(params: Params, positions: Mapping[str, int]) -> int:
    """Multiply-accumulates of one example over the nonzero kernel weights (a removed weight
    costs nothing when convolutions are lowered to products of the surviving rows)."""
    leaves = named_leaves(params)
    return sum(int(np.count_nonzero(_kernel(leaves, layer))) * n for layer, n in positions.items())
