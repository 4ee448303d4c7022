"""Server side: the layer graph of a Flax model (jax and flax are imported inside the functions).

Every leaf module call is intercepted under ``jax.eval_shape`` (nothing is computed) and becomes
one :class:`devices.LayerSpec` with its input and output shapes, its parameter counts and its
multiply-accumulates. Functional ops between modules (ReLU, pooling, reshapes) fuse into the
neighbouring layers in LiteRT and are not listed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from devices.graph import Graph, LayerSpec, SignatureSpec


def _op(module: Any, kernel_shape: tuple[int, ...] | None) -> str:
    kind = type(module).__name__
    if "Depthwise" in kind:
        return "depthwise_conv"
    if "Conv" in kind:
        groups = int(getattr(module, "feature_group_count", 1) or 1)
        depthwise = groups > 1 and kernel_shape is not None and kernel_shape[-2] == 1
        return "depthwise_conv" if depthwise else "conv"
    if kind in ("Dense", "DenseGeneral", "Einsum") or kernel_shape is not None:
        return "dense"
    if "Norm" in kind:
        return "normalize"
    return "other"


def _size(x: Any) -> int:
    return int(math.prod(x.shape))


def layers_from_flax(
    module: Any,
    variables: Mapping[str, Any],
    example: Any,
    *,
    prefix: str = "",
    bits: int = 32,
    act_bits: int = 32,
) -> list[LayerSpec]:
    """Layers of ``module`` applied to ``example`` (batch axis first), in call order.

    Args:
      module: a Flax linen module.
      variables: its variables (``{"params": ...}``); arrays or shape structs.
      example: an input batch or a ``jax.ShapeDtypeStruct``.
      prefix: prepended to every layer name (e.g. ``"backbone/"``).
      bits, act_bits: stored weight precision and inference activation precision to record.
    """
    import flax.linen as nn
    import jax

    records: list[LayerSpec] = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        mod = context.module
        if context.method_name != "__call__":
            return out
        params = mod.variables.get("params", {}) if mod.scope is not None else {}
        leaves = {k: v for k, v in params.items() if hasattr(v, "shape")}
        nested = any(isinstance(v, Mapping) for v in params.values())
        if nested or not args or not hasattr(args[0], "shape") or not hasattr(out, "shape"):
            return out
        kernel = leaves.get("kernel", leaves.get("scale"))
        kshape = tuple(kernel.shape) if kernel is not None else None
        kernel_params = _size(kernel) if kernel is not None else 0
        bias_params = _size(leaves["bias"]) if "bias" in leaves else 0
        macs = 0
        if "kernel" in leaves and kshape:
            positions = _size(out) // (out.shape[0] * out.shape[-1])
            macs = positions * kernel_params
        path = "/".join(str(p) for p in mod.path) if hasattr(mod, "path") else str(mod.name)
        name = prefix + path if path else prefix.rstrip("/") or type(mod).__name__
        if mod is module and not leaves:
            return out
        records.append(
            LayerSpec(
                name=name,
                op=_op(mod, kshape if "kernel" in leaves else None),
                input_shape=tuple(int(d) for d in args[0].shape[1:]),
                output_shape=tuple(int(d) for d in out.shape[1:]),
                kernel_params=kernel_params,
                bias_params=bias_params,
                bits=bits,
                act_bits=act_bits,
                macs=macs,
            )
        )
        return out

    def run(v: Any, x: Any) -> Any:
        with nn.intercept_methods(interceptor):
            return module.apply(v, x)

    jax.eval_shape(run, variables, example)
    return records


def graph_from_flax(
    backbone: Any,
    backbone_variables: Mapping[str, Any],
    example: Any,
    *,
    name: str,
    head: Any = None,
    head_variables: Mapping[str, Any] | None = None,
    scopes: Mapping[str, Mapping[str, str]] | None = None,
    signatures: Iterable[SignatureSpec] = (),
    bits: int = 32,
    act_bits: int = 32,
    optimizer_slots: int = 0,
) -> Graph:
    """The :class:`devices.Graph` of a backbone (and optional head) for the planner.

    Args:
      backbone: Flax module producing the embedding; its last layer is the embedding layer.
      backbone_variables, example: its variables and an input batch (or shape struct).
      name: the graph's name.
      head: optional Flax module applied to the embedding (``head_variables`` beside it).
      scopes: ``{scope: {layer name or prefix ending in "/": "all" | "bias"}}``, narrow to wide.
      signatures: the artifact's signatures, if known.
      bits, act_bits: stored precision of the backbone's frozen weights and activations.
      optimizer_slots: 0 for plain SGD, 1 for SGD with momentum.

    Example:
      >>> graph = graph_from_flax(EmbedNet(), variables, jnp.zeros((1, 96, 96, 1)), name="face",
      ...     head=CosineHead(20), head_variables=hv, scopes={"head": {"head/": "all"}})
    """
    import jax

    layers = layers_from_flax(
        backbone, backbone_variables, example, prefix="backbone/", bits=bits, act_bits=act_bits
    )
    if not layers:
        raise ValueError(f"{name}: no parameterised layer found in the backbone.")
    embedding = layers[-1].name
    if head is not None:
        out = jax.eval_shape(backbone.apply, backbone_variables, example)
        layers += layers_from_flax(head, head_variables or {}, out, prefix="head/")
    scope_map = dict(scopes or {})
    annotated = []
    for layer in layers:
        train = {}
        for scope, rules in scope_map.items():
            mode = _match(layer.name, rules)
            if mode is not None:
                train[scope] = mode
        annotated.append(_replace(layer, train))
    return Graph(
        name=name,
        input_shape=tuple(int(d) for d in example.shape[1:]),
        layers=tuple(annotated),
        embedding_layer=embedding,
        scopes=tuple(scope_map),
        signatures=tuple(signatures),
        optimizer_slots=optimizer_slots,
    )


def _match(name: str, rules: Mapping[str, str]) -> str | None:
    best: tuple[int, str] | None = None
    for key, mode in rules.items():
        hit = name == key or (key.endswith("/") and (name.startswith(key) or name == key[:-1]))
        if hit and (best is None or len(key) > best[0]):
            best = (len(key), mode)
    return best[1] if best else None


def _replace(layer: LayerSpec, train: Mapping[str, str]) -> LayerSpec:
    import dataclasses

    return dataclasses.replace(layer, train=dict(train))


def signatures_for(
    graph: Graph,
    *,
    train_batch: int,
    embed_batch: int = 1,
    embed_bits: int = 32,
    train_frozen_bits: int = 32,
    names: Sequence[str] | None = None,
) -> tuple[SignatureSpec, ...]:
    """The signature set issue 6 exports: embed, a train per scope, infer, get/set weights.

    The narrowest scope's step is ``train``; wider ones are ``train_<scope>``.
    """
    sigs = [SignatureSpec("embed", "embed", embed_batch, None, "images", embed_bits)]
    for i, scope in enumerate(graph.scopes):
        sigs.append(
            SignatureSpec(
                "train" if i == 0 else f"train_{scope}",
                "train",
                train_batch,
                scope,
                graph.train_input(scope),
                train_frozen_bits,
            )
        )
    if graph.head:
        sigs.append(SignatureSpec("infer", "infer", embed_batch, None, "embeddings", 32))
    if graph.scopes:
        widest = graph.scopes[-1]
        sigs.append(SignatureSpec("get_weights", "get_weights", 1, widest, "embeddings", 32))
        sigs.append(SignatureSpec("set_weights", "set_weights", 1, widest, "embeddings", 32))
    if names is not None:
        sigs = [s for s in sigs if s.name in names]
    return tuple(sigs)
