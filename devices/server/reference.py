"""Server side: small LiteRT artifacts to validate the planner against (jax, flax, tensorflow
imported inside the functions, never when ``devices`` is imported).

They follow ``shared/FEASIBILITY.md`` the way the export issue does: an EmbedNet-like backbone
(strided stem, depthwise-separable blocks, ReLU6, global average pooling, L2-normalised
embedding), a cosine head, ``jax2tf.convert`` of each SGD-with-weight-decay step inside a
``tf.Module`` whose ``tf.Variable`` s hold the trainable weights, one ``train`` signature per
scope, ``embed``/``infer``/``get_weights``/``set_weights``, converted to builtins with resource
variables; or a full-integer int8 ``embed`` (post-training quantization). Each artifact directory
holds ``model.tflite`` and a ``manifest.json`` whose ``"graph"`` is the planner's layer graph.

The last block is a dense strided 3x3 conv + 1x1 conv: the kernel gradient of a depthwise conv
does not legalize to TFLite builtins here ('tfl.conv_2d' op inferred type(s) ... incompatible).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devices.graph import Graph, SignatureSpec

REFERENCE_FORMAT = "pocketfit-reference/1"
COSINE_SCALE = 16.0


def _modules(widths: Sequence[int], embed_dim: int, classes: int) -> tuple[Any, Any]:
    import flax.linen as nn
    import jax.numpy as jnp

    last = len(widths) - 1

    class RefNet(nn.Module):
        @nn.compact
        def __call__(self, x: Any) -> Any:
            x = jnp.clip(nn.Conv(widths[0], (3, 3), strides=(2, 2), name="stem")(x), 0.0, 6.0)
            for i, w in enumerate(widths[1:], start=1):
                c = x.shape[-1]
                groups = c if i < last else 1  # the trainable last block: no depthwise kernel
                x = nn.Conv(c, (3, 3), strides=(2, 2), feature_group_count=groups, name=f"b{i}_dw")(
                    x
                )
                x = jnp.clip(x, 0.0, 6.0)
                x = jnp.clip(nn.Conv(w, (1, 1), name=f"b{i}_pw")(x), 0.0, 6.0)
            x = nn.Dense(embed_dim, name="embed")(x.mean(axis=(1, 2)))
            return x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-12)

    class CosineHead(nn.Module):
        @nn.compact
        def __call__(self, e: Any) -> Any:
            w = self.param("kernel", nn.initializers.normal(0.1), (e.shape[-1], classes))
            w = w / jnp.sqrt(jnp.sum(w * w, axis=0, keepdims=True) + 1e-12)
            return COSINE_SCALE * e @ w

    return RefNet(), CosineHead()


def build_reference(
    out_dir: str | os.PathLike[str],
    *,
    widths: Sequence[int] = (16, 32, 64, 128),
    input_hw: int = 64,
    embed_dim: int = 64,
    classes: int = 5,
    train_batch: int = 5,
    embed_batch: int = 1,
    scopes: Sequence[str] = ("head", "head_biases", "last_block"),
    int8: bool = False,
    seed: int = 0,
) -> Path:
    """Converts a reference artifact into ``out_dir`` (``model.tflite`` + ``manifest.json``).

    Args:
      widths: stem width then one width per block; the last block is the trainable one.
      input_hw: square grayscale input side.
      scopes: training scopes to export (subset of head, head_biases, last_block).
      int8: an embed-only artifact, full-integer int8 by post-training quantization.

    Returns:
      ``out_dir``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import jax
    import jax.numpy as jnp
    import numpy as np
    import tensorflow as tf
    from flax import traverse_util
    from jax.experimental import jax2tf

    from devices.server.flaxgraph import graph_from_flax, signatures_for

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net, head = _modules(widths, embed_dim, classes)
    shape = (1, input_hw, input_hw, 1)
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    bv = net.init(k1, jnp.zeros(shape))
    hv = head.init(k2, jnp.zeros((1, embed_dim)))
    last = f"backbone/b{len(widths) - 1}_"
    rules = {
        "head": {"head/": "all"},
        "head_biases": {"head/": "all", last + "dw": "bias", last + "pw": "bias", "backbone/embed": "bias"},
        "last_block": {"head/": "all", last + "dw": "all", last + "pw": "all", "backbone/embed": "all"},
    }  # fmt: skip
    chosen = {s: rules[s] for s in scopes} if not int8 else {}
    graph = graph_from_flax(
        net, bv, jnp.zeros(shape), name=out.name, head=None if int8 else head,
        head_variables=hv, scopes=chosen, bits=8 if int8 else 32, act_bits=8 if int8 else 32,
    )  # fmt: skip
    sigs = signatures_for(
        graph, train_batch=train_batch, embed_batch=embed_batch, embed_bits=8 if int8 else 32
    )
    graph = graph.with_signatures(sigs)

    flat = {
        **{"backbone/" + k: np.asarray(v) for k, v in traverse_util.flatten_dict(bv["params"], sep="/").items()},
        **{"head/" + k: np.asarray(v) for k, v in traverse_util.flatten_dict(hv["params"], sep="/").items()},
    }  # fmt: skip

    def trains(key: str, scope: str) -> bool:
        layer, leaf = key.rsplit("/", 1)
        mode = graph.layers[graph.index(layer)].train.get(scope)
        return mode == "all" or (mode == "bias" and leaf == "bias")

    names = sorted(flat)
    var_names = [k for k in names if any(trains(k, s) for s in graph.scopes)]

    def split(p: dict[str, Any]) -> tuple[Any, Any]:
        b = traverse_util.unflatten_dict(
            {k[9:]: v for k, v in p.items() if k.startswith("backbone/")}, sep="/"
        )
        h = traverse_util.unflatten_dict(
            {k[5:]: v for k, v in p.items() if k.startswith("head/")}, sep="/"
        )
        return {"params": b}, {"params": h}  # fmt: skip

    def embed_fn(p: dict[str, Any], x: Any) -> Any:
        return net.apply(split(p)[0], x)

    def loss_fn(p: dict[str, Any], x: Any, y: Any, from_images: bool) -> Any:
        e = embed_fn(p, x) if from_images else x
        logits = head.apply(split(p)[1], e)
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, classes), -1))

    const = {k: jnp.asarray(v) for k, v in flat.items()}
    module = tf.Module()
    module.vars = {k: tf.Variable(flat[k], name=k.replace("/", "_")) for k in var_names}
    fns: dict[str, Any] = {}
    img = tf.TensorSpec((embed_batch, input_hw, input_hw, 1), tf.float32)
    emb = tf.TensorSpec((embed_batch, embed_dim), tf.float32)
    embed_c = jax2tf.convert(lambda x: embed_fn(const, x), with_gradient=False)
    fns["embed"] = tf.function(
        lambda images: {"embeddings": embed_c(images)}, input_signature=[img]
    )
    if not int8:
        for sig in graph.signatures:
            if sig.kind != "train":
                continue
            assert sig.scope is not None
            fns[sig.name] = _train_fn(
                module, sig, graph, names, const, loss_fn, trains, input_hw, embed_dim
            )
        head_c = jax2tf.convert(
            lambda w, e: head.apply(split({"head/kernel": w})[1], e), with_gradient=False
        )
        fns["infer"] = tf.function(
            lambda embeddings: {"scores": head_c(module.vars["head/kernel"], embeddings)},
            input_signature=[emb],
        )
        fns["get_weights"] = tf.function(
            lambda: {k.replace("/", "_"): v.read_value() for k, v in module.vars.items()},
            input_signature=[],
        )
        specs = [
            tf.TensorSpec(flat[k].shape, tf.float32, name=k.replace("/", "_")) for k in var_names
        ]

        def set_weights(*values: Any) -> dict[str, Any]:
            for k, v in zip(var_names, values, strict=True):
                module.vars[k].assign(v)
            return {"ok": tf.constant(1, tf.int32)}

        fns["set_weights"] = tf.function(set_weights, input_signature=specs)
    keys = [k for k in fns if k in {s.name for s in graph.signatures}]
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(
            module, tmp, signatures={k: fns[k].get_concrete_function() for k in keys}
        )
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=keys)
        if int8:
            rng = np.random.default_rng(seed)

            def representative() -> Any:
                for _ in range(16):
                    yield {
                        "images": rng.random((embed_batch, input_hw, input_hw, 1), dtype=np.float32)
                    }

            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        else:
            conv.experimental_enable_resource_variables = True
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        model = conv.convert()
    (out / "model.tflite").write_bytes(model)
    manifest = {"format": REFERENCE_FORMAT, "graph": graph.to_dict(), "model_bytes": len(model)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _train_fn(module, sig: SignatureSpec, graph: Graph, names, const, loss_fn, trains, hw, dim):
    import jax
    import tensorflow as tf
    from jax.experimental import jax2tf

    assert sig.scope is not None
    scope = sig.scope
    tn = [k for k in names if trains(k, scope)]
    frozen = {k: v for k, v in const.items() if k not in tn}
    from_images = sig.input == "images"

    def step(tv, x, y, lr, wd):
        def loss(tv):
            return loss_fn({**frozen, **dict(zip(tn, tv, strict=True))}, x, y, from_images)

        value, grads = jax.value_and_grad(loss)(tv)
        return value, [v - lr * (g + wd * v) for v, g in zip(tv, grads, strict=True)]

    converted = jax2tf.convert(step, with_gradient=False)
    x_spec = (
        tf.TensorSpec((sig.batch, hw, hw, 1), tf.float32, name="images")
        if from_images
        else tf.TensorSpec((sig.batch, dim), tf.float32, name="embeddings")
    )

    def train(x, labels, lr, weight_decay):
        loss, new = converted([module.vars[k] for k in tn], x, labels, lr, weight_decay)
        for k, v in zip(tn, new, strict=True):
            module.vars[k].assign(v)
        return {"loss": loss}

    specs = [
        x_spec,
        tf.TensorSpec((sig.batch,), tf.int32, name="labels"),
        tf.TensorSpec((), tf.float32, name="lr"),
        tf.TensorSpec((), tf.float32, name="weight_decay"),
    ]
    return tf.function(train, input_signature=specs)
