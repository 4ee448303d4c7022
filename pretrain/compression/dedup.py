"""Deduplication: identical rows / filters (or equal after sharing) are stored once.

A leaf is cut into slices along ``axis`` (a Dense kernel's rows along axis 0 are the fan-out of
one input; a convolution's filters along the last axis). Slices within ``atol`` of a group's first
slice join that group; while retraining, a group's slices stay tied (one value, summed gradient),
and the packed form holds each distinct slice once plus one index per slice. After pruning and
weight sharing, dead inputs give all-zero rows, the most common duplicate.

References:
  Plienlinger (the seed's list of improvements: "deduplicate weights").
  Han, Mao, Dally, "Deep Compression", ICLR 2016 (shared weights as an index into a table).
"""

from __future__ import annotations

from typing import NamedTuple

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
    replace_leaves,
    selected,
    unpack,
)
from pretrain.compression.sharing import tie


class DedupState(NamedTuple):
    """Per deduplicated leaf, the group (int32, first-appearance order) of each slice."""

    groups: dict[str, jax.Array]


class DedupLeaf(NamedTuple):
    """A deduplicated leaf packed: its distinct slices, each slice's group, the slicing axis."""

    unique: np.ndarray
    groups: np.ndarray
    axis: int


def find_groups(slices: np.ndarray, atol: float = 0.0) -> np.ndarray:
    """Groups of equal rows of ``slices`` (``(n, d)``), numbered by first appearance.

    A row joins the first earlier group whose first row is within ``atol`` everywhere.
    """
    n = slices.shape[0]
    groups = np.empty(n, np.int32)
    reps: list[int] = []
    if atol == 0.0:
        _, first, inverse = np.unique(slices, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return rank[np.ravel(inverse)].astype(np.int32)
    for i in range(n):
        if reps:
            diff = np.max(np.abs(slices[reps] - slices[i]), axis=1)
            hit = np.flatnonzero(diff <= atol)
            if hit.size:
                groups[i] = hit[0]
                continue
        groups[i] = len(reps)
        reps.append(i)
    return groups


def _slices(w: jax.Array | np.ndarray, axis: int) -> tuple[jax.Array, tuple[int, ...]]:
    moved = jnp.moveaxis(jnp.asarray(w), axis, 0)
    return moved.reshape(moved.shape[0], -1), moved.shape


def deduplicate(*, axis: int = 0, atol: float = 0.0, select: Select | None = None) -> Compressor:
    """Ties equal slices of each selected leaf along ``axis``; packs each distinct slice once.

    Args:
      axis: slicing axis (0: rows of a Dense kernel, i.e. per input; -1: filters / output units).
      atol: slices within this max-abs distance of a group's first slice join it (0: identical).
      select: which leaves (default: every kernel).

    Returns:
      A :class:`Compressor` with :class:`DedupState`; packed form :class:`DedupLeaf`, exact.
    """
    if atol < 0:
        raise ValueError(f"atol must be >= 0, got {atol}.")

    def init(params: Params) -> DedupState:
        out = {}
        for name, leaf in selected(params, select or kernels()).items():
            flat, _ = _slices(np.asarray(jax.device_get(leaf)), axis)
            out[name] = jnp.asarray(find_groups(np.asarray(flat), atol))
        return DedupState(out)

    def apply(params: Params, state: DedupState) -> tuple[Params, DedupState]:
        leaves = named_leaves(params)
        new = {}
        for name, groups in state.groups.items():
            w = leaves[name]
            flat, moved = _slices(w, axis)
            live = jnp.ones((flat.shape[0],), jnp.float32)
            tied, _ = tie(flat, groups, live)
            new[name] = jnp.moveaxis(tied.reshape(moved), 0, axis)
        return replace_leaves(params, new), state

    def encode(params: Params, state: DedupState) -> Packed:
        params, _ = jax.jit(apply)(params, state)
        leaves = named_leaves(jax.device_get(params))
        packed = {}
        for name, groups in state.groups.items():
            g = np.asarray(groups)
            w = np.moveaxis(np.asarray(leaves[name]), axis, 0)
            _, first = np.unique(g, return_index=True)
            packed[name] = DedupLeaf(w[first], g, axis)
        return pack(jax.device_get(params), packed)

    return Compressor(init, apply, encode, decode_dedup, 0.0)


def _decode_leaf(leaf: DedupLeaf) -> np.ndarray:
    return np.moveaxis(leaf.unique[leaf.groups], 0, leaf.axis)


def decode_dedup(packed: Packed) -> Params:
    """Dense parameters from a deduplication packing."""
    return unpack(packed, _decode_leaf)


def distinct_slices(
    params: Params, *, axis: int = 0, select: Select | None = None
) -> dict[str, tuple[int, int]]:
    """``(distinct, total)`` slices along ``axis`` per selected leaf."""
    out = {}
    for name, leaf in selected(params, select or kernels()).items():
        flat, _ = _slices(np.asarray(jax.device_get(leaf)), axis)
        out[name] = (int(np.unique(np.asarray(flat), axis=0).shape[0]), int(flat.shape[0]))
    return out
