"""Server side: measure this machine with LiteRT and write ``devices/profiles/host.json``.

``python -m devices calibrate`` (about four minutes on two cores; ``--speed``: only the call
costs, kernel classes and speed fit, about three). TensorFlow is imported inside
:func:`calibrate_host` to convert the probe models; every figure is then measured in a fresh
LiteRT process (:func:`devices.measure_signature`, default delegates, one thread):

- peak fp32 / int8 ops/s: a 64 x 1024 x 1024 fully connected layer (compute bound), float and
  full-integer;
- DRAM bandwidth: a 1 x 4096 x 4096 float layer (64 MiB of weights, far over the caches);
- SRAM (cache) bandwidth: a 1 x 256 x 256 float layer (256 KiB, inside L2);
- the signature runner's cost per call, per input and per output tensor: one-op models of 1
  and 8 inputs and outputs (:func:`measure_call_costs`);
- the share of the peak each kernel class reaches (:mod:`devices.server.probes`: thin-input stems,
  depthwise, pointwise and other convs, per precision; the builtin convs a train step runs on
  variable filters, forward and kernel gradient), on single-layer probe models;
- dispatch time per layer pass and the backward share: fitted on the calibration reference's
  light and kernel-free train signatures (:func:`fit_speed`);
- the runtime's fixed memory: a one-op model; its weight copies: the 4 MiB layer's peak over its
  file; the arena factor: a reference artifact (:mod:`devices.server.reference`) whose layer graph the
  planner reads, fitted by least squares over its embed and train signatures. The artifacts the
  benchmark validates against are other sizes, so the benchmark's comparison is out of sample.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from devices.artifact import load_graph, model_file
from devices.estimate import estimate
from devices.measure import Measurement, measure_signature
from devices.planner import plan_signature, weight_bytes
from devices.profiles import (
    PROFILE_DIR,
    PROFILE_FORMAT,
    Runtime,
    horowitz_pj_per_op,
    load_profile,
)
from devices.server.chains import write_chain, write_fanout
from devices.server.probes import class_efficiencies, convert_tf, measure_kernel_probes
from devices.server.reference import build_reference
from devices.tflite_file import read_model_stats

CALIBRATION_REFERENCE = {"widths": (16, 32, 64, 128), "input_hw": 64, "embed_dim": 64}

CALL_RUNS = 2000  # timed calls per process of the call-cost models (microseconds each)
PROBE_PROCESSES = 3  # fresh processes per peak and bandwidth probe; the fastest is kept
CALL_REPEATS = 3  # fresh processes per call-cost model; the fastest is kept


def build_probe_models(directory: Path) -> dict[str, Path]:
    """The calibration models (TensorFlow converter), keyed by purpose."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    rng = np.random.default_rng(0)

    def fc(n: int, k: int, m: int) -> tuple[Callable[..., Any], list[Any]]:
        w = tf.constant((rng.standard_normal((k, m)) / np.sqrt(k)).astype(np.float32))
        return (lambda x: {"y": tf.matmul(x, w)}), [tf.TensorSpec((n, k), tf.float32, name="x")]

    def chain(x: Any) -> dict[str, Any]:
        for i in range(64):
            x = x + float(i % 3 + 1)
        return {"y": x}

    directory.mkdir(parents=True, exist_ok=True)
    spec16 = [tf.TensorSpec((1, 16), tf.float32, name="x")]
    return {
        "trivial": convert_tf(lambda x: {"y": x + 1.0}, spec16, directory / "trivial.tflite"),
        "chain": convert_tf(chain, spec16, directory / "chain.tflite"),
        "fc_fp32": convert_tf(*fc(64, 1024, 1024), directory / "fc_fp32.tflite"),
        "fc_int8": convert_tf(*fc(64, 1024, 1024), directory / "fc_int8.tflite", int8=True),
        "fc_dram": convert_tf(*fc(1, 4096, 4096), directory / "fc_dram.tflite"),
        "fc_cache": convert_tf(*fc(1, 256, 256), directory / "fc_cache.tflite"),
    }


def measure_kernel_costs(directory: Path, runs: int = 30) -> dict[str, float]:
    """Seconds per node (builtin, and taken by XNNPACK), per output element of the builtin
    kernels a polymorphic-batch export runs (broadcast, copy, elementwise) and of XNNPACK's
    elementwise nodes (a float ``ADD``: ``delegated``), and per byte of a
    call's inputs and outputs copied across the API, default delegates.

    Per node: latency slope of chains of 100 vs 800 ``ZEROS_LIKE`` (builtin) and ``ADD``
    (delegated) nodes on [1, 16]. Per element: latency slope of 4 vs 16 independent nodes over
    [8, 8, 8, 128] tensors (:func:`write_fanout`), over their output elements.
    """
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, float] = {}
    for key, op in (("node_s", "ZEROS_LIKE"), ("delegated_node_s", "ADD")):
        t = [
            measure_signature(
                write_chain(directory / f"lat_{op}_{n}.tflite", n, op), "run", runs=runs
            ).latency_s
            for n in (100, 800)
        ]
        out[key] = max(0.0, (t[1] - t[0]) / 700)
    t = []
    for n in (16384, 262144):
        path = write_chain(directory / f"io_{n}.tflite", 1, "ZEROS_LIKE", width=n)
        t.append(measure_signature(path, "run", runs=runs).latency_s)
    out["io_byte_s"] = max(0.0, (t[1] - t[0]) / (2 * 4 * (262144 - 16384)))  # input + output
    shape = (8, 8, 8, 128)
    for key, op in ELEMENT_PROBES.items():
        out[key] = measure_element_cost(directory, op, shape, runs=runs)
    return out


ELEMENT_PROBES = {
    "broadcast_element_s": "BROADCAST_TO",
    "copy_element_s": "STRIDED_SLICE",
    "memcpy_element_s": "RESHAPE",
    "elementwise_element_s": "ADD",
    "delegated_element_s": "FLOAT_ADD",
}


def measure_element_cost(directory: Path, op: str, shape: tuple[int, ...], runs: int = 30) -> float:
    """Seconds per output element of the builtin ``op``: latency slope of 4 vs 16 independent
    nodes (:func:`write_fanout`) over ``shape`` tensors, per output element."""
    directory.mkdir(parents=True, exist_ok=True)
    t = []
    for n in (4, 16):
        path, feed = write_fanout(directory / f"fan_{op}_{n}.tflite", n, op, shape)
        t.append(measure_signature(path, "run", inputs=feed, runs=runs).latency_s)
    elements = int(np.prod(shape)) // (2 if op == "STRIDED_SLICE" else 1)
    return max(0.0, (t[1] - t[0]) / (12 * elements))


def measure_node_bytes(directory: Path, runs: int = 3) -> dict[str, float]:
    """Bytes per interpreter node: built at load, prepared once its subgraph runs, and extra per
    node XNNPACK takes over (default delegates).

    Least-squares slopes over chains of 100 to 1600 nodes (one node and one tensor each): of
    ``ZEROS_LIKE`` (no XNNPACK kernel) the resident rise after loading (node, tensor, op data:
    ``node``) and the peak's rise over it (arena plan and kernel state: ``prepared``); of ``ADD``
    (delegated) the peak's rise over the ``ZEROS_LIKE`` one (XNNPACK's operator and values).
    """
    directory.mkdir(parents=True, exist_ok=True)
    sizes = (100, 400, 800, 1200, 1600)
    peak, loaded = {}, {}
    for op in ("ZEROS_LIKE", "ADD"):
        m = [
            measure_signature(
                write_chain(directory / f"chain_{op}_{n}.tflite", n, op), "run", runs=runs
            )
            for n in sizes
        ]
        # least-squares slopes: the allocators grow in steps, one pair of sizes is noisy
        peak[op] = float(np.polyfit(sizes, [x.peak_bytes for x in m], 1)[0])
        loaded[op] = float(np.polyfit(sizes, [x.loaded_bytes for x in m], 1)[0])
    return {
        "node": loaded["ZEROS_LIKE"],
        "prepared": max(0.0, peak["ZEROS_LIKE"] - loaded["ZEROS_LIKE"]),
        "delegated": max(0.0, peak["ADD"] - peak["ZEROS_LIKE"]),
    }


def update_file_costs(target: Path | None = None, *, workdir: Path | None = None) -> dict[str, Any]:
    """Measures :func:`measure_node_bytes` and :func:`measure_kernel_costs` and writes them into
    the ``host`` profile (the rest of it unchanged): about 30 s."""
    target = target or PROFILE_DIR / "host.json"
    day = datetime.date.today().isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(workdir) if workdir else Path(tmp)
        nodes = measure_node_bytes(base / "chains")
        kernels = measure_kernel_costs(base / "kernels")
    doc = json.loads(target.read_text())
    doc["runtime"].update(_node_figures(nodes, day))
    doc["kernel_costs"].update(_kernel_figures(kernels, day))
    target.write_text(json.dumps(doc, indent=2) + "\n")
    load_profile(target)
    return {**nodes, **kernels}


def _kernel_figures(costs: dict[str, float], day: str) -> dict[str, Any]:
    how = f"measured by devices.server.calibrate.measure_kernel_costs on {day}: LiteRT default delegates (XNNPACK), 1 thread, fastest of 30 calls"
    what = {
        "node_s": "latency slope of chains of 100 vs 800 ZEROS_LIKE nodes (builtin) on [1, 16]",
        "delegated_node_s": "latency slope of chains of 100 vs 800 ADD nodes (XNNPACK) on [1, 16]",
        "broadcast_element_s": "BROADCAST_TO [8,1,1,128] to a run-time shape [8,8,8,128]: latency slope of 4 vs 16 nodes per output element",
        "copy_element_s": "STRIDED_SLICE with run-time begin/end/strides of [8,8,8,128]: latency slope of 4 vs 16 nodes per output element",
        "memcpy_element_s": "RESHAPE of [8,8,8,128] to a run-time shape (one memcpy): latency slope of 4 vs 16 nodes per output element",
        "elementwise_element_s": "int32 ADD of [8,8,8,128] (builtin kernel): latency slope of 4 vs 16 nodes per output element",
        "delegated_element_s": "float ADD of [8,8,8,128] (XNNPACK): latency slope of 4 vs 16 nodes per output element",
        "io_byte_s": "one ZEROS_LIKE node on [1, 16384] vs [1, 262144] float: latency slope per byte of input + output (set into the input tensor, read out to a fresh array; the kernel's own writes are in it)",
    }
    calls = _calls_how(day=day)
    sources = {k: f"{how}: {w}" for k, w in what.items()}
    sources.update({k: f"{calls}: {w}" for k, w in IO_SOURCES.items()})
    return {k: {"value": v, "source": sources[k]} for k, v in costs.items()}


def _node_figures(nodes: dict[str, float], day: str) -> dict[str, Any]:
    how = f"measured by devices.server.calibrate.measure_node_bytes on {day}: LiteRT default delegates (XNNPACK), 1 thread"
    return {
        "node_bytes": {
            "value": round(nodes["node"]),
            "source": f"{how}: least-squares slope of the resident rise after loading over chains of 100..1600 ZEROS_LIKE nodes (no XNNPACK kernel), per node and its tensor",
        },
        "prepared_node_bytes": {
            "value": round(nodes["prepared"]),
            "source": f"{how}: slope of the peak over the loaded rise of the same chains once called (arena plan, kernel state)",
        },
        "delegated_node_bytes": {
            "value": round(nodes["delegated"]),
            "source": f"{how}: least-squares peak-RSS slope over chains of 100..1600 ADD nodes (delegated to XNNPACK) less that of the ZEROS_LIKE chains",
        },
    }


def _meminfo_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise OSError("MemAvailable not in /proc/meminfo")


def _last_level_cache() -> tuple[int, str]:
    best = (0, "0")
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip()
            kind = (index / "type").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction" or level < int(best[1]):
            continue
        scale = {"K": 1024, "M": 1024**2}.get(size[-1], 1)
        best = (int(size.rstrip("KM")) * scale, str(level))
    return best


def _solve(f: Callable[[float], float], lo: float = 1e-3, hi: float = 1.0) -> float:
    """The x in [lo, hi] where the increasing-in-x function ``f`` crosses 0 (log bisection)."""
    if f(hi) <= 0:
        return hi
    if f(lo) >= 0:
        return lo
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return (lo * hi) ** 0.5


def _steps(artifact: Path, runtime: Any, runs: int) -> list[dict[str, Any]]:
    """Per compute signature: planned activations and step, and the measured peak over the
    planned resident bytes (without the runtime's fixed bytes)."""

    graph = load_graph(artifact)
    size = model_file(artifact).stat().st_size
    rows = []
    for sig in graph.signatures:
        if sig.kind not in ("embed", "train", "infer"):
            continue
        plan = plan_signature(graph, sig, runtime=runtime, model_bytes=size)
        measured = measure_signature(model_file(artifact), sig.name, runs=runs).peak_bytes
        rows.append(
            {
                "artifact": artifact.name,
                "signature": sig.name,
                "activations": plan.activations,
                "step": plan.step_bytes,
                "acts_dominate": plan.activations >= 3 * plan.gradients,
                "over_resident": measured - (plan.resident_bytes - plan.runtime_fixed),
            }
        )
    return rows


def fit_memory(
    refs: dict[str, Path], runtime: Any, runs: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The runtime's overheads and arena factor, from the three reference artifacts.

    Signatures with almost no activations (``infer``, the head-only ``train``) give the
    overheads: on the head-only artifact what an artifact with variables costs beyond the
    runtime's fixed bytes, on the all-scopes one also its image-input train subgraphs. The arena
    factor is the least-squares ratio of what remains over the planned activations, on every
    signature whose peak the activations set. The int8 artifact's ``embed`` leaves, beyond its
    weight copies, the bytes per int8 layer.
    """

    small = 16384
    fixed = runtime.fixed_bytes
    bare = dataclasses.replace(runtime, fixed_bytes=0)
    rows_h = _steps(refs["head"], bare, runs)
    rows_f = _steps(refs["full"], bare, runs)
    head = float(
        np.median([r["over_resident"] - r["step"] for r in rows_h if r["activations"] < small])
    )
    training = max(0, round(head - fixed))
    trains = sum(
        1 for s in load_graph(refs["full"]).signatures if s.kind == "train" and s.input == "images"
    )
    rest = float(
        np.median([r["over_resident"] - r["step"] for r in rows_f if r["activations"] < small])
    )
    per_train = max(0, round((rest - fixed - training) / trains)) if trains else 0
    num = den = 0.0
    for rows, overhead in (
        (rows_h, fixed + training),
        (rows_f, fixed + training + per_train * trains),
    ):
        for r in rows:
            if r["activations"] >= small and r["acts_dominate"]:
                y = r["over_resident"] - overhead - (r["step"] - r["activations"])
                num += y * r["activations"]
                den += r["activations"] ** 2
    factor = max(1.0, num / den if den else 1.0)
    rows_8 = _steps(refs["int8"], bare, runs)  # over_resident includes the int8 copies
    graph8 = load_graph(refs["int8"])
    layers = sum(1 for layer in graph8.backbone if layer.kernel_params)
    spare = float(
        np.median([r["over_resident"] - fixed - factor * r["activations"] for r in rows_8])
    )
    copies8 = runtime.weight_copies_int8 or 0.0
    int8_layer = max(0, round((spare - copies8 * weight_bytes(graph8)[2]["int8"]) / layers))
    fit = {"training": training, "per_train": per_train, "factor": factor, "int8_layer": int8_layer}
    return fit, rows_h + rows_f + rows_8


CALL_SOURCE = "one call of a one-op model (setting inputs, invoking, reading outputs), less its one input at io_input_s and one output at io_output_s"
IO_SOURCES = {
    "io_input_s": "models of 1 vs 8 float [1, 16] inputs summed into one output: latency slope per input tensor the signature runner sets",
    "io_output_s": "models of one float [1, 16] input into 1 vs 8 outputs: latency slope per output tensor the signature runner hands back",
}


def measure_call_costs(
    directory: Path, runs: int = 30, repeats: int = CALL_REPEATS
) -> dict[str, float]:
    """The signature runner's fixed cost per call, per input tensor and per output tensor.

    Models of one float [1, 16] input plus 1 into one output, of 8 inputs summed into one
    output, of one input into 8 outputs (delegated ADDs: 20 ns each), called through the runner
    (fastest of ``runs`` calls, fastest of ``repeats`` fresh processes): the slopes over the
    7 extra inputs and outputs are ``io_input_s`` and ``io_output_s``; the one-op model less
    its input and output is ``call_overhead_s``.
    """
    import tensorflow as tf

    def many_in(*xs: Any) -> dict[str, Any]:
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return {"y": y + 1.0}

    directory.mkdir(parents=True, exist_ok=True)
    # The three figures are microsecond differences of microsecond calls: at 30 calls a process
    # they moved 3x between calibrations of one machine. A call costs microseconds, so each
    # process times CALL_RUNS of them.
    runs = max(runs, CALL_RUNS)
    t = {}
    for key, (n_in, n_out) in {"1_1": (1, 1), "8_1": (8, 1), "1_8": (1, 8)}.items():
        specs = [tf.TensorSpec((1, 16), tf.float32, name=f"x{i}") for i in range(n_in)]
        fn = many_in if n_out == 1 else (lambda x: {f"y{i}": x + float(i + 1) for i in range(8)})
        path = convert_tf(fn, specs, directory / f"io_{key}.tflite")
        t[key] = min(measure_signature(path, "run", runs=runs).latency_s for _ in range(repeats))
    per_in = max(0.0, (t["8_1"] - t["1_1"]) / 7)
    per_out = max(0.0, (t["1_8"] - t["1_1"]) / 7)
    call = max(0.0, t["1_1"] - per_in - per_out)
    return {"io_input_s": per_in, "io_output_s": per_out, "call_overhead_s": call}


def _efficiency_figures(
    speed: dict[str, Any], probes: list[tuple[str, str, float, float]], how: str, ref: str
) -> dict[str, Any]:
    out = {
        "forward": {
            "value": 1.0,
            "source": "not fitted: forward layers without a kernel class (pooling, normalisation, fully connected: memory bound, or the kind the peak is measured on) at the peak",
        },
        "forward_int8": {"value": 1.0, "source": "not fitted: the same for int8 layers"},
    }
    for key, what in (
        ("backward", "train steps that train no kernel"),
        ("weight_gradient", "train steps that train kernels"),
    ):
        if any(p[0] == key for p in probes):
            continue  # measured on probes (below)
        out[key] = {
            "value": round(speed[key], 4),
            "source": f"{how}: share of the peak that makes the roofline match the {what} of the {ref}",
        }
    names: dict[str, list[str]] = {}
    for key, name, _, _ in probes:
        names.setdefault(key, []).append(name)
    for key, probe_names in names.items():
        out[key] = {
            "value": round(speed[key], 4),
            "source": f"{how} of Interpreter.invoke(), fastest of 2 processes (devices.server.probes): ops over the latency slope of 1 vs 4 independent copies of the single layer {' and '.join(probe_names)} (less the dispatch the estimator charges: delegated_node_s, or op_overhead_s for variable filters), over the peak",
        }
    return out


def _how(runs: int) -> str:
    day = datetime.date.today().isoformat()
    return f"measured by devices.server.calibrate on {day}: LiteRT default delegates (XNNPACK), 1 thread, fastest of {runs} calls"


def _calls_how(runs: int = 0, day: str = "") -> str:
    """How :func:`measure_call_costs` measured (``runs`` as asked of it): every call-cost
    figure's source starts with this."""
    day = day or datetime.date.today().isoformat()
    return (
        f"measured by devices.server.calibrate.measure_call_costs on {day}: LiteRT default "
        f"delegates (XNNPACK), 1 thread, fastest of {max(runs, CALL_RUNS)} calls in each of "
        f"{CALL_REPEATS} processes"
    )


REFERENCES = f"reference artifacts {CALIBRATION_REFERENCE} (all scopes; head only; int8 embed)"


def measure_speed(
    base: Path, refs: dict[str, Path], shape: Any, runs: int
) -> tuple[dict[str, float], list[tuple[str, str, float, float]], dict[str, Any]]:
    """The call costs (:func:`measure_call_costs`), the kernel classes
    (:func:`devices.server.probes.measure_kernel_probes`) and the dispatch and backward shares fitted
    on the calibration references ``refs`` (:func:`fit_speed`) over the profile ``shape`` (its
    peaks, bandwidths and kernel costs)."""
    calls = measure_call_costs(base / "calls", runs=runs)
    probes = measure_kernel_probes(base / "kernel_classes", runs=runs)
    shape = dataclasses.replace(
        shape,
        kernel_costs={**shape.kernel_costs, **{k: calls[k] for k in IO_SOURCES}},
        call_overhead_s=calls["call_overhead_s"],
        op_overhead_s=0.0,
        compute_efficiency={"forward": 1.0, "backward": 1.0},
    )
    return calls, probes, fit_speed(refs["full"], refs["int8"], shape, runs, probes)


def _speed_figures(
    calls: dict[str, float],
    probes: list[tuple[str, str, float, float]],
    speed: dict[str, Any],
    runs: int,
) -> dict[str, Any]:
    """The profile's call overhead, dispatch and compute shares, with their sources."""
    how = _how(runs)
    return {
        "op_overhead_s": {
            "value": speed["op_overhead_s"],
            "source": f"{how}: signatures without real compute (infer, head-only train) of the {REFERENCES}, less the call overhead, per layer pass",
        },
        "call_overhead_s": {
            "value": calls["call_overhead_s"],
            "source": f"{_calls_how(runs)}: {CALL_SOURCE}",
        },
        "compute_efficiency": _efficiency_figures(speed, probes, how, REFERENCES),
    }


def update_speed(
    target: Path | None = None,
    *,
    workdir: Path | None = None,
    runs: int = 30,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measures the call costs (:func:`measure_call_costs`) and the kernel classes
    (:func:`devices.server.probes.measure_kernel_probes`), refits the dispatch and the backward
    shares (:func:`fit_speed`) on the calibration references, and writes those figures into the
    ``host`` profile (the rest unchanged): about three minutes.

    Returns the figures and ``check``: (predicted, measured) seconds of the references' embeds.
    """

    target = target or PROFILE_DIR / "host.json"
    profile = load_profile(target)  # a missing or bad profile is refused before minutes of work
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(workdir) if workdir else Path(tmp)
        log("converting the call probes, the kernel probes and the calibration references ...")
        refs = {
            "full": base / "calibration_ref",
            "int8": base / "calibration_ref_int8",
        }
        for key, kwargs in (("full", {}), ("int8", {"int8": True})):
            if not (refs[key] / "model.tflite").is_file():
                build_reference(refs[key], **kwargs, **CALIBRATION_REFERENCE)  # type: ignore[arg-type]
        calls, probes, speed = measure_speed(base, refs, profile, runs)
    doc = json.loads(target.read_text())
    doc.update(_speed_figures(calls, probes, speed, runs))
    for key, what in IO_SOURCES.items():
        doc["kernel_costs"][key] = {"value": calls[key], "source": f"{_calls_how(runs)}: {what}"}
    target.write_text(json.dumps(doc, indent=2) + "\n")
    load_profile(target)
    for key, name, slope, ops in probes:
        log(f"  {key:24s} {name:34s} {slope * 1e6:8.2f} us/layer  {ops / slope / 1e9:7.1f} Gops/s")
    return {**calls, **speed}


def fit_speed(
    full: Path,
    int8_ref: Path,
    base: Any,
    runs: int,
    probes: list[tuple[str, str, float, float]] | None = None,
) -> dict[str, Any]:
    """Per-pass dispatch time and the share of the peak each kind of pass reaches.

    Matched one at a time, each on the signatures it dominates: dispatch on those without real
    compute (``infer``, head-only ``train``), backward on the image-input train steps that
    train no kernel (input gradients only), weight gradients on those that do unless the
    kernel-gradient probes measured them. Forward
    convolutions run at their kernel class's share (:func:`devices.server.probes.class_efficiencies`
    of the single-layer ``probes``, less XNNPACK's per-node cost ``delegated_node_s``, or the
    dispatch fitted here for the variable-filter probes), not fitted; the remaining
    forward layers (pooling, normalisation, fully connected: memory bound, or the peak's own
    kind) at 1. The references' ``embed`` calls are the out-of-sample check of the classes
    (returned as ``check``).
    """

    graph = load_graph(full)
    stats = read_model_stats(model_file(full))  # the estimator adds what the file runs
    measured = {
        s.name: measure_signature(model_file(full), s.name, runs=runs).latency_s
        for s in graph.signatures
        if s.kind in ("embed", "train", "infer")
    }
    light = [
        s
        for s in graph.signatures
        if s.kind == "infer" or (s.kind == "train" and s.input == "embeddings")
    ]
    spare = passes = 0.0
    for sig in light:
        est = estimate(graph, sig, base, model_stats=stats)
        passes += est.dispatches
        spare += max(measured[sig.name] - est.latency_s, 0.0)
    eff = {"forward": 1.0, "backward": 1.0, "forward_int8": 1.0}
    prof = dataclasses.replace(base, op_overhead_s=spare / passes if passes else 0.0)
    eff.update(
        class_efficiencies(
            probes or [],
            dict(base.peak_ops_per_s),
            prof.op_overhead_s,
            base.kernel_costs.get("delegated_node_s"),
        )
    )

    def matched(key: str, pairs: list[tuple[Any, Any, float, Any]]) -> float:
        def gap(x: float) -> float:
            trial = dataclasses.replace(prof, compute_efficiency={**eff, key: x})
            return sum(t - estimate(g, s, trial, model_stats=st).latency_s for g, s, t, st in pairs)

        return _solve(gap) if pairs else 1.0

    heavy = [s for s in graph.signatures if s.kind == "train" and s.input == "images"]
    kernels = {
        s.name
        for s in heavy
        if any(layer.train.get(s.scope or "") == "all" and layer.macs for layer in graph.layers)
    }
    eff["backward"] = matched(
        "backward", [(graph, s, measured[s.name], stats) for s in heavy if s.name not in kernels]
    )
    if "weight_gradient" not in eff:  # measured on the kernel-gradient probes when given
        eff["weight_gradient"] = matched(
            "weight_gradient",
            [(graph, s, measured[s.name], stats) for s in heavy if s.name in kernels],
        )
    final = dataclasses.replace(prof, compute_efficiency=eff)
    rows = {"embed": measured["embed"], **{s.name: measured[s.name] for s in heavy}}
    check = _speed_check(full, int8_ref, final, rows, runs)
    return {"op_overhead_s": prof.op_overhead_s, **eff, "check": check}


def _speed_check(
    full: Path, int8_ref: Path, profile: Any, measured: dict[str, float], runs: int
) -> dict[str, tuple[float, float]]:
    """``{signature: (estimated, measured) seconds}``: the float reference's ``embed`` and
    image-input train steps (``measured``), and the int8 reference's ``embed`` (measured here)."""
    graph, stats = load_graph(full), read_model_stats(model_file(full))
    graph8, stats8 = load_graph(int8_ref), read_model_stats(model_file(int8_ref))
    t8 = measure_signature(model_file(int8_ref), "embed", runs=runs).latency_s
    check = {
        "embed": (estimate(graph, "embed", profile, model_stats=stats).latency_s, measured["embed"])
    }
    check["embed_int8"] = (estimate(graph8, "embed", profile, model_stats=stats8).latency_s, t8)
    for k, t in measured.items():
        if k != "embed":
            check[k] = (estimate(graph, k, profile, model_stats=stats).latency_s, t)
    return check


class _HostFigures(NamedTuple):
    """What calibrating this machine measured (the inputs of the ``host`` profile)."""

    cache: int  # last-level data cache, bytes
    level: str  # its level (1, 2, 3)
    fixed: float  # the runtime's fixed bytes: a one-op model's peak less its file
    copies: float  # weight copies of a float layer
    copies8: float  # the same of a full-integer int8 layer
    fp32: float  # peak ops/s
    int8: float
    dram: float  # bytes/s
    sram: float
    fit: dict[str, Any]  # fit_memory: training, per_train, factor, int8_layer
    nodes: dict[str, float]  # measure_node_bytes
    kernels: dict[str, float]  # measure_kernel_costs + the call costs
    calls: dict[str, float]
    probes: list[tuple[str, str, float, float]]
    speed: dict[str, Any]


def calibrate_host(
    out: str | os.PathLike[str] | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    runs: int = 30,
    log: Callable[[str], None] = print,
) -> Path:
    """Measures this machine and writes the ``host`` profile (with the date); returns its path."""
    target = Path(out) if out else PROFILE_DIR / "host.json"
    with tempfile.TemporaryDirectory() as tmp:
        figures = _measure_host(Path(workdir) if workdir else Path(tmp), runs, log)
    target.write_text(json.dumps(_host_profile(figures, runs), indent=2) + "\n")
    load_profile(target)  # the file we wrote must validate
    return target


def _calibration_references(base: Path) -> dict[str, Path]:
    """The calibration reference artifacts: all scopes, head only, int8 ``embed``."""
    ref: dict[str, Any] = dict(CALIBRATION_REFERENCE)
    return {
        "full": build_reference(base / "calibration_ref", **ref),
        "head": build_reference(base / "calibration_ref_head", scopes=("head",), **ref),
        "int8": build_reference(base / "calibration_ref_int8", int8=True, **ref),
    }


def _fastest_process(path: Path, runs: int) -> Measurement:
    """The probe in :data:`PROBE_PROCESSES` fresh processes: the first one's memory and the
    fastest latency (one process's fastest of 30 calls moved the fp32 peak and the cache
    bandwidth by 1.4-1.8x between calibrations of one machine)."""
    first, *more = (measure_signature(path, "run", runs=runs) for _ in range(PROBE_PROCESSES))
    return dataclasses.replace(first, latency_s=min(r.latency_s for r in (first, *more)))


def _measure_host(base: Path, runs: int, log: Callable[[str], None]) -> _HostFigures:
    cache, level = _last_level_cache()
    log("converting the probe models and the calibration reference artifacts ...")
    models = build_probe_models(base / "probes")
    refs = _calibration_references(base)
    m = {name: _fastest_process(path, runs) for name, path in models.items()}
    for name, r in m.items():
        log(f"  {name:9s} peak {r.peak_bytes / 1024:9.0f} KiB  min {r.latency_s * 1e6:9.1f} us")
    size = {name: path.stat().st_size for name, path in models.items()}
    fixed = m["trivial"].peak_bytes - size["trivial"]
    # fully connected 64x1024x1024: weights 4 MiB (fp32) or 1 MiB (int8); in + out arena
    copies = (m["fc_fp32"].peak_bytes - size["fc_fp32"] - fixed - 64 * 2048 * 4) / (1024 * 1024 * 4)
    copies8 = (m["fc_int8"].peak_bytes - size["fc_int8"] - fixed - 64 * 1024 * 5) / (1024 * 1024)
    call = m["trivial"].latency_s
    runtime = Runtime(
        fixed_bytes=fixed, weight_copies=max(copies, 0.0), weight_copies_int8=max(copies8, 0.0)
    )
    fit, rows = fit_memory(refs, runtime, runs=3)
    for row in rows:
        log(
            f"  {row['artifact']:22s} {row['signature']:18s} "
            f"activations {row['activations'] / 1024:7.0f} KiB  step {row['step'] / 1024:7.0f} KiB  "
            f"measured over resident {row['over_resident'] / 1024:7.0f} KiB"
        )
    log(
        f"  fixed {fixed / 1024:.0f} KiB, with variables +{fit['training'] / 1024:.0f} KiB, "
        f"per image-input train subgraph {fit['per_train'] / 1024:.0f} KiB, "
        f"per int8 layer {fit['int8_layer'] / 1024:.0f} KiB, arena factor {fit['factor']:.3f}"
    )
    fp32 = 2 * 64 * 1024 * 1024 / m["fc_fp32"].latency_s
    int8 = 2 * 64 * 1024 * 1024 / m["fc_int8"].latency_s
    dram = 4096 * 4096 * 4 / max(m["fc_dram"].latency_s - call, 1e-9)
    sram = 256 * 256 * 4 / max(m["fc_cache"].latency_s - call, 1e-9)
    shape = dataclasses.replace(
        load_profile(PROFILE_DIR / "mcu.json"),
        name="host-calibration",
        sram_bytes=cache,
        precisions=("fp32", "int8"),
        peak_ops_per_s={"fp32": fp32, "int8": int8},
        dram_bandwidth_bytes_per_s=dram,
        sram_bandwidth_bytes_per_s=sram,
        op_overhead_s=0.0,
        call_overhead_s=call,
        compute_efficiency={"forward": 1.0, "backward": 1.0},
    )
    nodes = measure_node_bytes(base / "chains")
    kernels = measure_kernel_costs(base / "kernels")
    shape = dataclasses.replace(shape, kernel_costs=kernels)
    calls, probes, speed = measure_speed(base, refs, shape, runs)
    kernels.update({k: calls[k] for k in IO_SOURCES})
    log("  " + ", ".join(f"{k} {v:.3g}" for k, v in kernels.items()))
    log(
        f"  per node {nodes['node']:.0f} B, prepared +{nodes['prepared']:.0f} B, "
        f"delegated +{nodes['delegated']:.0f} B"
    )
    log("  " + ", ".join(f"{k} {v:.4g}" for k, v in speed.items() if k != "check"))
    return _HostFigures(
        cache,
        level,
        fixed,
        copies,
        copies8,
        fp32,
        int8,
        dram,
        sram,
        fit,
        nodes,
        kernels,
        calls,
        probes,
        speed,
    )


def _fig(value: Any, source: str) -> dict[str, Any]:
    return {"value": value, "source": source}


ENERGY_NOTE = "not measured (no power meter on this machine): Horowitz 45 nm figures, not rescaled"


def _host_profile(f: _HostFigures, runs: int) -> dict[str, Any]:
    """The ``host`` profile document: every figure with how it was measured."""
    day = datetime.date.today().isoformat()
    how = _how(runs)
    probe = f"{how} in each of {PROBE_PROCESSES} fresh processes"
    cpu_cache = f"/sys/devices/system/cpu/cpu0/cache, read on {day}"
    return {
        "format": PROFILE_FORMAT,
        "name": "host",
        "description": "This machine, measured with LiteRT (one thread, default delegates)",
        "measured": day,
        "memory_bytes": _fig(_meminfo_available(), f"MemAvailable in /proc/meminfo on {day}"),
        "sram_bytes": _fig(f.cache, f"last-level data cache (L{f.level}) of cpu0, {cpu_cache}"),
        "flash_bytes": None,
        "precisions": _fig(["fp32", "int8"], f"{how}: float and full-integer int8 models both run"),
        "peak_ops_per_s": {
            "fp32": _fig(
                round(f.fp32),
                f"{probe}: fully connected 64x1024x1024 float, 2 ops per multiply-accumulate",
            ),
            "int8": _fig(round(f.int8), f"{probe}: fully connected 64x1024x1024 full-integer int8"),
        },
        "dram_bandwidth_bytes_per_s": _fig(
            round(f.dram),
            f"{probe}: fully connected 1x4096x4096 float (64 MiB of weights streamed), "
            "less the call overhead",
        ),
        "sram_bandwidth_bytes_per_s": _fig(
            round(f.sram),
            f"{probe}: fully connected 1x256x256 float (256 KiB, cache resident), "
            "less the call overhead",
        ),
        **_speed_figures(f.calls, f.probes, f.speed, runs),
        "energy": _energy_figures(),
        "battery_joules": None,
        "kernel_costs": _kernel_figures(f.kernels, day),
        "runtime": _runtime_figures(f, how, day),
    }


def _energy_figures() -> dict[str, Any]:
    note = ENERGY_NOTE
    return {
        "scale": _fig(1.0, note),
        "pj_per_op": {
            p: _fig(
                horowitz_pj_per_op(p),
                f"Horowitz, ISSCC 2014, 45 nm: {p} (add + mult) / 2 ops; {note}",
            )
            for p in ("fp32", "int8")
        },
        "sram_pj_per_byte": _fig(
            1.25, f"Horowitz 45 nm: 5 pJ per 32-bit SRAM access / 4 bytes; {note}"
        ),
        "dram_pj_per_byte": _fig(
            160.0, f"Horowitz 45 nm: 640 pJ per 32-bit DRAM access / 4 bytes; {note}"
        ),
    }


def _runtime_figures(f: _HostFigures, how: str, day: str) -> dict[str, Any]:
    return {
        "fixed_bytes": _fig(f.fixed, f"{how}: peak RSS rise of a one-op model less its file"),
        "training_artifact_bytes": _fig(
            f.fit["training"],
            f"{how}: peak rise over the planned resident bytes of the head-only reference's "
            "signatures without activations, less fixed_bytes",
        ),
        "weight_copies": _fig(
            round(max(f.copies, 0.0), 3),
            f"{how}: (peak - file - fixed - activations) / weights of the 64x1024x1024 float layer",
        ),
        "weight_copies_int8": _fig(
            round(max(f.copies8, 0.0), 3),
            f"{how}: the same for the full-integer int8 layer (arena: float and int8 input and "
            "output)",
        ),
        "int8_layer_bytes": _fig(
            f.fit["int8_layer"],
            f"{how}: what the int8 reference's embed keeps beyond fixed bytes, arena and int8 "
            "copies, per int8 layer",
        ),
        "arena_factor": _fig(
            round(f.fit["factor"], 3),
            f"{how}: least squares of the measured peak, less the planned resident bytes and "
            "overheads, over the planned activations of the signatures whose peak activations "
            f"set, {REFERENCES}, 3 calls each",
        ),
        "train_subgraph_bytes": _fig(
            f.fit["per_train"],
            f"{how}: overhead of the all-scopes reference over the head-only one, per image-input "
            "train subgraph",
        ),
        "frozen_weights_in_ram": _fig(
            True, "LiteRT memory-maps the model file; its pages are resident once read"
        ),
        **_node_figures(f.nodes, day),
    }
