"""The artifact's layer graph (``devices.Graph``) for the planner: front, last block, head.

The layers are those the ``embed`` flatbuffer runs: each convolution with its bias and ReLU6
fused (one CONV_2D / DEPTHWISE_CONV_2D, as ``export.artifact.tfnative`` builds it), and for an
EmbedNet the parameter-free ops that are real kernels there too: the global average pool (MEAN;
with ``pool="gdc"`` a DEPTHWISE_CONV_2D over the whole map, with its weights), the feature
standardisation (when the model has ``feature_norm``) and the final
L2_NORMALIZATION, which is the embedding layer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from devices.graph import Graph, LayerSpec, SignatureSpec
from devices.server.flaxgraph import layers_from_flax
from export.artifact.convert import Signature
from export.artifact.head import HeadConfig
from export.artifact.split import Backbone


def artifact_graph(
    backbone: Backbone,
    head: HeadConfig,
    scopes: Sequence[str],
    signatures: Sequence[Signature],
    *,
    name: str,
    embed_bits: int,
    train_batch: int,
) -> Graph:
    """The graph of an artifact: which layers each scope trains, what each signature runs.

    Args:
      backbone, head, scopes: as exported.
      signatures: the artifact's signature contract.
      name: graph name (the artifact's).
      embed_bits: stored precision of the frozen backbone (8 for int8, 32 for float).
      train_batch: batch the planner assumes for a train step (the enrollment shot count).
    """
    example = jax.ShapeDtypeStruct((1, *backbone.input_shape), jnp.float32)
    features = jax.ShapeDtypeStruct((1, *backbone.features_shape), jnp.float32)
    front = layers_from_flax(
        backbone.module("front"),
        {"params": backbone.front_params},
        example,
        prefix="backbone/",
        bits=embed_bits,
        act_bits=embed_bits,
    )
    last = layers_from_flax(
        backbone.module("last"),
        {"params": backbone.last_params},
        features,
        prefix="backbone/",
        bits=embed_bits,
        act_bits=embed_bits,
    )
    last = _functional(backbone, last, embed_bits)
    wide = {"head_biases": "bias", "last_block": "all"}
    last = [
        dataclasses.replace(layer, train={s: wide[s] for s in scopes if s in wide})
        for layer in last
    ]
    e, k = head.embedding_dim, head.classes
    head_layer = LayerSpec(
        name="head",
        op="dense",
        input_shape=(e,),
        output_shape=(k,),
        kernel_params=e * k,
        bias_params=0,
        bits=32,
        act_bits=32,
        macs=e * k,
        train={s: "all" for s in scopes},
    )
    specs = []
    for sig in signatures:
        if sig.kind == "train":
            source = next(iter(sig.inputs))
            specs.append(SignatureSpec(sig.name, "train", train_batch, sig.scope, source, 32))
        elif sig.kind == "refine":
            specs.append(SignatureSpec(sig.name, "refine", 1, None, "features", 32))
        elif sig.kind == "embed":
            specs.append(SignatureSpec(sig.name, "embed", 1, None, "images", embed_bits))
        else:
            specs.append(SignatureSpec(sig.name, sig.kind, 1, sig.scope, "embeddings", 32))
    return Graph(
        name=name,
        input_shape=tuple(backbone.input_shape),
        layers=(*front, *last, head_layer),
        embedding_layer=last[-1].name,
        features_layer=front[-1].name,
        scopes=tuple(scopes),
        signatures=tuple(specs),
        optimizer_slots=0,
    )


def _functional(backbone: Backbone, last: list[LayerSpec], bits: int) -> list[LayerSpec]:
    """The last block with the parameter-free kernels the flatbuffer runs (EmbedNet: pool,
    optional feature standardisation, L2 normalisation); other models unchanged."""
    if backbone.name != "embednet":
        return last
    dense = next(i for i, layer in enumerate(last) if layer.op == "dense")
    fmap = last[dense - 1].output_shape
    c, e = fmap[-1], last[-1].output_shape[-1]
    op = lambda name, kind, shape_in, shape_out, macs: LayerSpec(  # noqa: E731
        name=f"backbone/{name}",
        op=kind,
        input_shape=shape_in,
        output_shape=shape_out,
        bits=bits,
        act_bits=bits,
        macs=macs,
    )
    middle = [op("pool", "pool", tuple(fmap), (c,), math.prod(fmap))]
    if backbone.options.get("pool") == "gdc":  # a "VALID" depthwise conv: a weight per input
        middle = [
            dataclasses.replace(middle[0], op="depthwise_conv", kernel_params=math.prod(fmap))
        ]
    if backbone.options.get("feature_norm"):
        middle.append(op("feature_norm", "normalize", (c,), (c,), 3 * c))
    tail = []
    if backbone.options.get("normalize", True):
        tail.append(op("l2_normalize", "normalize", (e,), (e,), 2 * e))
    return [*last[:dense], *middle, *last[dense:], *tail]
