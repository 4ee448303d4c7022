"""Latency and energy by roofline: each layer takes the longer of its compute and its traffic.

Compute is two ops per multiply-accumulate (one per element for layers without weights) at the
device's peak for the precision the layer runs in. Traffic is the layer's weights and its input
and output activations; weights come from SRAM when all the weights the call touches fit in the
device's SRAM, else from DRAM, and the same for a layer's activations (the argument of Deep
Compression: a model that fits on chip does not pay 640 pJ per 32-bit DRAM access). Each layer
pass also pays a fixed dispatch time (:func:`dispatch_s`: XNNPACK's per-node cost for the layers of
a frozen backbone, whose constant weights the delegate takes; the fitted ``op_overhead_s`` for the
builtin kernels over variable weights; the copies of variables pay none: they are no
layer), each call its fixed overhead, and compute runs at the
measured share of the peak that forward and backward layers reach; a forward convolution at the
share its kernel class reaches (:mod:`devices.kernels`: thin-input stems, depthwise, pointwise,
other convs, per precision), measured on single-layer models. A training step runs the frozen front forward, the
trained part forward and backward (input gradients where an earlier layer trains, weight
gradients where the layer trains its kernel) and the update (read weight and gradient, write the
weight: 12 bytes and 4 ops per trained scalar). A step whose file shows the matrix-product form
(``SubgraphWork.matmul_form``: 1x1 convs and dense layers as products over their variables) runs
their forward at ``forward_matmul_variable``, input gradients at ``backward_matmul`` (the builtin
fully connected kernel over a variable) and kernel gradients at ``weight_gradient_matmul``, each
measured on probes (:data:`devices.server.probes.TRAIN_PROBES`); a depthwise kernel's gradient there is
nine shifted products summed, elementwise nodes the file's counts charge (``delegated``). The
variables a call copies but does not train (an exported ``refine``'s last block; the file's
``READ_VARIABLE`` outputs, the planner's ``unplanned_reads``) pay the copy's traffic.

References:
  S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model for
  multicore architectures", CACM 2009.
  S. Han, H. Mao, W. Dally, "Deep Compression", ICLR 2016 (energy: SRAM vs DRAM, Table 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from devices.graph import Graph, LayerSpec, SignatureSpec
from devices.kernels import efficiency_key, kernel_class
from devices.planner import unplanned_reads
from devices.profiles import Profile
from devices.tflite_file import ModelStats


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Roofline estimate of one call of a signature on one profile."""

    signature: str
    profile: str
    latency_s: float
    energy_j: float
    ops: float
    sram_bytes: float
    dram_bytes: float
    weight_bytes: int
    weights_in_sram: bool
    compute_bound_layers: int
    memory_bound_layers: int
    dispatches: int = 0  # layer passes charged the profile's op_overhead_s (not the delegated)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Pass:
    """One layer pass: ops, weight bytes and activation bytes moved, at one precision."""

    ops: float
    weight_bytes: float
    act_bytes: float
    precision: str
    kind: str = "forward"  # forward, backward, weight_gradient, or copy (update, weights)
    cls: str | None = None  # kernel class of a forward pass (devices.kernels)
    delegated: bool = False  # a layer of constant weights XNNPACK runs inside its own graph


def _weight_bytes(layer: LayerSpec, bits: int) -> int:
    return math.ceil(layer.kernel_params * bits / 8) + 4 * layer.bias_params


def _ops(layer: LayerSpec, batch: int) -> float:
    return 2.0 * layer.macs * batch if layer.macs else float(layer.output_size * batch)


def _forward(
    layers: Sequence[LayerSpec],
    batch: int,
    bits: int,
    act_bits: int | None,
    profile: Profile,
    *,
    delegated: bool = False,
) -> list[_Pass]:
    out = []
    for layer in layers:
        a = layer.act_bits if act_bits is None else act_bits
        out.append(
            _Pass(
                _ops(layer, batch),
                _weight_bytes(layer, bits),
                batch * (layer.input_size + layer.output_size) * a / 8,
                profile.compute_precision(bits),
                cls=kernel_class(layer),
                delegated=delegated,
            )
        )
    return out


def _passes(
    graph: Graph, sig: SignatureSpec, profile: Profile, matmul_form: bool = False
) -> list[_Pass]:
    n = sig.batch
    if sig.kind == "embed":
        # the frozen backbone's weights are constants: XNNPACK takes its layers
        return _forward(graph.backbone, n, sig.frozen_bits, None, profile, delegated=True)
    if sig.kind in ("infer", "refine"):
        layers = graph.head if sig.kind == "infer" else graph.last_block
        return _forward(layers, n, 32, 32, profile)
    if sig.kind in ("get_weights", "set_weights"):
        size = 4 * (graph.trainable_params(sig.scope) if sig.scope else graph.variable_params())
        return [_Pass(0.0, 0.0, 2.0 * size, profile.compute_precision(32), "copy")]
    assert sig.scope is not None
    scope = sig.scope
    first = graph.first_trained(scope)
    start = graph.input_start(sig.input)
    passes = _forward(graph.layers[start:first], n, sig.frozen_bits, 32, profile)
    fp32 = profile.compute_precision(32)
    for i, layer in enumerate(graph.layers[first:], start=first):
        mode = layer.train.get(scope)
        acts = n * (layer.input_size + layer.output_size) * 4.0
        wbytes = 4.0 * layer.params
        cls = kernel_class(layer)
        # matrix-product form: 1x1 convs and dense layers are products over their variables
        product = matmul_form and (cls == "pointwise" or (layer.op == "dense" and layer.macs > 0))
        grad_cls = "matmul" if product else None
        if product and mode == "all":
            cls = "matmul_variable"
        elif mode == "all" and layer.op == "conv":  # a variable filter: the builtin kernel
            cls = "conv_variable"
        passes.append(_Pass(_ops(layer, n), wbytes, acts, fp32, cls=cls))
        grad_in = i > first
        if grad_in or not layer.macs:  # input gradient (or an elementwise layer's gradient)
            passes.append(
                _Pass(_ops(layer, n), wbytes if grad_in else 0.0, acts, fp32, "backward", grad_cls)
            )
        # kernel gradient; in matrix-product form a depthwise kernel's is nine shifted
        # products summed: elementwise nodes, charged from the model file
        shifted = matmul_form and cls == "depthwise"
        if mode == "all" and layer.kernel_params and layer.macs and not shifted:
            passes.append(_Pass(_ops(layer, n), wbytes, acts, fp32, "weight_gradient", grad_cls))
        trained = layer.trainable_params(scope)
        if trained:
            passes.append(_Pass(4.0 * trained, 12.0 * trained, 0.0, fp32, "copy"))  # update
    return passes


def _copies(
    graph: Graph, sig: SignatureSpec, profile: Profile, model_stats: ModelStats | None
) -> list[_Pass]:
    """The copy of the variables a call reads but does not train (the planner's same bytes,
    :func:`devices.planner.unplanned_reads`): read once, written once."""
    reads = unplanned_reads(graph, sig, model_stats)
    return [_Pass(0.0, 0.0, 2.0 * reads, profile.compute_precision(32), "copy")] if reads else []


def dispatch_s(kind: str, delegated: bool, profile: Profile) -> float:
    """Fixed time of one layer pass: none for a variable copy (no layer); XNNPACK's per-node
    cost (``kernel_costs.delegated_node_s``, ~20 ns on the host) for a layer the delegate runs
    inside its own graph (constant weights: a frozen backbone); else the profile's
    ``op_overhead_s`` (a builtin kernel over variable weights, fitted on the calls without
    real compute). A profile without ``delegated_node_s`` charges ``op_overhead_s`` to all."""
    if kind == "copy":
        return 0.0
    if delegated:
        return profile.kernel_costs.get("delegated_node_s", profile.op_overhead_s)
    return profile.op_overhead_s


def builtin_kernel_s(stats: ModelStats, sig: SignatureSpec, profile: Profile) -> float:
    """Time of the builtin (not delegated) kernels a call runs beside the layers: dispatch per
    node, and per output element by kernel class (a polymorphic-batch export materialises
    broadcasts and slices the layer graph does not see); and the copies of the call's inputs
    and outputs across the API (into the input tensors, out to fresh host arrays), per byte
    and per input and output tensor (the signature runner's work for each name it maps). 0 without the
    profile's costs."""
    costs = profile.kernel_costs
    if not costs:
        return 0.0
    work = stats.work_of(sig.name)
    t = (work.nodes - work.delegated) * costs.get("node_s", 0.0)
    t += work.io_tensors[0] * costs.get("io_input_s", 0.0)
    t += work.io_tensors[1] * costs.get("io_output_s", 0.0)
    t += work.io_bytes_at(sig.batch) * costs.get("io_byte_s", 0.0)
    for kind, count in work.elements_at(sig.batch).items():
        # a profile measured before memcpy was its own class charges it as a copy
        fallback = costs.get("copy_element_s", 0.0) if kind == "memcpy" else 0.0
        t += count * costs.get(f"{kind}_element_s", fallback)
    return t


def estimate(
    graph: Graph,
    signature: str | SignatureSpec,
    profile: Profile,
    *,
    model_stats: ModelStats | None = None,
) -> Estimate:
    """Roofline latency and energy of one call of ``signature`` on ``profile``.

    Args:
      graph: the layer graph (e.g. from an artifact's manifest, or :func:`graph_from_flax`).
      signature: a signature name in ``graph`` or a spec (e.g. a hypothetical batch size).
      profile: the device.
      model_stats: the model file's counts (:func:`devices.read_model_stats`): adds the builtin
        kernels the file runs beside the layers (:func:`builtin_kernel_s`).

    Returns:
      An :class:`Estimate`: latency in seconds, energy in joules (at the profile's scale).
    """
    sig = graph.signature(signature) if isinstance(signature, str) else signature
    form = model_stats is not None and model_stats.work_of(sig.name).matmul_form
    passes = _passes(graph, sig, profile, form) + _copies(graph, sig, profile, model_stats)
    weights = sum(int(p.weight_bytes) for p in passes if p.ops and p.weight_bytes)
    # Weights that execute in place from flash (microcontrollers) are read from there.
    in_sram = 0 < weights <= profile.sram_bytes and profile.runtime.frozen_weights_in_ram
    latency = profile.call_overhead_s
    energy_pj = ops = sram = dram = 0.0
    compute_bound = memory_bound = dispatches = 0
    for p in passes:
        w_sram = p.weight_bytes if in_sram else 0.0
        w_dram = 0.0 if in_sram else p.weight_bytes
        a_sram = p.act_bytes if p.act_bytes <= profile.sram_bytes else 0.0
        a_dram = p.act_bytes - a_sram
        key = f"{p.kind}_int8" if p.precision == "int8" else p.kind
        fallback = "backward" if p.kind == "weight_gradient" else p.kind
        eff = profile.compute_efficiency.get(
            key,
            profile.compute_efficiency.get(p.kind, profile.compute_efficiency.get(fallback, 1.0)),
        )
        if p.kind == "forward" and p.cls is not None:  # the kernel class's measured share
            eff = profile.compute_efficiency.get(efficiency_key(p.cls, p.precision), eff)
        elif p.cls is not None:  # a gradient in a measured form (backward_matmul, ...)
            eff = profile.compute_efficiency.get(f"{p.kind}_{p.cls}", eff)
        t_compute = p.ops / (profile.peak_ops_per_s[p.precision] * eff)
        t_memory = (w_sram + a_sram) / profile.sram_bandwidth_bytes_per_s + (
            w_dram + a_dram
        ) / profile.dram_bandwidth_bytes_per_s
        if t_compute >= t_memory:
            compute_bound += 1
        else:
            memory_bound += 1
        # dispatch per layer pass; the variable copies (update, get/set weights) are no layer
        latency += max(t_compute, t_memory) + dispatch_s(p.kind, p.delegated, profile)
        dispatches += p.kind != "copy" and not (
            p.delegated and "delegated_node_s" in profile.kernel_costs
        )
        energy_pj += (
            p.ops * profile.pj_per_op[p.precision]
            + (w_sram + a_sram) * profile.sram_pj_per_byte
            + (w_dram + a_dram) * profile.dram_pj_per_byte
        )
        ops += p.ops
        sram += w_sram + a_sram
        dram += w_dram + a_dram
    if model_stats is not None:
        latency += builtin_kernel_s(model_stats, sig, profile)
    return Estimate(
        signature=sig.name,
        profile=profile.name,
        latency_s=latency,
        energy_j=energy_pj * 1e-12,
        ops=ops,
        sram_bytes=sram,
        dram_bytes=dram,
        weight_bytes=weights,
        weights_in_sram=in_sram,
        compute_bound_layers=compute_bound,
        memory_bound_layers=memory_bound,
        dispatches=dispatches,
    )


def inference_energy(
    weight_bytes: int, macs: int, profile: Profile, *, bits: int, activation_bytes: int = 0
) -> dict[str, Any]:
    """Energy and latency of one inference of a network known only by its totals.

    For the "which backbone fits in SRAM" table: ``weight_bytes`` as stored (dense fp32, int8 or
    Deep-Compression-sized), ``macs`` per example, computed at the precision ``bits`` maps to.

    Raises:
      ValueError: a negative size or count, or ``bits`` < 1.
    """
    counts = {"weight_bytes": weight_bytes, "macs": macs, "activation_bytes": activation_bytes}
    if min(counts.values()) < 0 or bits < 1:
        raise ValueError(f"need sizes and counts >= 0 and bits >= 1, got {counts}, bits {bits}.")
    precision = profile.compute_precision(bits)
    fits = weight_bytes <= profile.sram_bytes
    level_pj = profile.sram_pj_per_byte if fits else profile.dram_pj_per_byte
    level_bw = profile.sram_bandwidth_bytes_per_s if fits else profile.dram_bandwidth_bytes_per_s
    ops = 2.0 * macs
    act_sram = activation_bytes <= profile.sram_bytes
    act_pj = profile.sram_pj_per_byte if act_sram else profile.dram_pj_per_byte
    act_bw = profile.sram_bandwidth_bytes_per_s if act_sram else profile.dram_bandwidth_bytes_per_s
    energy = (
        ops * profile.pj_per_op[precision] + weight_bytes * level_pj + activation_bytes * act_pj
    ) * 1e-12
    latency = max(
        ops / profile.peak_ops_per_s[precision], weight_bytes / level_bw + activation_bytes / act_bw
    )
    return {
        # float weights need float arithmetic (fp16 counts: precision loss allowed, as on GPUs)
        "supported": bits <= 8 or any(p in ("fp32", "fp16") for p in profile.precisions),
        "fits_sram": fits,
        "precision": precision,
        "energy_j": energy,
        "latency_s": latency,
        "weight_energy_j": weight_bytes * level_pj * 1e-12,
    }
