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

from devices.contract import (
    COUNT,
    EMBED,
    EMBEDDINGS,
    FEATURES,
    GET_WEIGHTS,
    IMAGES,
    INFER,
    LABELS,
    LOSS,
    LR,
    REFINE,
    SCORES,
    SET_WEIGHTS,
    UNUSED,
    WEIGHT_DECAY,
    tensor_name,
    train_input,
    train_signature,
)
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
    embeddings = {EMBEDDINGS: _spec([None, e], f32)}
    features = {FEATURES: _spec([None, *fshape], f32)}
    embed_out = {**embeddings, **features} if wide else embeddings
    images = {IMAGES: _spec([None, *backbone.input_shape], f32)}
    sigs = [Signature(EMBED, "embed", None, images, embed_out)]
    for scope in scopes:
        inputs = dict(embeddings if train_input(scope) == EMBEDDINGS else features)
        inputs.update(
            {LABELS: _spec([None], "int32"), LR: _spec([], f32), WEIGHT_DECAY: _spec([], f32)}
        )
        sigs.append(
            Signature(train_signature(scope), "train", scope, inputs, {LOSS: _spec([], f32)})
        )
    scores = {SCORES: _spec([None, head.classes], f32)}
    sigs.append(Signature(INFER, "infer", None, embeddings, scores))
    if wide:
        sigs.append(Signature(REFINE, "refine", None, features, embeddings))
    weights = {tensor_name(n): _spec(shape, f32) for n, shape in variables.items()}
    widest = scopes[-1]
    unused, count = {UNUSED: _spec([], "int32")}, {COUNT: _spec([], "int32")}
    sigs.append(Signature(GET_WEIGHTS, "get_weights", widest, unused, weights))
    sigs.append(Signature(SET_WEIGHTS, "set_weights", widest, weights, count))
    return sigs


def _jax2tf_embed(backbone: Backbone, wide: bool) -> Callable[[Any], dict[str, Any]]:
    """``embed`` through jax2tf under a symbolic batch (models without a TensorFlow builder)."""
    from jax.experimental import jax2tf

    front, embed_all = backbone.front(), backbone.embed()
    poly = "(b, " + ", ".join("_" for _ in backbone.input_shape) + ")"
    return jax2tf.convert(
        (lambda x: {EMBEDDINGS: embed_all(x), FEATURES: front(x)})
        if wide
        else (lambda x: {EMBEDDINGS: embed_all(x)}),
        with_gradient=False,
        polymorphic_shapes=[poly],
    )


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
                batch([e] if train_input(scope) == EMBEDDINGS else fshape),
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
    module = _VariableModule(tf, names, initial)
    steps = native_steps(backbone, head, scopes) or _jax2tf_steps(backbone, head, scopes)
    signatures = {
        EMBED: _embed_signature(tf, backbone, wide=len(scopes) > 1),
        **{
            train_signature(s): _train_signature(tf, backbone, head, module, steps, s)
            for s in scopes
        },
        **_head_signatures(tf, backbone, head, module, steps),
        **_weight_signatures(tf, module),
    }
    blob = _convert(tf, module, signatures, int8=int8, calibration=calibration)
    check_builtins(blob)
    if int8:
        blob, _ = compact_initial_values(blob)
    return strip_tensor_names(blob)


class _VariableModule:
    """A ``tf.Module`` holding one ``tf.Variable`` per artifact variable, by tensor name."""

    def __init__(self, tf: Any, names: Sequence[str], initial: Variables) -> None:
        self.names = list(names)
        self.module = tf.Module()
        self.module.vars = {
            tensor_name(n): tf.Variable(np.asarray(initial[n]), name=tensor_name(n)) for n in names
        }
        self.shapes = {n: tuple(np.shape(initial[n])) for n in names}

    def values(self) -> dict[str, Any]:
        """``{variable name: current value}``."""
        return {n: self.module.vars[tensor_name(n)].read_value() for n in self.names}

    def assign(self, new: Mapping[str, Any]) -> None:
        for n, value in new.items():
            self.module.vars[tensor_name(n)].assign(value)


def _embed_signature(tf: Any, backbone: Backbone, *, wide: bool) -> Callable[..., Any]:
    conv_embed = native_embed(backbone, with_features=wide) or _jax2tf_embed(backbone, wide)
    spec = tf.TensorSpec([None, *backbone.input_shape], tf.float32, name=IMAGES)

    @tf.function(autograph=False, input_signature=[spec])
    def embed(images):
        return conv_embed(images)

    return embed


def _train_signature(
    tf: Any, backbone: Backbone, head: HeadConfig, module: _VariableModule, steps: Steps, scope: str
) -> Callable[..., Any]:
    source = train_input(scope)
    shape = [None, head.embedding_dim] if source == EMBEDDINGS else [None, *backbone.features_shape]
    specs = [
        tf.TensorSpec(shape, tf.float32, name=source),
        tf.TensorSpec([None], tf.int32, name=LABELS),
        tf.TensorSpec([], tf.float32, name=LR),
        tf.TensorSpec([], tf.float32, name=WEIGHT_DECAY),
    ]

    @tf.function(autograph=False, input_signature=specs)
    def train(x, labels, lr, weight_decay):
        new, loss = steps.train[scope](module.values(), x, labels, lr, weight_decay)
        module.assign(new)
        return {LOSS: loss}

    return train


def _head_signatures(
    tf: Any, backbone: Backbone, head: HeadConfig, module: _VariableModule, steps: Steps
) -> dict[str, Callable[..., Any]]:
    """``infer``, and ``refine`` when a wider scope is exported."""
    spec = tf.TensorSpec([None, head.embedding_dim], tf.float32, name=EMBEDDINGS)

    @tf.function(autograph=False, input_signature=[spec])
    def infer(embeddings):
        return {SCORES: steps.infer(module.values(), embeddings)}

    out = {INFER: infer}
    refine = steps.refine
    if refine is not None:
        spec = tf.TensorSpec([None, *backbone.features_shape], tf.float32, name=FEATURES)

        @tf.function(autograph=False, input_signature=[spec])
        def refine_sig(features):
            return {EMBEDDINGS: refine(module.values(), features)}

        out[REFINE] = refine_sig
    return out


def _weight_signatures(tf: Any, module: _VariableModule) -> dict[str, Callable[..., Any]]:
    """``get_weights`` (a dummy scalar input: see the module docstring) and ``set_weights``."""
    names = module.names

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.int32, name=UNUSED)])
    def get_weights(unused):
        return {tensor_name(n): t for n, t in module.values().items()}

    specs = [tf.TensorSpec(module.shapes[n], tf.float32, name=tensor_name(n)) for n in names]

    @tf.function(autograph=False, input_signature=specs)
    def set_weights(*values):
        module.assign(dict(zip(names, values, strict=True)))
        return {COUNT: tf.constant(len(names), tf.int32)}

    return {GET_WEIGHTS: get_weights, SET_WEIGHTS: set_weights}


def _convert(
    tf: Any,
    module: _VariableModule,
    signatures: dict[str, Callable[..., Any]],
    *,
    int8: bool,
    calibration: Iterable[np.ndarray],
) -> bytes:
    """SavedModel -> TFLite with resource variables; int8 ``embed`` calibrated on the images."""
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module.module, tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(signatures))
        converter.experimental_enable_resource_variables = True
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if int8:
            batches = [np.asarray(b, np.float32) for b in calibration]
            if not batches:
                raise ValueError("int8 export needs calibration images from the pretraining data.")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ((EMBED, {IMAGES: b}) for b in batches)
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        return bytes(converter.convert())


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
    return {
        "bytes": total,
        "constants": buffers,
        "quantization_params": quant,
        "tensor_names": names,
        "graph_and_metadata": other,
    }
