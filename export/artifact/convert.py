"""JAX functions -> one LiteRT flatbuffer with named signatures, builtins only.

Each device operation is a JAX function converted with ``jax2tf`` (native serialisation,
``with_gradient=False``) inside a ``tf.Module`` whose ``tf.Variable``s hold the trainable values;
``TFLiteConverter.from_saved_model`` with resource variables and ``TFLITE_BUILTINS`` makes the
flatbuffer. The signatures of a model with TensorFlow builders (EmbedNet) are built from
TensorFlow ops instead: ``embed`` (``export.artifact.tfnative``: a canonical conv net with fused
bias and ReLU6) and ``train*`` / ``refine`` / ``infer`` (``export.artifact.tftrain``: the
backward pass written out, no shape arithmetic), each checked against JAX at build time. With ``int8=True`` only ``embed`` is calibrated (on the representative images given)
and becomes full-integer; the training signatures stay float, and the kernels that initialise
their variables are stored int8 (``export.artifact.flatbuffer``). Tensor names are stripped.

Two constraints of the converter shape the contract (checked on this machine):
  * a signature without inputs breaks int8 calibration ("NULL SignatureDef inputs"), so
    ``get_weights`` takes a dummy scalar;
  * batch axes are symbolic (``polymorphic_shapes`` / ``None``), so one signature serves any batch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from export.artifact.flatbuffer import compact_initial_values, load_model, strip_tensor_names
from export.artifact.head import HeadConfig
from export.artifact.scopes import (
    Variables,
    infer_fn,
    refine_fn,
    train_fn,
    variable_names,
)
from export.artifact.split import Backbone
from export.artifact.tfnative import native_embed
from export.artifact.tftrain import Steps, native_steps

# TFLite builtin ops that are fine on a phone; anything else (Flex, custom) is refused.
FORBIDDEN_OP_PREFIXES = ("FLEX", "CUSTOM")


class ConversionError(RuntimeError):
    """The converted model is unusable on a stock LiteRT runtime; the message says why."""


def tensor_name(variable: str) -> str:
    """Signature-safe name of a variable (``head/kernel`` -> ``head__kernel``)."""
    return variable.replace("/", "__")


class Signature(NamedTuple):
    """One entry of the artifact's signature contract."""

    name: str
    kind: str
    scope: str | None
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]


def _spec(shape: Sequence[int | None], dtype: str) -> dict[str, Any]:
    return {"shape": [-1 if d is None else int(d) for d in shape], "dtype": dtype}


def contract(
    backbone: Backbone,
    head: HeadConfig,
    scopes: Sequence[str],
    variables: Mapping[str, Sequence[int]],
) -> list[Signature]:
    """The signatures the artifact offers, with input/output shapes (-1 = any batch).

    Args:
      variables: ``{variable name: shape}`` of every variable the artifact holds.
    """
    e, fshape = head.embedding_dim, list(backbone.features_shape)
    wide = len(scopes) > 1
    f32 = "float32"
    embed_out = {"embeddings": _spec([None, e], f32)}
    if wide:
        embed_out["features"] = _spec([None, *fshape], f32)
    images = {"images": _spec([None, *backbone.input_shape], f32)}
    sigs = [Signature("embed", "embed", None, images, embed_out)]
    for scope in scopes:
        source = {"embeddings": [None, e]} if scope == "head" else {"features": [None, *fshape]}
        inputs = {k: _spec(v, f32) for k, v in source.items()}
        inputs.update(labels=_spec([None], "int32"), lr=_spec([], f32), weight_decay=_spec([], f32))
        name = "train" if scope == "head" else f"train_{scope}"
        sigs.append(Signature(name, "train", scope, inputs, {"loss": _spec([], f32)}))
    scores = {"scores": _spec([None, head.classes], f32)}
    sigs.append(Signature("infer", "infer", None, {"embeddings": _spec([None, e], f32)}, scores))
    if wide:
        features = {"features": _spec([None, *fshape], f32)}
        sigs.append(
            Signature("refine", "refine", None, features, {"embeddings": _spec([None, e], f32)})
        )
    weights = {tensor_name(n): _spec(shape, f32) for n, shape in variables.items()}
    widest = scopes[-1]
    sigs.append(
        Signature("get_weights", "get_weights", widest, {"unused": _spec([], "int32")}, weights)
    )
    sigs.append(
        Signature("set_weights", "set_weights", widest, weights, {"count": _spec([], "int32")})
    )
    return sigs


def _jax2tf_embed(backbone: Backbone, wide: bool) -> Callable[[Any], dict[str, Any]]:
    """``embed`` through jax2tf under a symbolic batch (models without a TensorFlow builder)."""
    from jax.experimental import jax2tf

    front, embed_all = backbone.front(), backbone.embed()
    poly = "(b, " + ", ".join("_" for _ in backbone.input_shape) + ")"
    return jax2tf.convert(
        (lambda x: {"embeddings": embed_all(x), "features": front(x)}) if wide else
        (lambda x: {"embeddings": embed_all(x)}),
        with_gradient=False, polymorphic_shapes=[poly],
    )  # fmt: skip


def _jax2tf_steps(backbone: Backbone, head: HeadConfig, scopes: Sequence[str]) -> Steps:
    """``train*``, ``infer`` and ``refine`` through jax2tf under a symbolic batch (models without
    a TensorFlow steps builder)."""
    from jax.experimental import jax2tf

    batch = lambda rest: "(b, " + ", ".join("_" for _ in rest) + ")"  # noqa: E731
    e, fshape = head.embedding_dim, backbone.features_shape
    var_poly = {n: None for n in variable_names(backbone, scopes)}
    infer = jax2tf.convert(
        infer_fn(head), with_gradient=False, polymorphic_shapes=[var_poly, batch([e])]
    )
    refine = jax2tf.convert(
        refine_fn(backbone), with_gradient=False, polymorphic_shapes=[var_poly, batch(fshape)]
    )
    train = {
        scope: jax2tf.convert(
            train_fn(backbone, head, scope),
            with_gradient=False,
            polymorphic_shapes=[
                var_poly,
                batch([e] if scope == "head" else fshape),
                "(b,)",
                None,
                None,
            ],
        )
        for scope in scopes
    }
    return Steps(train=train, infer=infer, refine=refine if len(scopes) > 1 else None)


def build_tflite(
    backbone: Backbone,
    head: HeadConfig,
    scopes: Sequence[str],
    initial: Variables,
    *,
    int8: bool,
    calibration: Iterable[np.ndarray] = (),
) -> bytes:
    """Converts the backbone, head and scopes into one flatbuffer.

    Args:
      backbone: the cut backbone (front + last block).
      head: head configuration.
      scopes: exported training scopes, narrow -> wide (``head`` first).
      initial: starting variable values (see ``scopes.initial_variables``).
      int8: full-integer ``embed`` (needs ``calibration``); float otherwise.
      calibration: batches of preprocessed images from the pretraining data.

    Returns:
      The ``.tflite`` bytes.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    names = variable_names(backbone, scopes)
    if set(names) != set(initial):
        raise ValueError(f"initial variables {sorted(initial)} do not match {names}.")
    e, fshape, ishape = head.embedding_dim, backbone.features_shape, backbone.input_shape
    wide = len(scopes) > 1
    f32 = tf.float32

    conv_embed = native_embed(backbone, with_features=wide) or _jax2tf_embed(backbone, wide)
    steps = native_steps(backbone, head, scopes) or _jax2tf_steps(backbone, head, scopes)

    class Artifact(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vars = {
                tensor_name(n): tf.Variable(np.asarray(initial[n]), name=tensor_name(n))
                for n in names
            }

        def values(self) -> dict[str, Any]:
            return {n: self.vars[tensor_name(n)].read_value() for n in names}

    module = Artifact()
    signatures: dict[str, Callable[..., Any]] = {}

    @tf.function(
        autograph=False, input_signature=[tf.TensorSpec([None, *ishape], f32, name="images")]
    )
    def embed(images):
        return conv_embed(images)

    signatures["embed"] = embed

    def make_train(scope: str) -> Callable[..., Any]:
        source, shape = (
            ("embeddings", [None, e]) if scope == "head" else ("features", [None, *fshape])
        )

        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec(shape, f32, name=source), tf.TensorSpec([None], tf.int32, name="labels"),
                tf.TensorSpec([], f32, name="lr"), tf.TensorSpec([], f32, name="weight_decay"),
            ]
        )  # fmt: skip
        def train(x, labels, lr, weight_decay):
            new, loss = steps.train[scope](module.values(), x, labels, lr, weight_decay)
            for n, value in new.items():
                module.vars[tensor_name(n)].assign(value)
            return {"loss": loss}

        return train

    for scope in scopes:
        signatures["train" if scope == "head" else f"train_{scope}"] = make_train(scope)

    @tf.function(
        autograph=False, input_signature=[tf.TensorSpec([None, e], f32, name="embeddings")]
    )
    def infer(embeddings):
        return {"scores": steps.infer(module.values(), embeddings)}

    signatures["infer"] = infer
    if steps.refine is not None:
        refine = steps.refine

        @tf.function(
            autograph=False, input_signature=[tf.TensorSpec([None, *fshape], f32, name="features")]
        )
        def refine_sig(features):
            return {"embeddings": refine(module.values(), features)}

        signatures["refine"] = refine_sig

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.int32, name="unused")])
    def get_weights(unused):
        return {tensor_name(n): module.vars[tensor_name(n)].read_value() for n in names}

    signatures["get_weights"] = get_weights
    specs = [tf.TensorSpec(initial[n].shape, f32, name=tensor_name(n)) for n in names]

    @tf.function(autograph=False, input_signature=specs)
    def set_weights(*values):
        for n, value in zip(names, values, strict=True):
            module.vars[tensor_name(n)].assign(value)
        return {"count": tf.constant(len(names), tf.int32)}

    signatures["set_weights"] = set_weights

    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(signatures))
        converter.experimental_enable_resource_variables = True
        if int8:
            batches = [np.asarray(b, np.float32) for b in calibration]
            if not batches:
                raise ValueError("int8 export needs calibration images from the pretraining data.")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (("embed", {"images": b}) for b in batches)
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        else:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        blob = converter.convert()
    check_builtins(blob)
    blob = bytes(blob)
    if int8:
        blob, _ = compact_initial_values(blob)
    return strip_tensor_names(blob)


def _schema() -> Any:
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def _names(enum: Any) -> dict[int, str]:
    """A schema enum's value -> name."""
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


def op_names(blob: bytes) -> list[str]:
    """Sorted names of every operator code in a flatbuffer (custom ops by their custom code)."""
    schema, model = _schema(), load_model(blob)
    builtin = _names(schema.BuiltinOperator)
    names = set()
    for code in model.operatorCodes or []:
        op = max(code.builtinCode, code.deprecatedBuiltinCode)
        if op == schema.BuiltinOperator.CUSTOM:
            custom = (
                code.customCode.decode()
                if isinstance(code.customCode, bytes)
                else str(code.customCode)
            )
            names.add(f"CUSTOM:{custom}")
        else:
            names.add(builtin.get(op, f"UNKNOWN_{op}"))
    return sorted(names)


def subgraph_ops(blob: bytes, subgraph: str) -> list[tuple[str, str | None]]:
    """``(op name, fused activation or None)`` of every operator of the subgraph named
    ``subgraph`` (a signature's, e.g. ``"embed"``), in execution order.

    Raises:
      KeyError: no subgraph of that name.
    """
    schema, model = _schema(), load_model(blob)
    builtin, acts = _names(schema.BuiltinOperator), _names(schema.ActivationFunctionType)
    for graph in model.subgraphs or []:
        if (graph.name or b"").decode() != subgraph:
            continue
        out = []
        for op in graph.operators or []:
            code = model.operatorCodes[op.opcodeIndex]
            name = builtin.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")
            act = getattr(op.builtinOptions, "fusedActivationFunction", None)
            out.append((name, None if act is None else acts.get(act, str(act))))
        return out
    raise KeyError(f"no subgraph {subgraph!r} in the model.")


def check_builtins(blob: bytes) -> None:
    """Raises :class:`ConversionError` if any op is Flex (Select TF ops) or custom."""
    bad = [n for n in op_names(blob) if n.upper().startswith(FORBIDDEN_OP_PREFIXES)]
    if bad:
        raise ConversionError(f"the model needs ops a stock LiteRT runtime lacks: {bad}.")


def size_breakdown(blob: bytes) -> dict[str, Any]:
    """Where a flatbuffer's bytes go: constant buffers by dtype, quantization parameters
    (per-channel scales and int64 zero points), tensor names, and the rest (graph structure of
    every signature, signature tables, metadata)."""
    schema, model = _schema(), load_model(blob)
    dtypes = _names(schema.TensorType)
    buffers: dict[str, int] = {}
    seen: set[int] = set()
    quant = names = 0
    for graph in model.subgraphs or []:
        for t in graph.tensors or []:
            names += len(t.name or b"")
            if t.quantization is not None:
                for field, width in (("scale", 4), ("zeroPoint", 8), ("min", 4), ("max", 4)):
                    values = getattr(t.quantization, field)
                    quant += 0 if values is None else len(values) * width
            data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
            if data is not None and len(data) and t.buffer not in seen:
                seen.add(t.buffer)
                kind = dtypes.get(t.type, str(t.type)).lower()
                buffers[kind] = buffers.get(kind, 0) + len(data)
    total = len(blob)
    other = total - sum(buffers.values()) - quant - names
    return {"bytes": total, "constants": buffers, "quantization_params": quant,
            "tensor_names": names, "graph_and_metadata": other}  # fmt: skip
