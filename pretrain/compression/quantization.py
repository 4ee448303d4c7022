"""Trained quantization: per-layer weight sharing by 1-D k-means, then centroid fine-tuning.

A layer quantized to ``bits`` has ``2**bits`` codes. Code 0 is the exact zero of pruned weights
(frozen: it stays zero and gets no gradient); codes ``1 .. 2**bits - 1`` are k-means centroids
of the surviving weights, initialised linearly between their min and max (the paper's best
initialisation: it keeps the few large weights). While retraining, every weight takes its
centroid's value and the centroid moves with the sum of its members' gradients
(:mod:`pretrain.compression.sharing`).

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016, section 3 (k-means, linear initialisation,
  centroid fine-tuning; 8 bits for conv, 5 for fc layers on AlexNet).
  Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 1982.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    layer_of,
    named_leaves,
    pack,
    replace_leaves,
    selected,
    unpack,
)
from pretrain.compression.sharing import tie

INITS = ("linear", "density", "random")


class SharingState(NamedTuple):
    """Per quantized leaf: the code of every weight and the ``2**bits`` shared values.

    Attributes:
      assignments: leaf name -> int32 array of the leaf's shape, codes in ``[0, 2**bits)``.
      centroids: leaf name -> ``(2**bits,)`` values in the leaf's dtype; ``centroids[0] == 0``.
    """

    assignments: dict[str, jax.Array]
    centroids: dict[str, jax.Array]


class CodebookLeaf(NamedTuple):
    """A quantized leaf packed: its codebook and one code per weight (uint8 or uint16)."""

    codebook: np.ndarray
    codes: np.ndarray


def kmeans_1d(
    values: np.ndarray,
    k: int,
    *,
    init: str = "linear",
    iters: int = 300,
    key: jax.Array | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars, to convergence or ``iters`` rounds.

    In one dimension the nearest centroid is found by binary search over the midpoints of the
    sorted centroids, so each round is ``O(n log k)``. Empty clusters keep their position.

    Args:
      values: the data (any shape; flattened).
      k: number of clusters.
      init: ``"linear"`` (evenly between min and max), ``"density"`` (evenly spaced quantiles of
        the data) or ``"random"`` (``k`` distinct data values drawn with ``key``).
      iters: maximum Lloyd rounds.
      key: PRNG key, required for ``init="random"`` only.

    Returns:
      ``(centroids (k,) sorted float64, assignment (n,) int in [0, k))``.
    """
    x = np.asarray(values, np.float64).ravel()
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}.")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    if x.size == 0:
        return np.zeros(k), np.zeros(0, np.int64)
    if init == "linear":
        c = np.linspace(x.min(), x.max(), k)
    elif init == "density":
        c = np.quantile(x, (np.arange(k) + 0.5) / k)
    else:
        if key is None:
            raise ValueError("init='random' needs an explicit key=.")
        pick = jax.random.choice(key, x.size, (min(k, x.size),), replace=False)
        c = np.sort(x[np.asarray(pick)])
        c = np.concatenate([c, np.full(k - c.size, c[-1])])
    assign = np.zeros(x.size, np.int64)
    for _ in range(iters):
        assign = np.searchsorted((c[1:] + c[:-1]) / 2, x)
        sums = np.bincount(assign, x, minlength=k)
        counts = np.bincount(assign, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        if np.array_equal(new, c):
            break
        c = new
    return c, assign


def _bits_per_leaf(bits: int | Mapping[str, int], names: list[str]) -> dict[str, int]:
    if isinstance(bits, Mapping):
        unknown = [k for k in bits if not any(k in (n, layer_of(n)) for n in names)]
        if unknown:
            raise ValueError(f"bits: {', '.join(map(repr, unknown))} name no selected layer.")
        out = {n: bits.get(n, bits.get(layer_of(n))) for n in names}
        missing = [n for n, b in out.items() if b is None]
        if missing:
            raise ValueError(f"bits: no width for {', '.join(missing)}.")
        return {n: int(b) for n, b in out.items() if b is not None}
    return {n: int(bits) for n in names}


def _check_bits(bits: int | Mapping[str, int]) -> None:
    for b in bits.values() if isinstance(bits, Mapping) else [bits]:
        if not isinstance(b, int) or not 1 <= b <= 16:
            raise ValueError(f"bits must be an int in [1, 16], got {b!r}.")


def _apply(params: Params, state: SharingState) -> tuple[Params, SharingState]:
    leaves = named_leaves(params)
    new, centroids = {}, {}
    for name, codes in state.assignments.items():
        w = leaves[name]
        k = state.centroids[name].shape[0]
        live = (jnp.arange(k) > 0).astype(jnp.float32)
        tied, values = tie(jnp.ravel(w), jnp.ravel(codes), live)
        new[name] = tied.reshape(jnp.shape(w))
        centroids[name] = values
    return replace_leaves(params, new), SharingState(state.assignments, centroids)


def _encode(params: Params, state: SharingState) -> Packed:
    params, state = jax.jit(_apply)(params, state)
    packed = {}
    for name, codes in state.assignments.items():
        book = np.asarray(state.centroids[name])
        dtype = np.uint8 if book.shape[0] <= 256 else np.uint16
        packed[name] = CodebookLeaf(book, np.asarray(codes).astype(dtype))
    return pack(jax.device_get(params), packed)


def _decode_leaf(leaf: CodebookLeaf) -> np.ndarray:
    return leaf.codebook[leaf.codes]


def decode_shared(packed: Packed) -> Params:
    """Dense parameters from a weight-sharing packing."""
    return unpack(packed, _decode_leaf)


def weight_sharing(
    bits: int | Mapping[str, int],
    *,
    init: str = "linear",
    iters: int = 300,
    select: Select | None = None,
    key: jax.Array | None = None,
) -> Compressor:
    """Trained quantization: k-means weight sharing with ``2**bits`` codes per layer.

    Args:
      bits: code width, one for all selected layers or ``{layer: bits}`` (paper: 8 conv, 5 fc).
      init: centroid initialisation, see :func:`kmeans_1d` (``"linear"`` is the paper's choice).
      iters: maximum k-means rounds.
      select: which leaves to quantize (default: every kernel; biases stay float).
      key: PRNG key for ``init="random"``.

    Returns:
      A :class:`Compressor` with :class:`SharingState`; packed form :class:`CodebookLeaf`, exact.

    Example:
      >>> share = weight_sharing({"conv1": 8, "conv2": 8, "fc1": 5, "fc2": 5})

    References:
      Han, Mao, Dally, "Deep Compression", ICLR 2016, section 3.
    """
    _check_bits(bits)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}.")
    if init == "random" and key is None:
        raise ValueError("init='random' needs an explicit key=.")

    def init_fn(params: Params) -> SharingState:
        chosen = selected(params, select or kernels())
        widths = _bits_per_leaf(bits, list(chosen))
        assignments, centroids = {}, {}
        for i, (name, leaf) in enumerate(chosen.items()):
            w = np.asarray(jax.device_get(leaf))
            k = 2 ** widths[name]
            codes = np.zeros(w.shape, np.int32)
            nonzero = w != 0
            sub = None if key is None else jax.random.fold_in(key, i)
            c, a = kmeans_1d(w[nonzero], k - 1, init=init, iters=iters, key=sub)
            codes[nonzero] = a + 1
            book = np.concatenate([[0.0], c]).astype(w.dtype)
            assignments[name] = jnp.asarray(codes)
            centroids[name] = jnp.asarray(book)
        return SharingState(assignments, centroids)

    return Compressor(init_fn, _apply, _encode, decode_shared, 0.0)


def codebook_sizes(state: SharingState) -> dict[str, int]:
    """Codes per quantized leaf."""
    return {k: int(v.shape[0]) for k, v in state.centroids.items()}


def used_codes(state: SharingState) -> dict[str, Any]:
    """Number of distinct codes actually used per quantized leaf."""
    return {k: int(np.unique(np.asarray(v)).size) for k, v in state.assignments.items()}
