"""Kernel-class probes: single-layer LiteRT models of each class, timed on this machine.

What a kernel class is, and the profile keys its share of the peak goes under, is
:mod:`devices.kernels` (device side). Here: the probe shapes, their models (TensorFlow converter,
imported inside the builders so that the tables load without it), their timing in fresh LiteRT
processes and the fit of each class's share of the peak.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from devices.kernels import VARIABLE_KEYS, efficiency_key
from devices.measure import measure_signature


@dataclasses.dataclass(frozen=True)
class KernelProbe:
    """One single-layer probe: a ``size`` x ``size`` x ``cin`` input, a ``ksize`` x ``ksize``
    kernel (depthwise: per channel), ``cout`` outputs, ``stride``, SAME padding, a bias."""

    cls: str
    size: int
    cin: int
    cout: int
    stride: int
    ksize: int
    batch: int = 1

    @property
    def out_size(self) -> int:
        return -(-self.size // self.stride)

    @property
    def macs(self) -> int:
        per_output = self.ksize * self.ksize * (1 if self.cls == "depthwise" else self.cin)
        return self.batch * self.out_size**2 * self.cout * per_output

    @property
    def rows(self) -> int:
        """Rows of a matrix-product probe: batch x positions."""
        return self.batch * self.out_size**2

    @property
    def name(self) -> str:
        return f"{self.cls}_{self.batch}x{self.size}x{self.size}x{self.cin}_{self.ksize}x{self.ksize}s{self.stride}_{self.cout}"


# Two shapes per class (stride 1 and 2 or two widths), of the sizes the EmbedNets run; none is a
# layer of the benchmarked artifacts.
PROBES = (
    KernelProbe("conv_thin", 96, 1, 16, 2, 3),
    KernelProbe("conv_thin", 48, 1, 32, 1, 3),
    KernelProbe("conv_narrow", 64, 3, 16, 2, 3),
    KernelProbe("conv_narrow", 48, 4, 32, 1, 3),
    KernelProbe("depthwise", 32, 48, 48, 1, 3),
    KernelProbe("depthwise", 32, 48, 48, 2, 3),
    KernelProbe("pointwise", 16, 64, 96, 1, 1),
    KernelProbe("pointwise", 32, 32, 48, 1, 1),
    KernelProbe("conv", 16, 32, 32, 1, 3),
    KernelProbe("conv", 16, 48, 64, 2, 3),
)
# Convs whose filter is a variable run the builtin kernel (XNNPACK wants constant filters), in
# a train step: the trained conv's forward (``conv_variable``) and its kernel gradient, a
# conv of the transposed, padded input [Cin, H+1, W+1, N] with the transposed output gradient
# [OH, OW, N, Cout] as filter, dilated by the stride, giving [Cin, K, K, Cout]
# (``kernel_gradient``: the profile's ``weight_gradient``). Float only; batch 5.
TRAIN_PROBES = (
    KernelProbe("conv_variable", 16, 48, 48, 2, 3, batch=5),
    KernelProbe("conv_variable", 10, 96, 96, 2, 3, batch=5),
    KernelProbe("kernel_gradient", 16, 48, 48, 2, 3, batch=5),
    KernelProbe("kernel_gradient", 10, 96, 96, 2, 3, batch=5),
    # The native train steps (export.artifact.tftrain) compute a trained 1x1 conv or dense
    # layer as matrix products over its variable [Cin, Cout] on [batch x positions] rows: the
    # forward ``x @ W`` (BATCH_MATMUL, XNNPACK: ``matmul_variable``), the input gradient
    # ``g @ W^T`` (the builtin FULLY_CONNECTED: XNNPACK takes no variable weights;
    # ``matmul_backward``) and the kernel gradient ``x^T @ g`` (BATCH_MATMUL;
    # ``matmul_kernel_gradient``). Sizes near the EmbedNets' last blocks, none of them.
    KernelProbe("matmul_variable", 4, 96, 160, 1, 1, batch=5),
    KernelProbe("matmul_variable", 3, 160, 96, 1, 1, batch=5),
    KernelProbe("matmul_backward", 4, 96, 160, 1, 1, batch=5),
    KernelProbe("matmul_backward", 3, 160, 96, 1, 1, batch=5),
    KernelProbe("matmul_kernel_gradient", 4, 96, 160, 1, 1, batch=5),
    KernelProbe("matmul_kernel_gradient", 3, 160, 96, 1, 1, batch=5),
)
BRANCHES = (1, 4)  # independent copies of the layer over one input: the slope is one layer


def convert_tf(
    fn: Any, specs: list[Any], path: Path, *, int8: bool = False, int8_io: bool = False
) -> Path:
    """Writes ``fn`` (TF ops over ``specs``, first input ``x``) as a one-signature ``.tflite``.

    ``int8``: full-integer weights and activations calibrated on 8 standard-normal batches;
    ``int8_io``: the model's input and output are int8 too.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(fn, input_signature=specs)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={"run": module.f.get_concrete_function()})
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["run"])
        if int8:
            rng = np.random.default_rng(0)
            shape = tuple(specs[0].shape)

            def representative() -> Any:
                for _ in range(8):
                    yield {"x": rng.standard_normal(shape).astype(np.float32)}

            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if int8_io:
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(conv.convert())
    return path


def build_kernel_probe(probe: KernelProbe, branches: int, path: Path, *, int8: bool) -> Path:
    """A ``run`` model of ``branches`` independent copies of ``probe`` (different weights) over
    one input, one output each; int8: full-integer with int8 inputs and outputs (no quantize or
    dequantize nodes in the timing)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import tensorflow as tf

    if probe.cls in ("conv_variable", "kernel_gradient"):
        return _build_variable_probe(probe, branches, path)
    if probe.cls.startswith("matmul_"):
        return _build_matmul_probe(probe, branches, path)
    rng = np.random.default_rng(0)
    k, s = probe.ksize, probe.stride
    weights = []
    for _ in range(branches):
        if probe.cls == "depthwise":
            w = rng.standard_normal((k, k, probe.cin, 1)) / k
        else:
            w = rng.standard_normal((k, k, probe.cin, probe.cout)) / np.sqrt(k * k * probe.cin)
        b = 0.01 * rng.standard_normal(probe.cout)
        weights.append((tf.constant(w.astype(np.float32)), tf.constant(b.astype(np.float32))))

    def fn(x: Any) -> dict[str, Any]:
        out = {}
        for i, (w, b) in enumerate(weights):
            if probe.cls == "depthwise":
                y = tf.nn.depthwise_conv2d(x, w, (1, s, s, 1), "SAME")
            else:
                y = tf.nn.conv2d(x, w, s, "SAME")
            out[f"y{i}"] = tf.nn.bias_add(y, b)
        return out

    shape = (1, probe.size, probe.size, probe.cin)
    specs = [tf.TensorSpec(shape, tf.float32, name="x")]
    return convert_tf(fn, specs, path, int8=int8, int8_io=int8)


def _build_variable_probe(probe: KernelProbe, branches: int, path: Path) -> Path:
    """``branches`` float convs whose filters are inputs (see ``TRAIN_PROBES``)."""

    import tensorflow as tf

    n, s, o = probe.batch, probe.stride, probe.out_size
    if probe.cls == "conv_variable":
        x_shape = (n, probe.size, probe.size, probe.cin)
        w_shape = (probe.ksize, probe.ksize, probe.cin, probe.cout)
    else:
        x_shape = (probe.cin, probe.size + 1, probe.size + 1, n)
        w_shape = (o, o, n, probe.cout)
    specs = [tf.TensorSpec(x_shape, tf.float32, name="x")]
    specs += [tf.TensorSpec(w_shape, tf.float32, name=f"w{i}") for i in range(branches)]

    def fn(x: Any, *ws: Any) -> dict[str, Any]:
        if probe.cls == "conv_variable":
            return {f"y{i}": tf.nn.conv2d(x, w, s, "SAME") for i, w in enumerate(ws)}
        return {f"y{i}": tf.nn.conv2d(x, w, 1, "VALID", dilations=s) for i, w in enumerate(ws)}

    return convert_tf(fn, specs, path)


def _build_matmul_probe(probe: KernelProbe, branches: int, path: Path) -> Path:
    """``branches`` float matrix products of one form (see ``TRAIN_PROBES``) whose operands
    are all inputs (run-time tensors, as variables are)."""

    import tensorflow as tf

    rows, cin, cout = probe.rows, probe.cin, probe.cout
    if probe.cls == "matmul_variable":  # x [rows, cin] @ W [cin, cout]
        x_shape, w_shape = (rows, cin), (cin, cout)

        def one(x: Any, w: Any) -> Any:
            return tf.matmul(x, w)
    elif probe.cls == "matmul_backward":  # g [rows, cout] @ W [cin, cout]^T
        x_shape, w_shape = (rows, cout), (cin, cout)

        def one(x: Any, w: Any) -> Any:
            return tf.matmul(x, w, transpose_b=True)
    else:  # x [rows, cin]^T @ g [rows, cout]
        x_shape, w_shape = (rows, cin), (rows, cout)

        def one(x: Any, w: Any) -> Any:
            return tf.matmul(x, w, transpose_a=True)

    specs = [tf.TensorSpec(x_shape, tf.float32, name="x")]
    specs += [tf.TensorSpec(w_shape, tf.float32, name=f"w{i}") for i in range(branches)]

    def fn(x: Any, *ws: Any) -> dict[str, Any]:
        return {f"y{i}": one(x, w) for i, w in enumerate(ws)}

    return convert_tf(fn, specs, path)


def measure_kernel_probes(
    directory: Path,
    *,
    runs: int = 30,
    repeats: int = 2,
    probes: tuple[KernelProbe, ...] = PROBES + TRAIN_PROBES,
) -> list[tuple[str, str, float, float]]:
    """Time of one layer of each probe, float and int8, on this machine (default delegates).

    Each probe is timed with 1 and 4 branches (``Interpreter.invoke()`` alone: the copies of a
    call's inputs and outputs are the estimator's ``io_byte_s``; fastest of ``runs`` calls, the
    fastest of ``repeats`` fresh processes: the machine is shared); the slope is one layer.

    Returns:
      ``[(profile key, probe name, seconds per layer, ops per layer), ...]``.
    """
    rows = []
    jobs = [(p, int8) for p in probes for int8 in (False, True) if not (int8 and p in TRAIN_PROBES)]
    for probe, int8 in tqdm(jobs, desc="kernel classes", unit="probe"):
        precision = "int8" if int8 else "fp32"
        t = []
        for n in BRANCHES:
            path = build_kernel_probe(
                probe, n, directory / f"{probe.name}_{precision}_{n}.tflite", int8=int8
            )
            t.append(
                min(
                    measure_signature(path, "run", runs=runs, invoke_only=True).latency_s
                    for _ in range(repeats)
                )
            )
        slope = (t[1] - t[0]) / (BRANCHES[1] - BRANCHES[0])
        rows.append((efficiency_key(probe.cls, precision), probe.name, slope, 2.0 * probe.macs))
    return rows


def class_efficiencies(
    rows: list[tuple[str, str, float, float]],
    peak_ops_per_s: dict[str, float],
    op_overhead_s: float,
    delegated_node_s: float | None = None,
) -> dict[str, float]:
    """Share of the peak each kernel class reaches: its probes' ops over their time, less the
    per-layer dispatch the estimator adds (:func:`devices.estimate.dispatch_s`:
    ``delegated_node_s`` for the probes XNNPACK runs, constant filters; ``op_overhead_s`` for
    the builtin kernels of variable filters, ``VARIABLE_KEYS``, and for all without
    ``delegated_node_s``), at the precision's peak (at most 1; at least 1e-3).

    Example: a class whose one probe does 2e6 ops in 12 us with 2 us of dispatch on a 1e12
    ops/s peak reaches 2e6 / 10e-6 / 1e12 = 0.2.
    """
    ops: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for key, _, slope, n in rows:
        builtin = key in VARIABLE_KEYS or delegated_node_s is None
        dispatch = op_overhead_s if builtin else float(delegated_node_s or 0.0)
        ops[key] = ops.get(key, 0.0) + n
        seconds[key] = seconds.get(key, 0.0) + max(slope - dispatch, 1e-9)
    out = {}
    for key in ops:
        peak = peak_ops_per_s["int8" if key.endswith("_int8") else "fp32"]
        out[key] = min(1.0, max(1e-3, ops[key] / seconds[key] / peak))
    return out
