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
from devices.server.flaxgraph import graph_from_flax, signatures_for

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
    import tensorflow as tf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref = _Reference(widths, embed_dim, classes, seed, input_hw)
    graph = ref.graph(out.name, scopes, int8, train_batch, embed_batch)
    module = tf.Module()
    module.vars = {k: tf.Variable(ref.flat[k], name=k.replace("/", "_")) for k in ref.variables}
    img = tf.TensorSpec((embed_batch, input_hw, input_hw, 1), tf.float32)
    fns = {"embed": _embed_fn(ref, img)}
    if not int8:
        fns.update(_device_fns(ref, graph, module, embed_batch))
    keys = [k for k in fns if k in {s.name for s in graph.signatures}]
    model = _convert(module, fns, keys, int8=int8, seed=seed, images=tuple(img.shape))
    (out / "model.tflite").write_bytes(model)
    manifest = {"format": REFERENCE_FORMAT, "graph": graph.to_dict(), "model_bytes": len(model)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


class _Reference:
    """The reference network and head, initialised, with their parameters flat by name
    (``backbone/<layer>/<leaf>``, ``head/kernel``)."""

    def __init__(
        self, widths: Sequence[int], embed_dim: int, classes: int, seed: int, input_hw: int
    ) -> None:
        import jax
        import jax.numpy as jnp
        import numpy as np
        from flax import traverse_util

        self.widths, self.embed_dim, self.classes = widths, embed_dim, classes
        self.net, self.head = _modules(widths, embed_dim, classes)
        self.shape = (1, input_hw, input_hw, 1)
        k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
        self.bv = self.net.init(k1, jnp.zeros(self.shape))
        self.hv = self.head.init(k2, jnp.zeros((1, embed_dim)))
        flat = traverse_util.flatten_dict
        self.flat = {
            **{"backbone/" + k: np.asarray(v) for k, v in flat(self.bv["params"], sep="/").items()},
            **{"head/" + k: np.asarray(v) for k, v in flat(self.hv["params"], sep="/").items()},
        }
        self.names = sorted(self.flat)
        self.variables: list[str] = []
        self._graph: Graph | None = None

    def graph(
        self, name: str, scopes: Sequence[str], int8: bool, train_batch: int, embed_batch: int
    ) -> Graph:
        """The planner's layer graph with its signatures; sets which parameters are variables."""
        import jax.numpy as jnp

        last = f"backbone/b{len(self.widths) - 1}_"
        rules = {
            "head": {"head/": "all"},
            "head_biases": {
                "head/": "all",
                last + "dw": "bias",
                last + "pw": "bias",
                "backbone/embed": "bias",
            },
            "last_block": {
                "head/": "all",
                last + "dw": "all",
                last + "pw": "all",
                "backbone/embed": "all",
            },
        }
        chosen = {s: rules[s] for s in scopes} if not int8 else {}
        graph = graph_from_flax(
            self.net,
            self.bv,
            jnp.zeros(self.shape),
            name=name,
            head=None if int8 else self.head,
            head_variables=self.hv,
            scopes=chosen,
            bits=8 if int8 else 32,
            act_bits=8 if int8 else 32,
        )
        sigs = signatures_for(
            graph, train_batch=train_batch, embed_batch=embed_batch, embed_bits=8 if int8 else 32
        )
        self._graph = graph.with_signatures(sigs)
        self.variables = [k for k in self.names if any(self.trains(k, s) for s in graph.scopes)]
        return self._graph

    def trains(self, key: str, scope: str) -> bool:
        """Whether ``scope`` trains the parameter ``key``."""
        assert self._graph is not None
        layer, leaf = key.rsplit("/", 1)
        mode = self._graph.layers[self._graph.index(layer)].train.get(scope)
        return mode == "all" or (mode == "bias" and leaf == "bias")

    def split(self, p: dict[str, Any]) -> tuple[Any, Any]:
        from flax import traverse_util

        b = traverse_util.unflatten_dict(
            {k[9:]: v for k, v in p.items() if k.startswith("backbone/")}, sep="/"
        )
        h = traverse_util.unflatten_dict(
            {k[5:]: v for k, v in p.items() if k.startswith("head/")}, sep="/"
        )
        return {"params": b}, {"params": h}

    def embed(self, p: dict[str, Any], x: Any) -> Any:
        return self.net.apply(self.split(p)[0], x)

    def loss(self, p: dict[str, Any], x: Any, y: Any, from_images: bool) -> Any:
        import jax
        import jax.numpy as jnp

        e = self.embed(p, x) if from_images else x
        logits = self.head.apply(self.split(p)[1], e)
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, self.classes), -1))

    def constants(self) -> dict[str, Any]:
        import jax.numpy as jnp

        return {k: jnp.asarray(v) for k, v in self.flat.items()}


def _embed_fn(ref: _Reference, img: Any) -> Any:
    import tensorflow as tf
    from jax.experimental import jax2tf

    const = ref.constants()
    embed_c = jax2tf.convert(lambda x: ref.embed(const, x), with_gradient=False)
    return tf.function(
        lambda images: {"embeddings": embed_c(images)}, autograph=False, input_signature=[img]
    )


def _device_fns(ref: _Reference, graph: Graph, module: Any, embed_batch: int) -> dict[str, Any]:
    """The train steps, ``infer``, ``get_weights`` and ``set_weights`` of a float reference."""
    import tensorflow as tf
    from jax.experimental import jax2tf

    const = ref.constants()
    fns: dict[str, Any] = {}
    for sig in graph.signatures:
        if sig.kind == "train":
            fns[sig.name] = _train_fn(
                module,
                sig,
                graph,
                ref.names,
                const,
                ref.loss,
                ref.trains,
                ref.shape[1],
                ref.embed_dim,
            )
    head_c = jax2tf.convert(
        lambda w, e: ref.head.apply(ref.split({"head/kernel": w})[1], e), with_gradient=False
    )
    emb = tf.TensorSpec((embed_batch, ref.embed_dim), tf.float32)
    fns["infer"] = tf.function(
        lambda embeddings: {"scores": head_c(module.vars["head/kernel"], embeddings)},
        autograph=False,
        input_signature=[emb],
    )
    fns["get_weights"] = tf.function(
        lambda: {k.replace("/", "_"): v.read_value() for k, v in module.vars.items()},
        autograph=False,
        input_signature=[],
    )
    names = ref.variables
    specs = [tf.TensorSpec(ref.flat[k].shape, tf.float32, name=k.replace("/", "_")) for k in names]

    def set_weights(*values: Any) -> dict[str, Any]:
        for k, v in zip(names, values, strict=True):
            module.vars[k].assign(v)
        return {"ok": tf.constant(1, tf.int32)}

    fns["set_weights"] = tf.function(set_weights, autograph=False, input_signature=specs)
    return fns


def _convert(
    module: Any, fns: dict[str, Any], keys: list[str], *, int8: bool, seed: int, images: tuple
) -> bytes:
    """SavedModel -> TFLite: full-integer int8 calibrated on random images, or float with
    resource variables."""
    import numpy as np
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(
            module, tmp, signatures={k: fns[k].get_concrete_function() for k in keys}
        )
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=keys)
        if int8:
            rng = np.random.default_rng(seed)

            def representative() -> Any:
                for _ in range(16):
                    yield {"images": rng.random(images, dtype=np.float32)}

            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        else:
            conv.experimental_enable_resource_variables = True
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return bytes(conv.convert())


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
    return tf.function(train, autograph=False, input_signature=specs)
