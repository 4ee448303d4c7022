"""Memory planner: the peak bytes a LiteRT signature needs, from the layer graph.

The plan splits memory into what stays resident once the artifact is loaded and what one call of
the signature adds at its peak. Resident: the model file (memory-mapped and read whole when it is
loaded: frozen weights at their stored precision, the variables' initial values, the flatbuffer
itself), the variables (every trainable weight of every scope the artifact holds: its
initialisation subgraph allocates them all), the optimizer's slots, the runtime's own copies of
constant weights (XNNPACK packs the weights of every subgraph when the interpreter is first
allocated) and its bookkeeping: per operator node of every subgraph in the file, and per node
the default delegate takes over (read from the file by :mod:`devices.tflite_file`; without the
file, proxies from the layer graph). Per call,
at the peak of the schedule: the activations live at once (inference: a layer's input and
output; training: the inputs every trained layer keeps for the backward pass plus the gradient
pair in flight), the gradients of the scope's weights and the step's workspace (the copies
``READ_VARIABLE`` makes, the updated values before ``ASSIGN_VARIABLE``, and the packed copies a
weight-packing runtime makes of the trained kernels), and, read from the model file, the copies
of variables a call runs but does not train (an exported ``refine`` and a bias-only step read
the last block's kernels from the variables). Sums where the tensors coexist, maxima
where the arena reuses memory; the runtime's arena holds the activations with a measured factor
(``Runtime.arena_factor``) over their ideal liveness bound.

The same model predicts what :func:`devices.measure_signature` measures: the rise of the
process's peak resident memory over a baseline taken after imports, inputs, the runtime's code
pages and a heap trim.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from devices.graph import Graph, GraphError, LayerSpec, SignatureSpec
from devices.profiles import Profile, Runtime
from devices.tflite_file import ModelStats

F32 = 4


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Bytes by cause for one signature; ``peak_bytes`` is what the device must have free.

    ``activations``, ``gradients`` and ``workspace`` are each the most that is live at once
    (ideal liveness); ``step_bytes`` is the peak of the call, which is not their sum:
    activations peak at the forward/backward turn, gradients and update temporaries at the
    update, and the runtime holds the activations with its ``arena_factor``.
    """

    signature: str
    kind: str
    scope: str | None
    batch: int
    frozen_weights: int
    initial_values: int
    file_other: int
    trainable_weights: int
    optimizer_state: int
    weight_copies: int
    runtime_fixed: int
    activations: int
    gradients: int
    workspace: int
    step_bytes: int
    dynamic_tensors: int = 0  # heap-allocated dynamic outputs of this call (in step_bytes)
    scratch: int = 0  # the builtin convs' im2col buffer (in step_bytes)
    variable_reads: int = 0  # READ_VARIABLE copies the layer graph does not see (in step_bytes)

    @property
    def resident_bytes(self) -> int:
        """Held from load to unload, whichever signature runs."""
        return (
            self.frozen_weights
            + self.initial_values
            + self.file_other
            + self.trainable_weights
            + self.optimizer_state
            + self.weight_copies
            + self.runtime_fixed
        )

    @property
    def peak_bytes(self) -> int:
        return self.resident_bytes + self.step_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "resident_bytes": self.resident_bytes,
            "peak_bytes": self.peak_bytes,
        }


def _act(layer: LayerSpec, batch: int, bits: int = 32) -> tuple[int, int]:
    """Bytes of a layer's input and output for ``batch`` examples."""
    b = bits / 8
    return math.ceil(batch * layer.input_size * b), math.ceil(batch * layer.output_size * b)


def inference_peak(layers: Sequence[LayerSpec], batch: int, *, float_acts: bool = False) -> int:
    """Peak activation bytes of a forward pass: the arena reuses memory, so one layer's in + out."""
    peak = 0
    for layer in layers:
        i, o = _act(layer, batch, 32 if float_acts else layer.act_bits)
        peak = max(peak, i + o)
    return peak


def training_peak(graph: Graph, scope: str, batch: int, *, source: str) -> dict[str, int]:
    """The live bytes of one SGD step on ``scope``, by cause, and their peak (``"step"``).

    Frozen layers in front of the first trained one run forward only (peak: one layer's in +
    out). From the first trained layer on, every layer's input is kept for the backward pass;
    activations peak at the turn, with the widest gradient pair (d input, d output) in flight.
    The trained weights (and momentum, if any) are read into the arena at the start
    (``READ_VARIABLE`` copies, live to the update); the update works one tensor at a time: its
    gradient, the decayed gradient and the new value (``ASSIGN_VARIABLE`` copies it into the
    variable).
    """
    first = graph.first_trained(scope)
    front = graph.layers[graph.input_start(source) : first]
    rest = graph.layers[first:]
    front_peak = inference_peak(front, batch, float_acts=True)
    kept = sum(_act(layer, batch)[0] for layer in rest) + _act(rest[-1], batch)[1]
    in_flight = max(sum(_act(layer, batch)) for layer in rest)
    activations = max(front_peak, kept + in_flight)
    largest = 0  # the biggest tensor the scope trains: a kernel, or a bias vector
    for layer in graph.layers:
        mode = layer.train.get(scope)
        if mode == "all":
            largest = max(largest, layer.kernel_params, layer.bias_params)
        elif mode == "bias":
            largest = max(largest, layer.bias_params)
    gradients = F32 * largest
    # the weights and each optimizer slot (momentum) are read into the arena for the step
    reads = F32 * graph.trainable_params(scope) * (1 + graph.optimizer_slots)
    return {
        "activations": activations,
        "gradients": gradients,
        "reads": reads,
        "workspace": reads + 2 * gradients,
        "step": reads + max(activations, 3 * gradients),
    }


def _pieces(graph: Graph, sig: SignatureSpec) -> list[tuple[str, str, int]]:
    """(layer, "kernel" | "bias", bits) of the constant weights inside ``sig``'s subgraph."""
    if sig.kind == "embed":
        layers: Sequence[LayerSpec] = graph.backbone
        frozen = {layer.name: "none" for layer in layers}
    elif sig.kind == "train" and sig.scope is not None:
        layers = graph.layers[graph.input_start(sig.input) :]
        frozen = {layer.name: layer.train.get(sig.scope, "none") for layer in layers}
    else:
        return []
    out = []
    for layer in layers:
        mode = frozen[layer.name]
        if layer.kernel_params and mode in ("none", "bias"):
            out.append((layer.name, "kernel", sig.frozen_bits))
        if layer.bias_params and mode == "none":  # 32-bit either way; int32 when quantized
            out.append((layer.name, "bias", sig.frozen_bits))
    return out


def _variable_pieces(graph: Graph) -> list[tuple[str, str, int]]:
    out = []
    for layer in graph.layers:
        modes = set(layer.train.values())
        if "all" in modes and layer.kernel_params:
            out.append((layer.name, "kernel", 32))
        if modes and layer.bias_params:
            out.append((layer.name, "bias", 32))
    return out


def _piece_bytes(graph: Graph, piece: tuple[str, str, int]) -> int:
    name, part, bits = piece
    layer = graph.layers[graph.index(name)]
    if part == "bias":
        return 4 * layer.bias_params
    return math.ceil(layer.kernel_params * bits / 8)


def weight_bytes(graph: Graph) -> tuple[int, int, dict[str, int]]:
    """(frozen constants, variables' initial values, constants summed over subgraphs by kind).

    The converter stores identical constant buffers once, so the file holds each frozen (layer,
    part, precision) once, and the variables' initial values beside them (the initialisation
    subgraph's own buffers). The runtime's per-subgraph copies count every subgraph.
    """
    init = set(_variable_pieces(graph))
    frozen: set[tuple[str, str, int]] = set()
    per_subgraph = {"int8": 0, "float": 0}
    for sig in graph.signatures:
        pieces = _pieces(graph, sig)
        frozen.update(pieces)
        for p in pieces:
            per_subgraph["int8" if p[2] <= 8 else "float"] += _piece_bytes(graph, p)
    return (
        sum(_piece_bytes(graph, p) for p in frozen),
        sum(_piece_bytes(graph, p) for p in init),
        per_subgraph,
    )


def plan_signature(
    graph: Graph,
    signature: str | SignatureSpec,
    profile: Profile | None = None,
    *,
    model_bytes: int | None = None,
    runtime: Runtime | None = None,
    model_stats: ModelStats | None = None,
) -> MemoryPlan:
    """Peak memory of one call of ``signature`` right after the artifact is loaded.

    Args:
      graph: the layer graph, with its signatures (all of them: the resident part depends on
        every subgraph the artifact holds).
      signature: a name from ``graph.signatures`` or a spec.
      profile: supplies the runtime's behaviour (``profile.runtime``); or pass ``runtime``.
      model_bytes: the artifact's ``model.tflite`` size when known (the file parts then sum to
        it exactly); otherwise estimated from the graph (distinct constant weights + the
        variables' initial values at float32).
      model_stats: the file's node counts (:func:`devices.read_model_stats`); with them the
        runtime's bookkeeping is charged per node (see :func:`runtime_overhead`).

    Returns:
      A :class:`MemoryPlan`.
    """
    sig = graph.signature(signature) if isinstance(signature, str) else signature
    rt = runtime or (profile.runtime if profile is not None else None)
    if rt is None:
        raise ValueError("plan_signature needs a profile or a runtime.")
    frozen, initial, per_subgraph = weight_bytes(graph)
    variables = F32 * graph.variable_params()
    file_other = 0
    if model_bytes is not None:
        # The runtime holds the file as it is. Where the file stores less than the graph says
        # (the converter keeps the variables' initial values at int8 in the initialisation
        # subgraph, or shares buffers between subgraphs), its size caps the two estimates.
        frozen = min(frozen, model_bytes)
        initial = min(initial, model_bytes - frozen)
        file_other = model_bytes - frozen - initial
    if not rt.frozen_weights_in_ram:  # weights execute in place from flash
        frozen, initial, file_other = 0, 0, 0
    call = _call_bytes(graph, sig, rt)
    heap = _heap_bytes(sig, rt, model_stats)
    reads = unplanned_reads(graph, sig, model_stats)
    return MemoryPlan(
        signature=sig.name,
        kind=sig.kind,
        scope=sig.scope,
        batch=sig.batch,
        frozen_weights=frozen,
        initial_values=initial,
        file_other=file_other,
        trainable_weights=variables,
        optimizer_state=graph.optimizer_slots * variables,
        weight_copies=round(
            rt.copies(8) * per_subgraph["int8"] + rt.copies(32) * per_subgraph["float"]
        ),
        runtime_fixed=runtime_overhead(graph, rt, model_stats),
        activations=call.activations,
        gradients=call.gradients,
        workspace=call.workspace,
        step_bytes=call.step + reads + heap.dynamic + heap.prepared + heap.scratch,
        dynamic_tensors=heap.dynamic,
        scratch=heap.scratch,
        variable_reads=reads,
    )


class _Call(NamedTuple):
    """What one call of a signature holds in the arena (bytes)."""

    activations: int
    gradients: int
    workspace: int
    step: int  # the call's peak in the arena, with the runtime's factor


class _Heap(NamedTuple):
    """What one call holds beside the arena (bytes), from the model file's node counts."""

    dynamic: int
    prepared: int
    scratch: int


def _call_bytes(graph: Graph, sig: SignatureSpec, rt: Runtime) -> _Call:
    factor = rt.arena_factor
    if sig.kind == "embed":
        acts = inference_peak(graph.backbone, sig.batch)
        return _Call(acts, 0, 0, round(factor * acts))
    if sig.kind in ("infer", "refine"):
        layers = graph.head if sig.kind == "infer" else graph.last_block
        acts = inference_peak(layers, sig.batch, float_acts=True)
        return _Call(acts, 0, 0, round(factor * acts))
    if sig.kind in ("get_weights", "set_weights"):
        scope_bytes = F32 * _scope_variables(graph, sig.scope)
        # get: the arena's tensors and the copies handed back; set: the arena's input tensors.
        # Plain copies, not delegated: no arena factor.
        acts = (2 if sig.kind == "get_weights" else 1) * scope_bytes
        return _Call(acts, 0, 0, acts)
    if sig.kind == "train":
        assert sig.scope is not None
        parts = training_peak(graph, sig.scope, sig.batch, source=sig.input)
        acts, grads, reads = parts["activations"], parts["gradients"], parts["reads"]
        packed = packed_trained_bytes(graph, sig, rt)
        # The runtime's factor is on the activations (delegated layers); the variable reads and
        # the update temporaries are plain arena tensors.
        step = reads + max(round(factor * acts), 3 * grads) + packed
        return _Call(acts, grads, parts["workspace"] + packed, step)
    raise GraphError(f"unknown signature kind {sig.kind!r}")  # pragma: no cover - validated


def _heap_bytes(sig: SignatureSpec, rt: Runtime, model_stats: ModelStats | None) -> _Heap:
    if model_stats is None:
        return _Heap(0, 0, 0)
    # Outputs whose shape is computed at run time live on the heap beside the arena, all at
    # once, for the interpreter's life (devices.tflite_file).
    dynamic = model_stats.dynamic_bytes(sig.name, sig.batch)
    # the called subgraph's nodes are prepared (planned, kernel state) once it has run
    prepared = rt.prepared_node_bytes * model_stats.nodes_of(sig.name)
    # A conv whose filter is a variable (a trained kernel, and the kernel gradient, a conv
    # over the activations with the output gradient as filter) runs the builtin kernel,
    # whose im2col buffer is a temporary of the interpreter's own arena. That arena and the
    # delegate's workspace (where the frozen front's activations peak) are both held for
    # the whole call, so it adds to the peak rather than sharing it.
    scratch = model_stats.work_of(sig.name).im2col_bytes_at(sig.batch)
    return _Heap(dynamic, prepared, scratch)


def runtime_overhead(graph: Graph, runtime: Runtime, stats: ModelStats | None = None) -> int:
    """The runtime's own bytes for this artifact.

    With the model file's node counts (``stats``) and a runtime that knows its per-node costs:
    fixed bytes, plus ``node_bytes`` for every operator node of every subgraph (the interpreter
    builds them all at load: node, tensors, kernel op data) and ``delegated_node_bytes`` for
    every node the default delegate takes over (XNNPACK's operator and value records, made for
    all subgraphs at the first call), plus what each int8 layer keeps (quantization
    parameters). Without them, proxies from the layer graph: fixed bytes, a lump for an artifact
    with variables and one per image-input train subgraph (calibrated on a reference artifact's
    node counts, so they only hold for graphs shaped like it).
    """
    int8_layers = sum(len(_weighted(graph, s)) for s in graph.signatures if s.frozen_bits <= 8)
    if stats is not None and (runtime.node_bytes or runtime.delegated_node_bytes):
        return (
            runtime.fixed_bytes
            + runtime.node_bytes * stats.nodes
            + runtime.delegated_node_bytes * stats.delegable_nodes
            + runtime.int8_layer_bytes * int8_layers
        )
    image_trains = sum(1 for s in graph.signatures if s.kind == "train" and s.input == "images")
    has_variables = graph.variable_params() > 0 and any(s.kind == "train" for s in graph.signatures)
    return (
        runtime.fixed_bytes
        + (runtime.training_artifact_bytes if has_variables else 0)
        + runtime.train_subgraph_bytes * image_trains
        + runtime.int8_layer_bytes * int8_layers
    )


def _weighted(graph: Graph, sig: SignatureSpec) -> set[str]:
    return {name for name, part, _ in _pieces(graph, sig) if part == "kernel"}


def unplanned_reads(graph: Graph, sig: SignatureSpec, model_stats: ModelStats | None) -> int:
    """READ_VARIABLE copies beyond the ones the layer graph plans (read from the file).

    A call that runs layers held as variables for a wider scope copies them into its arena:
    an exported ``refine`` reads the last block's kernels, and a ``train_head_biases`` step
    reads them too though it trains only their biases (the face artifact: 2.6 MB the graph
    does not show). A train step's own weights and slots are planned already, and
    ``get_weights`` / ``set_weights`` are their variables' copies.
    """
    if model_stats is None or sig.kind in ("get_weights", "set_weights"):
        return 0
    planned = 0
    if sig.kind == "train" and sig.scope is not None:
        planned = F32 * graph.trainable_params(sig.scope) * (1 + graph.optimizer_slots)
    return max(0, model_stats.work_of(sig.name).variable_reads - planned)


def packed_trained_bytes(graph: Graph, sig: SignatureSpec, runtime: Runtime) -> int:
    """Bytes a weight-packing runtime adds during a train call for the trained kernels.

    XNNPACK packs variable (dynamic) weights at every call like it packs constants once:
    once for the forward use and once for the backward (input-gradient) use.
    """
    if sig.kind != "train" or sig.scope is None:
        return 0
    kernels = sum(
        layer.kernel_params for layer in graph.layers if layer.train.get(sig.scope) == "all"
    )
    return round(runtime.weight_copies * 2 * F32 * kernels)


def _scope_variables(graph: Graph, scope: str | None) -> int:
    if scope is None:
        return graph.variable_params()
    return graph.trainable_params(scope)


def plan_scopes(
    graph: Graph,
    profile: Profile,
    *,
    model_bytes: int | None = None,
    model_stats: ModelStats | None = None,
) -> dict[str, MemoryPlan]:
    """The plan of every train signature, keyed by scope (narrow to wide)."""
    plans = {}
    for sig in graph.signatures:
        if sig.kind == "train" and sig.scope is not None:
            plans[sig.scope] = plan_signature(
                graph, sig, profile, model_bytes=model_bytes, model_stats=model_stats
            )
    return {s: plans[s] for s in graph.scopes if s in plans}


def widest_fitting_scope(
    graph: Graph,
    profile: Profile,
    budget_bytes: int,
    *,
    model_bytes: int | None = None,
    model_stats: ModelStats | None = None,
) -> tuple[str | None, dict[str, MemoryPlan]]:
    """The widest scope whose training step fits ``budget_bytes``, and every scope's plan."""
    plans = plan_scopes(graph, profile, model_bytes=model_bytes, model_stats=model_stats)
    fitting = [s for s, p in plans.items() if p.peak_bytes <= budget_bytes]
    return (fitting[-1] if fitting else None), plans
