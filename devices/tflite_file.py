"""What the interpreter builds from a ``.tflite`` file: its operator nodes, read without LiteRT.

The interpreter keeps bookkeeping for every node of every subgraph in the file (the node, its
tensors, its kernel's op data), whichever signature runs; the default XNNPACK delegate adds, at
the first call, its own per-node state (an XNNPACK operator and value records) for every node it
takes over, in every subgraph. :func:`read_model_stats` counts those nodes from the flatbuffer
with the standard library (the device side has no schema package), so the planner can charge
them (:func:`devices.planner.runtime_overhead`).

Which nodes XNNPACK takes: builtin operators it implements (``XNNPACK_BUILTINS``, from the
delegate's ``VisitNode``; ``EXPAND_DIMS`` is left out, this LiteRT build does not take it),
whose run-time tensors (not constants) are float32, int8 or uint8, whose filter is a constant
(convolutions: a trained conv's variable filter keeps it on the builtin kernel, which needs an
im2col scratch buffer: ``SubgraphWork.im2col_bytes_at``; fully connected layers too: one over a
variable [192, 128] weight runs as fast with the delegate as without it, three times slower than
a ``BATCH_MATMUL`` over the same variable, which XNNPACK does take) and whose shape-setting
inputs (``SHAPE_INPUTS``: a reshape's new shape, a slice's bounds, ...) are constants. Checked
against the delegate's partitions on an exported ``infer`` subgraph: 12 of 33 nodes, as
predicted. A symbolic batch (``-1`` in ``shape_signature``) does not stop the delegate.

Dynamic tensors: an operator whose output shape comes from a run-time tensor (``BROADCAST_TO``
or ``RESHAPE`` to a computed shape, ``SLICE`` with computed bounds, ...: ``SHAPE_INPUTS``)
cannot be planned into the arena; the interpreter marks its output dynamic and allocates it on
the heap, where it stays for the interpreter's life. A polymorphic-batch export (``jax2tf``
with a symbolic batch) is full of them. ``ModelStats.dynamic_bytes`` sums those outputs for a
signature at a batch size (dimensions that are ``-1`` in the signature scale with the batch).
"""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path
from typing import Any

# BuiltinOperator codes (tflite schema) the XNNPACK delegate implements.
XNNPACK_BUILTINS: dict[int, str] = {
    0: "ADD",
    1: "AVERAGE_POOL_2D",
    2: "CONCATENATION",
    3: "CONV_2D",
    4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE",
    6: "DEQUANTIZE",
    8: "FLOOR",
    9: "FULLY_CONNECTED",
    14: "LOGISTIC",
    17: "MAX_POOL_2D",
    18: "MUL",
    19: "RELU",
    20: "RELU_N1_TO_1",
    21: "RELU6",
    22: "RESHAPE",
    23: "RESIZE_BILINEAR",
    25: "SOFTMAX",
    26: "SPACE_TO_DEPTH",
    28: "TANH",
    34: "PAD",
    39: "TRANSPOSE",
    40: "MEAN",
    41: "SUB",
    42: "DIV",
    45: "STRIDED_SLICE",
    47: "EXP",
    49: "SPLIT",
    54: "PRELU",
    55: "MAXIMUM",
    57: "MINIMUM",
    59: "NEG",
    65: "SLICE",
    66: "SIN",
    67: "TRANSPOSE_CONV",
    73: "LOG",
    74: "SUM",
    75: "SQRT",
    76: "RSQRT",
    92: "SQUARE",
    98: "LEAKY_RELU",
    99: "SQUARED_DIFFERENCE",
    101: "ABS",
    104: "CEIL",
    108: "COS",
    111: "ELU",
    114: "QUANTIZE",
    116: "ROUND",
    117: "HARD_SWISH",
    126: "BATCH_MATMUL",
    150: "GELU",
}
_XNNPACK_TYPES = (0, 3, 9)  # TensorType FLOAT32, UINT8, INT8
# CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED: XNNPACK takes them only with a
# constant filter (input 1); a trained layer's filter is a variable, so its builtin kernel runs.
_STATIC_FILTER = frozenset({3, 4, 9, 67})
_CONVS = frozenset({3, 67})  # CONV_2D, TRANSPOSE_CONV
# BuiltinOperator code -> the inputs that set its output shape: run-time there, dynamic output.
SHAPE_INPUTS: dict[int, tuple[int, ...]] = {
    130: (1,),  # BROADCAST_TO: shape
    22: (1,),  # RESHAPE: new shape
    65: (1, 2),  # SLICE: begin, size
    45: (1, 2, 3),  # STRIDED_SLICE: begin, end, strides
    39: (1,),  # TRANSPOSE: perm
    34: (1,),  # PAD: paddings
    60: (1,),  # PADV2: paddings
    69: (1,),  # TILE: multiples
    94: (0,),  # FILL: dims
    70: (1,),  # EXPAND_DIMS: axis
    74: (1,),
    40: (1,),
    82: (1,),
    89: (1,),
    81: (1,),
    91: (1,),  # SUM, MEAN, REDUCE_*: axes
    153: (2,),
    154: (2,),
    155: (2,),
    157: (2,),  # UNSORTED_SEGMENT_*: num_segments
}
# Builtin (not delegated) kernels by how their time grows: per output element.
KERNEL_CLASS: dict[int, str] = {
    130: "broadcast",
    69: "broadcast",  # BROADCAST_TO, TILE: generic N-d index walk
    65: "copy",
    45: "copy",
    2: "copy",
    34: "copy",
    60: "copy",
    39: "copy",
    36: "copy",  # SLICE, STRIDED_SLICE, CONCATENATION, PAD, PADV2, TRANSPOSE, GATHER
    22: "memcpy",  # RESHAPE: one contiguous copy of its input, no index walk
}
# The layer kernels (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, BATCH_MATMUL):
# the estimator's layer passes charge their compute; XNNPACK's other nodes (elementwise,
# reductions, copies) are charged per output element (class ``delegated``).
_LAYER_KERNELS = frozenset({3, 4, 9, 67, 126})
# BuiltinOperator codes of the resource-variable and control nodes.
CALL_ONCE, VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE = 129, 142, 143, 144
# Their copies are the estimator's variable passes, not kernels (READ_VARIABLE copies a resource
# variable's value into a tensor).
_NOT_KERNELS = frozenset({CALL_ONCE, VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE})
# TensorType -> bytes per element (the types a dynamic output can have here).
_ITEM_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 12: 8, 15: 4, 16: 2}


class ModelFileError(ValueError):
    """Not a readable ``.tflite`` flatbuffer; the message says where it broke."""


@dataclasses.dataclass(frozen=True)
class SubgraphWork:
    """What one call of a signature runs outside the layer graph's view.

    ``nodes`` / ``delegated``: its subgraph's nodes and those XNNPACK takes; ``elements``:
    (kernel class, output elements, output elements per batch row) of the builtin kernels
    (classes: ``broadcast``, ``copy``, ``memcpy``, ``elementwise``; see ``KERNEL_CLASS``;
    ``delegated``: the nodes XNNPACK takes other than the layer kernels, ``_LAYER_KERNELS``;
    ``memcpy``: a ``RESHAPE``, or a ``BROADCAST_TO`` whose input has as many elements as its
    output, which TFLite copies in one ``memcpy``).
    """

    nodes: int = 0
    delegated: int = 0
    elements: tuple[tuple[str, int, int], ...] = ()
    io_bytes: tuple[int, int] = (0, 0)  # inputs + outputs: (bytes, bytes per batch row)
    io_tensors: tuple[int, int] = (0, 0)  # (inputs, outputs) of the subgraph
    # (elements, elements per batch row) of the im2col buffer of each builtin float CONV_2D
    im2col: tuple[tuple[int, int], ...] = ()
    # builtin layer nodes over a variable filter: FULLY_CONNECTED, and CONV_2D / TRANSPOSE_CONV
    variable_fc: int = 0
    variable_conv: int = 0
    # bytes the subgraph's READ_VARIABLE nodes copy out of the variables into its arena
    variable_reads: int = 0

    @property
    def matmul_form(self) -> bool:
        """A train step whose trained 1x1 convs and dense layers are matrix products over
        their variables (the native steps, :mod:`export.artifact.tftrain`): input gradients
        run the builtin ``FULLY_CONNECTED`` over a variable, and no conv has a variable filter
        (a ``jax2tf`` step trains convs as ``CONV_2D``)."""
        return self.variable_fc > 0 and self.variable_conv == 0

    def im2col_bytes_at(self, batch: int) -> int:
        """The largest im2col scratch buffer of the subgraph's builtin convs at ``batch`` rows:
        the builtin CONV_2D (one thread) unrolls every output position's receptive field,
        ``N x OH x OW x KH x KW x Cin`` floats, as an arena temporary unless the kernel is 1x1
        at stride 1. The arena reuses it from node to node: the largest counts."""
        return max((4 * (fixed + per_row * batch) for fixed, per_row in self.im2col), default=0)

    def io_bytes_at(self, batch: int) -> int:
        """Bytes of the subgraph's inputs and outputs at ``batch`` rows (copied across the API)."""
        return self.io_bytes[0] + self.io_bytes[1] * batch

    def elements_at(self, batch: int) -> dict[str, int]:
        """Output elements of the builtin kernels by class at ``batch`` rows."""
        out: dict[str, int] = {}
        for kind, fixed, per_row in self.elements:
            out[kind] = out.get(kind, 0) + fixed + per_row * batch
        return out


@dataclasses.dataclass(frozen=True)
class ModelStats:
    """Node and tensor counts of a ``.tflite`` file, over all its subgraphs.

    ``delegable_nodes`` are the nodes XNNPACK takes over (see the module docstring);
    ``dynamic_nodes`` those with a tensor of dynamic shape; ``dynamic`` has, per signature,
    (name, bytes, bytes per batch row) of the outputs the interpreter allocates on the heap;
    ``work`` (name, :class:`SubgraphWork` of its subgraph).
    """

    subgraphs: int
    nodes: int
    tensors: int
    delegable_nodes: int
    dynamic_nodes: int
    dynamic: tuple[tuple[str, int, int], ...] = ()
    work: tuple[tuple[str, SubgraphWork], ...] = ()

    def work_of(self, signature: str) -> SubgraphWork:
        """What ``signature``'s subgraph runs (empty if unknown)."""
        return dict(self.work).get(signature, SubgraphWork())

    def nodes_of(self, signature: str) -> int:
        """Nodes of ``signature``'s subgraph (0 if unknown)."""
        return self.work_of(signature).nodes

    def dynamic_bytes(self, signature: str, batch: int) -> int:
        """Heap bytes of ``signature``'s dynamic outputs at ``batch`` rows (0 if unknown)."""
        for name, fixed, per_row in self.dynamic:
            if name == signature:
                return fixed + per_row * batch
        return 0


def _im2col(x: tuple[Any, ...], w: tuple[Any, ...], y: tuple[Any, ...]) -> list[tuple[int, int]]:
    """[(elements, elements per batch row)] of a float CONV_2D's im2col buffer, from its input
    ``x`` [N, H, W, Cin], filter ``w`` [Cout, KH, KW, Cin] and output ``y`` [N, OH, OW, Cout]
    (tensor infos: const, type, dynamic, shape, shape_signature); [] when none is needed."""
    if x[1] != 0 or len(x[3]) != 4 or len(w[3]) != 4 or len(y[3]) != 4:
        return []
    (_, h, wd, _), (_, kh, kw, cin), (n, oh, ow, _) = x[3], w[3], y[3]
    if kh == kw == 1 and (h, wd) == (oh, ow):
        return []
    # a -1 in the signature of N (output) or Cin (filter: the kernel gradient's batch) scales
    dims = [(n, y[4][0] if len(y[4]) == 4 else n), (cin, w[4][3] if len(w[4]) == 4 else cin)]
    count = oh * ow * kh * kw
    scales = False
    for d, d_sig in dims:
        if d_sig < 0:
            scales = True
        else:
            count *= max(d, 1)
    return [(0, count) if scales else (count, 0)]


def _same_size(info: list[tuple[Any, ...]], a: int, b: int) -> bool:
    """Whether tensors ``a`` and ``b`` hold as many elements at every batch size."""
    if not (0 <= a < len(info) and 0 <= b < len(info)):
        return False
    return info[a][2] == info[b][2] and _elements(info[a][3], info[a][4]) == _elements(
        info[b][3], info[b][4]
    )


def _elements(shape: list[int], signature: list[int]) -> int:
    """Elements of a tensor per batch row when ``signature`` has a ``-1`` (those dimensions are
    the batch), else in all."""
    count = 1
    for d, d_sig in zip(shape, signature or shape, strict=False):
        count *= max(d, 1) if d_sig >= 0 else 1
    return count


class _Fb:
    """Just enough of the flatbuffer wire format: tables, scalars, vectors."""

    def __init__(self, buf: bytes) -> None:
        self.b = buf

    def u32(self, pos: int) -> int:
        return int(struct.unpack_from("<I", self.b, pos)[0])

    def field(self, table: int, index: int) -> int:
        """Absolute position of field ``index`` of ``table``, or 0 when absent."""
        vtable = table - int(struct.unpack_from("<i", self.b, table)[0])
        size = int(struct.unpack_from("<H", self.b, vtable)[0])
        slot = 4 + 2 * index
        if slot >= size:
            return 0
        off = int(struct.unpack_from("<H", self.b, vtable + slot)[0])
        return table + off if off else 0

    def scalar(self, table: int, index: int, fmt: str, default: int = 0) -> int:
        pos = self.field(table, index)
        return int(struct.unpack_from("<" + fmt, self.b, pos)[0]) if pos else default

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(start of the elements, length) of a vector field; (0, 0) when absent."""
        pos = self.field(table, index)
        if not pos:
            return 0, 0
        start = pos + self.u32(pos)
        return start + 4, self.u32(start)

    def tables(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        return [start + 4 * i + self.u32(start + 4 * i) for i in range(n)]

    def string(self, table: int, index: int) -> str:
        pos = self.field(table, index)
        if not pos:
            return ""
        start = pos + self.u32(pos)
        return self.b[start + 4 : start + 4 + self.u32(start)].decode("utf-8", "replace")

    def ints(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        return list(struct.unpack_from(f"<{n}i", self.b, start)) if n else []


# A tensor as the counters read it: (constant, TensorType, dynamic, shape, shape_signature).
_TensorInfo = tuple[bool, int, bool, list[int], list[int]]


@dataclasses.dataclass
class _Tally:
    """The counts of one subgraph, node by node."""

    info: list[_TensorInfo]
    nodes: int = 0
    dynamic: int = 0
    delegated: int = 0
    variable_fc: int = 0
    variable_conv: int = 0
    variable_reads: int = 0  # bytes of READ_VARIABLE outputs
    fixed: int = 0  # bytes of run-time-shaped outputs
    per_row: int = 0  # the same per batch row
    elements: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    im2col: list[tuple[int, int]] = dataclasses.field(default_factory=list)

    def _known(self, tensors: list[int]) -> list[int]:
        return [i for i in tensors if 0 <= i < len(self.info)]

    def add(self, code: int, ins: list[int], outs: list[int]) -> None:
        """One node of builtin ``code`` over tensors ``ins`` -> ``outs``."""
        info = self.info
        idx = self._known(ins + outs)
        self.nodes += 1
        self.dynamic += any(info[i][2] for i in idx)
        typed = all(info[i][1] in _XNNPACK_TYPES for i in idx if not info[i][0])
        shaping = [ins[k] for k in SHAPE_INPUTS.get(code, ()) if k < len(ins)]
        runtime_shape = any(not info[i][0] for i in self._known(shaping))
        static = code not in _STATIC_FILTER or (
            len(ins) > 1 and 0 <= ins[1] < len(info) and info[ins[1]][0]
        )
        takes = code in XNNPACK_BUILTINS and typed and not runtime_shape and static
        if code == 3 and not takes and len(ins) > 1 and outs:
            self.im2col.extend(_im2col(info[ins[0]], info[ins[1]], info[outs[0]]))
        if code == READ_VARIABLE:
            for o in self._known(outs):
                _, kind, _, shape, sig = info[o]
                self.variable_reads += _ITEM_BYTES.get(kind, 4) * _elements(shape, sig)
        if not static:
            self.variable_fc += code == 9
            self.variable_conv += code in _CONVS
        self.delegated += takes
        cls = None
        if takes and code not in _LAYER_KERNELS:  # XNNPACK's elementwise, reductions
            cls = "delegated"
        elif not takes and code not in _NOT_KERNELS:
            cls = KERNEL_CLASS.get(code, "elementwise")
            if code == 130 and ins and outs and _same_size(info, ins[0], outs[0]):
                cls = "memcpy"  # BROADCAST_TO that broadcasts nothing: one memcpy
        if cls is not None:
            acc = self.elements.setdefault(cls, [0, 0])
            for o in self._known(outs):
                acc[1 if info[o][2] else 0] += _elements(info[o][3], info[o][4])
        if runtime_shape:
            for o in self._known(outs):
                _, kind, dyn, shape, sig = info[o]
                size = _ITEM_BYTES.get(kind, 4) * _elements(shape, sig)
                if dyn:
                    self.per_row += size
                else:
                    self.fixed += size

    def work(self, ins: list[int], outs: list[int]) -> SubgraphWork:
        """The subgraph's :class:`SubgraphWork`, given its input and output tensors."""
        io = [0, 0]
        for t in self._known(ins + outs):
            _, kind, dyn, shape, sig = self.info[t]
            io[1 if dyn else 0] += _ITEM_BYTES.get(kind, 4) * _elements(shape, sig)
        return SubgraphWork(
            nodes=self.nodes,
            delegated=self.delegated,
            elements=tuple((k, v[0], v[1]) for k, v in sorted(self.elements.items())),
            io_bytes=(io[0], io[1]),
            io_tensors=(len(ins), len(outs)),
            im2col=tuple(self.im2col),
            variable_fc=self.variable_fc,
            variable_conv=self.variable_conv,
            variable_reads=self.variable_reads,
        )


def _model_bytes(model: bytes | str | os.PathLike[str]) -> tuple[bytes, str]:
    where = "model bytes" if isinstance(model, bytes | bytearray) else str(model)
    try:
        buf = bytes(model) if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
    except OSError as err:
        raise ModelFileError(f"{where}: cannot read: {err}") from err
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelFileError(f"{where}: not a TFLite flatbuffer (no TFL3 file identifier).")
    return buf, where


def _subgraph(fb: _Fb, sg: int, codes: list[int], const: list[bool]) -> _Tally:
    """Every node of subgraph table ``sg`` counted."""
    info: list[_TensorInfo] = []
    for t in fb.tables(sg, 0):
        buffer = fb.scalar(t, 2, "I")
        is_const = buffer < len(const) and const[buffer]
        shape, sig = fb.ints(t, 0), fb.ints(t, 7)  # shape, shape_signature
        info.append((is_const, fb.scalar(t, 1, "b"), any(d < 0 for d in sig), shape, sig))
    tally = _Tally(info)
    for op in fb.tables(sg, 3):
        tally.add(codes[fb.scalar(op, 0, "I")], fb.ints(op, 1), fb.ints(op, 2))
    return tally


def read_model_stats(model: bytes | str | os.PathLike[str]) -> ModelStats:
    """Counts the nodes and tensors of a ``.tflite`` model (its bytes or its path).

    Raises:
      ModelFileError: not a TFLite flatbuffer (no ``TFL3`` identifier, or truncated).
    """
    buf, where = _model_bytes(model)
    fb = _Fb(buf)
    try:
        root = fb.u32(0)
        codes = [  # operator_codes: max(deprecated_builtin_code, builtin_code)
            max(fb.scalar(code, 0, "b"), fb.scalar(code, 3, "i")) for code in fb.tables(root, 1)
        ]
        const = [fb.vector(b, 0)[1] > 0 or fb.scalar(b, 2, "Q") > 0 for b in fb.tables(root, 4)]
        subgraphs = fb.tables(root, 2)
        tallies = [_subgraph(fb, sg, codes, const) for sg in subgraphs]
        works = [
            t.work(fb.ints(sg, 1), fb.ints(sg, 2)) for t, sg in zip(tallies, subgraphs, strict=True)
        ]
        named, work = [], []
        for sd in fb.tables(root, 7):  # signature_defs: key (2), subgraph_index (4)
            index = fb.scalar(sd, 4, "I")
            if index < len(tallies):
                named.append((fb.string(sd, 2), tallies[index].fixed, tallies[index].per_row))
                work.append((fb.string(sd, 2), works[index]))
    except (struct.error, IndexError) as err:
        raise ModelFileError(f"{where}: truncated or corrupt flatbuffer ({err}).") from err
    return ModelStats(
        len(subgraphs),
        sum(t.nodes for t in tallies),
        sum(len(t.info) for t in tallies),
        sum(t.delegated for t in tallies),
        sum(t.dynamic for t in tallies),
        tuple(named),
        tuple(work),
    )
