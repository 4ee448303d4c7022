"""Rewrites of a converted LiteRT flatbuffer that drop bytes the runtime does not need.

* :func:`strip_tensor_names`: the runtime reaches a signature's inputs and outputs through the
  signature table (name -> tensor index), never through tensor names; the converter's fused-op
  names are ~5% of an int8 artifact.
* :func:`compact_initial_values`: the converter stores the starting values of the trainable
  variables (a wide scope's last block) as float32 constants in the session-initialiser subgraph
  that ``CALL_ONCE`` runs before the first signature. Each kernel among them becomes an int8
  constant with per-channel symmetric scales (the scheme the converter uses for the int8
  ``embed``'s weights: scale = max|w| / 127 per output channel, zero point 0) and a DEQUANTIZE
  feeding the same ASSIGN_VARIABLE. The wide scopes then start from the weights the int8
  ``embed`` computes with, at a quarter of the bytes. Biases stay float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Per-channel int8 input: the DEQUANTIZE version the runtime's op registry expects for it.
_DEQUANTIZE_PER_CHANNEL_VERSION = 5
_MIN_ELEMENTS = 256  # smaller kernels are not worth an extra op


def load_model(blob: bytes) -> Any:
    """The flatbuffer as the schema's object tree (``ModelT``)."""
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(blob, 0)


def _pack(model: Any, size_hint: int) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def strip_tensor_names(blob: bytes) -> bytes:
    """The flatbuffer without tensor names (signature tables keep their names)."""
    model = load_model(blob)
    for graph in model.subgraphs or []:
        for t in graph.tensors or []:
            t.name = None
    return _pack(model, len(blob))


def quantize_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 along the last axis: ``(q, scales)`` with ``w ~= q * scales``."""
    flat = np.asarray(w, np.float32).reshape(-1, w.shape[-1])
    scales = np.abs(flat).max(axis=0) / 127.0
    safe = np.where(scales > 0, scales, 1.0)
    q = np.clip(np.round(flat / safe), -127, 127).astype(np.int8).reshape(w.shape)
    return q, scales.astype(np.float32)


def _opcode(model: Any, code: int, version: int) -> int:
    from tensorflow.lite.python import schema_py_generated as schema

    for i, c in enumerate(model.operatorCodes):
        if max(c.builtinCode, c.deprecatedBuiltinCode) == code and c.version == version:
            return i
    new = schema.OperatorCodeT()
    new.builtinCode, new.deprecatedBuiltinCode, new.version = code, min(code, 127), version
    model.operatorCodes.append(new)
    return len(model.operatorCodes) - 1


def compact_initial_values(blob: bytes) -> tuple[bytes, int]:
    """Stores the float32 kernels that initialise variables as int8 + scales (see module doc).

    Returns:
      ``(flatbuffer, kernels compacted)``; the input unchanged when there is none.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = load_model(blob)
    ops = schema.BuiltinOperator
    done = 0
    before = {t.buffer for g in model.subgraphs or [] for t in g.tensors or []}
    for graph in model.subgraphs or []:
        rewritten = []
        for op in graph.operators or []:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) == ops.ASSIGN_VARIABLE:
                dequantize = _compact(model, graph, op)
                if dequantize is not None:
                    rewritten.append(dequantize)
                    done += 1
            rewritten.append(op)
        graph.operators = rewritten
    if not done:
        return blob, 0
    # The float values' buffers are now unreferenced: empty them (indices stay valid).
    after = {t.buffer for g in model.subgraphs or [] for t in g.tensors or []}
    for orphan in before - after:
        model.buffers[orphan].data = None
    return _pack(model, len(blob)), done


def _compact(model: Any, graph: Any, assign: Any) -> Any:
    """A DEQUANTIZE op producing ``assign``'s constant float value from a new int8 tensor, or
    None when that value is not a constant float32 kernel worth compacting."""
    from tensorflow.lite.python import schema_py_generated as schema

    index = int(assign.inputs[1])
    tensor = graph.tensors[index]
    data = model.buffers[tensor.buffer].data if tensor.buffer else None
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
    if tensor.type != schema.TensorType.FLOAT32 or data is None or len(shape) < 2:
        return None
    values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32).reshape(shape)
    if values.size < _MIN_ELEMENTS or not np.any(values):
        return None
    q, scales = quantize_per_channel(values)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(q.tobytes(), np.uint8)
    model.buffers.append(buffer)
    quant = schema.QuantizationParametersT()
    quant.scale = [float(s) for s in scales]
    quant.zeroPoint = [0] * len(scales)
    quant.quantizedDimension = len(shape) - 1
    packed = schema.TensorT()
    packed.shape, packed.type, packed.buffer = (
        list(shape),
        schema.TensorType.INT8,
        len(model.buffers) - 1,
    )
    packed.quantization = quant
    graph.tensors.append(packed)
    tensor.buffer = 0  # the float value is now computed; buffer 0 is the empty sentinel
    dequantize = schema.OperatorT()
    dequantize.opcodeIndex = _opcode(
        model, schema.BuiltinOperator.DEQUANTIZE, _DEQUANTIZE_PER_CHANNEL_VERSION
    )
    dequantize.inputs, dequantize.outputs = [len(graph.tensors) - 1], [index]
    return dequantize


def int8_constants(blob: bytes) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Every int8 constant tensor with per-channel scales: ``(q, scales, quantized axis)``, in
    buffer order (each buffer once)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model, seen, out = load_model(blob), set(), []
    for graph in model.subgraphs or []:
        for t in graph.tensors or []:
            data = model.buffers[t.buffer].data if t.buffer else None
            if t.type != schema.TensorType.INT8 or data is None or t.buffer in seen:
                continue
            if t.quantization is None or t.quantization.scale is None:
                continue
            seen.add(t.buffer)
            shape = tuple(int(d) for d in t.shape)
            q = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.int8).reshape(shape)
            scales = np.asarray(t.quantization.scale, np.float32)
            out.append((q, scales, int(t.quantization.quantizedDimension)))
    return out
