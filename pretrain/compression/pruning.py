"""Pruning: zero the least important weights and keep them zero while retraining.

Importance is a saliency per weight: its magnitude (Han et al.) or the OBD estimate of the loss
increase (see :mod:`pretrain.compression.obd`). The fraction pruned is set per layer (the
sensitivity-based choice of the paper) or over all selected layers at once (``scope="global"``).
Exactly ``round(fraction * n)`` weights go; ties are broken by position, so masks are
deterministic. Weights that are already zero have the lowest saliency, so repeated pruning at
rising fractions only ever removes more (the iterative prune -> retrain cycles).

References:
  Han, Pool, Tran, Dally, "Learning both Weights and Connections for Efficient Neural Networks",
  NeurIPS 2015.
  Han, Mao, Dally, "Deep Compression", ICLR 2016, section 2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

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

Saliency = Callable[[Params], Mapping[str, Any]]
Sparsity = float | Mapping[str, float]
SCOPES = ("layer", "global")


class PruneState(NamedTuple):
    """Boolean masks (True = kept) of the pruned leaves, by leaf name."""

    masks: dict[str, jax.Array]


class SparseLeaf(NamedTuple):
    """A pruned leaf packed: the kept values in row-major order and the bit-packed mask."""

    values: np.ndarray
    mask_bits: np.ndarray
    shape: tuple[int, ...]


def magnitude(params: Params) -> dict[str, np.ndarray]:
    """Saliency ``|w|`` of every leaf, by name."""
    return {k: np.abs(np.asarray(v, np.float64)) for k, v in named_leaves(params).items()}


def _check_fraction(value: float, what: str) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value!r}.")


def lowest(scores: Mapping[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """Masks keeping all but the ``count`` lowest scores across every array of ``scores``."""
    names = list(scores)
    flat = np.concatenate([np.ravel(scores[n]) for n in names])
    keep = np.ones(flat.shape, bool)
    keep[np.argsort(flat, kind="stable")[:count]] = False
    out, start = {}, 0
    for n in names:
        size = np.size(scores[n])
        out[n] = keep[start : start + size].reshape(np.shape(scores[n]))
        start += size
    return out


def saliency_masks(
    params: Params,
    sparsity: Sparsity,
    saliency: Saliency,
    *,
    scope: str = "layer",
    select: Select | None = None,
) -> dict[str, np.ndarray]:
    """Masks removing the lowest-saliency fraction of the selected weights.

    Args:
      params: parameter tree.
      sparsity: fraction removed; a float, or ``{layer: fraction}`` (unnamed layers keep all).
      saliency: ``params -> {leaf name: scores}`` for at least the selected leaves.
      scope: ``"layer"`` (each leaf loses its fraction) or ``"global"`` (one float fraction of all
        selected weights together, the lowest scores wherever they are).
      select: which leaves to prune (default: every kernel).

    Returns:
      ``{leaf name: bool mask}``, True where the weight is kept.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}.")
    chosen = selected(params, select or kernels())
    scores = {k: np.asarray(v) for k, v in saliency(params).items() if k in chosen}
    missing = sorted(set(chosen) - set(scores))
    if missing:
        raise ValueError(f"the saliency gives no scores for {', '.join(missing)}.")
    if scope == "global":
        if isinstance(sparsity, Mapping):
            raise ValueError("scope='global' takes one fraction for all layers, not a mapping.")
        _check_fraction(sparsity, "sparsity")
        total = sum(np.size(v) for v in chosen.values())
        return lowest(scores, round(sparsity * total))
    fractions = per_leaf(sparsity, chosen, "sparsity")
    out = {}
    for name, frac in fractions.items():
        _check_fraction(frac, f"sparsity of {name}")
        out.update(lowest({name: scores[name]}, round(frac * np.size(chosen[name]))))
    return out


def masked(params: Params, masks: Mapping[str, Any]) -> Params:
    """``params`` with the masked-out weights set to exactly zero (zero gradient there too)."""
    leaves = named_leaves(params)
    return replace_leaves(
        params,
        {k: jnp.where(m, leaves[k], jnp.zeros((), leaves[k].dtype)) for k, m in masks.items()},
    )


def _encode(params: Params, state: PruneState) -> Packed:
    params, _ = jax.jit(_apply)(params, state)
    leaves = named_leaves(jax.device_get(params))
    packed = {}
    for name, mask in state.masks.items():
        m = np.asarray(mask, bool)
        packed[name] = SparseLeaf(np.asarray(leaves[name])[m], np.packbits(m.ravel()), m.shape)
    return pack(jax.device_get(params), packed)


def _decode_leaf(leaf: SparseLeaf) -> np.ndarray:
    size = int(np.prod(leaf.shape))
    mask = np.unpackbits(leaf.mask_bits, count=size).astype(bool)
    out = np.zeros(size, leaf.values.dtype)
    out[mask] = leaf.values
    return out.reshape(leaf.shape)


def _apply(params: Params, state: PruneState) -> tuple[Params, PruneState]:
    return masked(params, state.masks), state


def decode_pruned(packed: Packed) -> Params:
    """Dense parameters from a pruning packing."""
    return unpack(packed, _decode_leaf)


def saliency_pruning(
    sparsity: Sparsity,
    saliency: Saliency,
    *,
    scope: str = "layer",
    select: Select | None = None,
) -> Compressor:
    """Prunes the lowest-saliency weights; the mask holds them at zero during retraining.

    Args:
      sparsity: fraction removed (float, or ``{layer: fraction}`` with ``scope="layer"``).
      saliency: ``params -> {leaf name: scores}``, evaluated once by ``init``.
      scope: ``"layer"`` or ``"global"``, see :func:`saliency_masks`.
      select: which leaves to prune (default: every kernel; biases are kept).

    Returns:
      A :class:`Compressor` with :class:`PruneState`; packed form :class:`SparseLeaf`, exact.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}.")
    if not isinstance(sparsity, Mapping):
        _check_fraction(sparsity, "sparsity")
    else:
        for k, v in sparsity.items():
            _check_fraction(v, f"sparsity of {k}")

    def init(params: Params) -> PruneState:
        masks = saliency_masks(params, sparsity, saliency, scope=scope, select=select)
        return PruneState({k: jnp.asarray(v) for k, v in masks.items()})

    return Compressor(init, _apply, _encode, decode_pruned, 0.0)


def magnitude_pruning(
    sparsity: Sparsity, *, scope: str = "layer", select: Select | None = None
) -> Compressor:
    """Magnitude pruning: removes the smallest ``|w|`` (Han et al. 2015).

    Example:
      >>> prune = magnitude_pruning({"fc1": 0.92, "fc2": 0.91, "fc3": 0.74})
      >>> state = prune.init(params)
      >>> params, state = prune.apply(params, state)

    References:
      Han, Pool, Tran, Dally, "Learning both Weights and Connections", NeurIPS 2015.
    """
    return saliency_pruning(sparsity, magnitude, scope=scope, select=select)


def sparsity_of(params: Params, select: Select | None = None) -> dict[str, float]:
    """Fraction of exact zeros in each selected leaf, by name."""
    return {
        k: float(np.mean(np.asarray(v) == 0))
        for k, v in selected(params, select or kernels()).items()
    }
