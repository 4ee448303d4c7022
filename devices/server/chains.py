"""One-signature (``run``) models written straight as flatbuffers, for calibration.

``write_chain``: ``n`` chained nodes of one op (the per-node cost); ``write_fanout``: ``n``
independent nodes over run-time inputs (the per-element cost of ops that copy or broadcast, as a
polymorphic-batch export runs them). No converter is involved, so the graph is exactly the one
written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fbs

# Options each op's nodes carry (the others need none).
_OPTIONS = {
    "ADD": (fbs.BuiltinOptions.AddOptions, fbs.AddOptionsT),
    "STRIDED_SLICE": (fbs.BuiltinOptions.StridedSliceOptions, fbs.StridedSliceOptionsT),
}


class _Model:
    """A one-subgraph model of one op code, built tensor by tensor."""

    def __init__(self, op: str, version: int = 1) -> None:
        self.op = op
        self.model = fbs.ModelT()
        self.model.version = 3
        code = fbs.OperatorCodeT()
        code.builtinCode = getattr(fbs.BuiltinOperator, op)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        code.version = version
        self.model.operatorCodes = [code]
        self.model.buffers = [fbs.BufferT()]
        self.graph = fbs.SubGraphT()
        self.graph.tensors, self.graph.operators = [], []

    def tensor(self, name: str, dims: Sequence[int], kind: int = fbs.TensorType.FLOAT32) -> int:
        t = fbs.TensorT()
        t.shape, t.type, t.name = np.array(dims, np.int32), kind, name.encode()
        self.model.buffers.append(fbs.BufferT())
        t.buffer = len(self.model.buffers) - 1
        self.graph.tensors.append(t)
        return len(self.graph.tensors) - 1

    def node(self, inputs: Sequence[int], output: int) -> None:
        node = fbs.OperatorT()
        node.opcodeIndex = 0
        node.inputs, node.outputs = np.array(inputs, np.int32), np.array([output], np.int32)
        if self.op in _OPTIONS:
            kind, options = _OPTIONS[self.op]
            node.builtinOptionsType, node.builtinOptions = kind, options()
        self.graph.operators.append(node)

    def write(self, path: Path, inputs: Sequence[int], output: int) -> Path:
        """Writes the model with signature ``run`` (inputs by tensor name, output ``y``)."""
        self.graph.inputs = np.array(inputs, np.int32)
        self.graph.outputs = np.array([output], np.int32)
        self.model.subgraphs = [self.graph]
        sig = fbs.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = b"run", 0
        sig.inputs = [self._map(self.graph.tensors[i].name, i) for i in inputs]
        sig.outputs = [self._map(b"y", output)]
        self.model.signatureDefs = [sig]
        builder = flatbuffers.Builder(1024)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        path.write_bytes(builder.Output())
        return path

    @staticmethod
    def _map(name: bytes, index: int) -> fbs.TensorMapT:
        m = fbs.TensorMapT()
        m.name, m.tensorIndex = name, index
        return m


def write_chain(path: Path, n: int, op: str, width: int = 16) -> Path:
    """A one-signature (``run``) model of ``n`` chained ``op`` nodes on [1, width] float32,
    written straight as a flatbuffer (``ADD`` adds the input again; unary ops otherwise)."""
    model = _Model(op)
    x = cur = model.tensor("x", (1, width))
    for i in range(n):
        out = model.tensor(f"t{i}", (1, width))
        model.node([cur, x] if op == "ADD" else [cur], out)
        cur = out
    return model.write(path, [x], cur)


def _fanout_inputs(
    model: _Model, op: str, shape: tuple[int, ...], as_float: bool
) -> tuple[list[int], dict[str, np.ndarray], tuple[int, ...]]:
    """The run-time inputs of a fan-out model: tensor indices, their values, the output shape."""
    f32, i32 = fbs.TensorType.FLOAT32, fbs.TensorType.INT32
    rank = len(shape)
    if op == "BROADCAST_TO":
        small = (shape[0], *([1] * (rank - 2)), shape[-1])
        ins = [model.tensor("x", small), model.tensor("shape", (rank,), i32)]
        return ins, {"x": np.ones(small, np.float32), "shape": np.array(shape, np.int32)}, shape
    if op == "RESHAPE":
        ins = [model.tensor("x", shape), model.tensor("shape", (rank,), i32)]
        return ins, {"x": np.ones(shape, np.float32), "shape": np.array(shape, np.int32)}, shape
    if op == "STRIDED_SLICE":
        ins = [model.tensor("x", shape)]
        ins += [model.tensor(name, (rank,), i32) for name in ("begin", "end", "strides")]
        feed = {
            "x": np.ones(shape, np.float32),
            "begin": np.zeros(rank, np.int32),
            "end": np.array(shape, np.int32),
            "strides": np.array([1, 2, *([1] * (rank - 2))], np.int32),
        }
        return ins, feed, (shape[0], (shape[1] + 1) // 2, *shape[2:])
    kind, dtype = (f32, np.float32) if as_float else (i32, np.int32)
    ins = [model.tensor("x", shape, kind), model.tensor("y", shape, kind)]
    return ins, {"x": np.ones(shape, dtype), "y": np.ones(shape, dtype)}, shape


def write_fanout(
    path: Path, n: int, op: str, shape: tuple[int, ...]
) -> tuple[Path, dict[str, np.ndarray]]:
    """A ``run`` model of ``n`` independent builtin ``op`` nodes over run-time inputs, and its
    inputs: ``BROADCAST_TO`` [B,1,1,C] to a run-time shape ``shape``; ``STRIDED_SLICE`` of a
    ``shape`` tensor with run-time begin/end/strides (every other row); ``RESHAPE`` of a
    ``shape`` tensor to a run-time shape (the same: one memcpy); ``ADD`` of two int32
    ``shape`` tensors (a builtin kernel: XNNPACK takes no int32); ``FLOAT_ADD``: ``ADD`` of two
    float32 ones (XNNPACK takes it; each adds ``y`` to the one before, since XNNPACK drops
    nodes whose outputs nothing reads). Outputs are dynamic where their shape is run-time, as in a
    polymorphic-batch export."""
    as_float = op == "FLOAT_ADD"
    op = "ADD" if as_float else op
    model = _Model(op, version=3 if op == "BROADCAST_TO" else 1)
    ins, feed, out_shape = _fanout_inputs(model, op, shape, as_float)
    kind = fbs.TensorType.FLOAT32 if as_float or op != "ADD" else fbs.TensorType.INT32
    outs: list[int] = []
    for i in range(n):
        out = model.tensor(f"o{i}", out_shape, kind)
        # XNNPACK drops nodes whose outputs nothing reads: its ADDs form a chain
        model.node([outs[-1], ins[1]] if as_float and outs else ins, out)
        outs.append(out)
    return model.write(path, ins, outs[-1]), feed
