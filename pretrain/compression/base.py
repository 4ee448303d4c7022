"""The compressor interface, leaf selection by path, and ``chain``.

A compressor is a NamedTuple of pure functions over parameter pytrees, composable like
``optax.chain``, keeping tfmot's ``WeightCompressor`` split between a training-time projection and
a packed form:

- ``init(params) -> state``: masks / codebooks / assignments computed from trained parameters;
- ``apply(params, state) -> (params, state)``: the training-time projection (differentiable in
  ``params``, jittable); the loss sees its output, so gradients reach only what the compression
  keeps;
- ``encode(params, state) -> packed`` and ``decode(packed) -> params``: the packed form of
  ``apply(params, state)[0]``; ``decode(encode(p, s))`` equals it within ``tolerance``.

States are NamedTuples whose fields are dicts keyed by leaf path (``"fc1/kernel"``), so they are
pytrees with shapes fixed by ``init``.

References:
  Han, Mao, Dally, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained
  Quantization and Huffman Coding", ICLR 2016.
  Kim, Chiao, Yoo, "TensorFlow Model Optimization Compression API", TF RFC 342, 2020.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

Params = Any
Select = Callable[[str, Any], bool]


class Compressor(NamedTuple):
    """One compression method (or a chain of them).

    Attributes:
      init: ``params -> state``.
      apply: ``(params, state) -> (params, state)``, the projection the loss sees.
      encode: ``(params, state) -> packed``, host-side numpy.
      decode: ``packed -> params``.
      tolerance: max abs difference of ``decode(encode(p, s))`` from ``apply(p, s)[0]``.
    """

    init: Callable[[Params], Any]
    apply: Callable[[Params, Any], tuple[Params, Any]]
    encode: Callable[[Params, Any], Any]
    decode: Callable[[Any], Params]
    tolerance: float = 0.0


def path_name(path: Sequence[Any]) -> str:
    """``"fc1/kernel"`` for the key path of ``params["fc1"]["kernel"]``."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def named_leaves(params: Params) -> dict[str, Any]:
    """The leaves of ``params`` keyed by their path names, in tree order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    return {path_name(p): leaf for p, leaf in flat}


def replace_leaves(params: Params, new: Mapping[str, Any]) -> Params:
    """``params`` with the leaves named in ``new`` replaced; structure unchanged."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    leaves = [new.get(path_name(p), leaf) for p, leaf in flat]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def layer_of(name: str) -> str:
    """The layer a leaf belongs to: ``"fc1"`` for ``"fc1/kernel"``."""
    return name.rsplit("/", 1)[0] if "/" in name else name


def kernels(layers: Iterable[str] | None = None) -> Select:
    """Selects weight matrices / convolution kernels (ndim >= 2), optionally of named layers only.

    Args:
      layers: layer names (``"fc1"``) or leaf paths (``"fc1/kernel"``); all layers if None.
    """
    wanted = None if layers is None else frozenset(layers)

    def select(name: str, leaf: Any) -> bool:
        if np.ndim(leaf) < 2:
            return False
        return wanted is None or name in wanted or layer_of(name) in wanted

    return select


def selected(params: Params, select: Select) -> dict[str, Any]:
    """The leaves ``select`` picks, by name; an error if it picks none."""
    out = {k: v for k, v in named_leaves(params).items() if select(k, v)}
    if not out:
        names = ", ".join(named_leaves(params))
        raise ValueError(f"the selection picks no parameter; leaves are: {names}.")
    return out


def per_leaf(
    value: float | Mapping[str, float], names: Iterable[str], what: str
) -> dict[str, float]:
    """Expands a float or a ``{layer or leaf: value}`` mapping to one value per selected leaf.

    Leaves a mapping does not name get 0.0; a key that names no selected leaf is an error.
    """
    names = list(names)
    if not isinstance(value, Mapping):
        return {n: float(value) for n in names}
    unknown = [k for k in value if not any(k in (n, layer_of(n)) for n in names)]
    if unknown:
        raise ValueError(
            f"{what}: {', '.join(map(repr, unknown))} name no selected layer; "
            f"selected: {', '.join(names)}."
        )
    out = {}
    for n in names:
        out[n] = float(value.get(n, value.get(layer_of(n), 0.0)))
    return out


def chain(*compressors: Compressor) -> Compressor:
    """Applies compressors in order, like ``optax.chain``; the state is the tuple of states.

    Each ``init`` sees the parameters projected by the compressors before it (a quantizer after a
    pruner clusters only the surviving weights). The packed form is the last compressor's packing
    of the fully projected parameters; every packing here is exact on its own projection, so the
    chain decodes to what it applies.

    Example:
      >>> c = chain(magnitude_pruning(0.9), weight_sharing(5))
      >>> state = c.init(params)
      >>> params, state = c.apply(params, state)
    """
    if not compressors:
        raise ValueError("chain() needs at least one compressor.")

    def init(params: Params) -> tuple[Any, ...]:
        states = []
        for c in compressors:
            state = c.init(params)
            params, state = jax.jit(c.apply)(params, state)
            states.append(state)
        return tuple(states)

    def apply(params: Params, states: tuple[Any, ...]) -> tuple[Params, tuple[Any, ...]]:
        out = []
        for c, state in zip(compressors, states, strict=True):
            params, state = c.apply(params, state)
            out.append(state)
        return params, tuple(out)

    def encode(params: Params, states: tuple[Any, ...]) -> Any:
        for c, state in zip(compressors[:-1], states[:-1], strict=True):
            params, _ = jax.jit(c.apply)(params, state)
        return compressors[-1].encode(params, states[-1])

    return Compressor(init, apply, encode, compressors[-1].decode, compressors[-1].tolerance)


def to_numpy(tree: Any) -> Any:
    """Host numpy copies of every leaf."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


class Packed(NamedTuple):
    """The packed form of a parameter tree: its structure and one entry per leaf, in tree order.

    Attributes:
      treedef: the parameter tree's structure.
      leaves: leaf name -> a packed leaf (a method's NamedTuple) or, for leaves the method does
        not compress, the numpy array itself.
    """

    treedef: Any
    leaves: dict[str, Any]


def pack(params: Params, packed: Mapping[str, Any]) -> Packed:
    """A :class:`Packed` holding ``packed[name]`` for compressed leaves and numpy copies of the rest."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    leaves = {}
    for p, leaf in flat:
        name = path_name(p)
        leaves[name] = packed[name] if name in packed else np.asarray(leaf)
    return Packed(treedef, leaves)


def unpack(packed: Packed, decode_leaf: Callable[[Any], np.ndarray]) -> Params:
    """The parameter tree of ``packed``; ``decode_leaf`` expands each packed (non-array) leaf."""
    leaves = [v if isinstance(v, np.ndarray) else decode_leaf(v) for v in packed.leaves.values()]
    return jax.tree_util.tree_unflatten(packed.treedef, leaves)
