"""Kernel classes, the call's per-tensor cost and the builtin convs' im2col scratch: each figure
computed by hand in the test."""

from __future__ import annotations

import dataclasses

import pytest

from devices import Graph, LayerSpec, ModelStats, SignatureSpec, estimate, load_profile
from devices.kernels import efficiency_key, kernel_class
from devices.planner import plan_signature
from devices.server.probes import KernelProbe, class_efficiencies
from devices.tflite_file import SubgraphWork, _im2col


@pytest.mark.parametrize(
    ("layer", "cls"),
    [
        (LayerSpec("stem", "conv", (128, 128, 1), (64, 64, 24), 216), "conv_thin"),
        (LayerSpec("stem3", "conv", (64, 64, 3), (32, 32, 16), 432), "conv_narrow"),
        (LayerSpec("dw", "depthwise_conv", (32, 32, 24), (32, 32, 24), 216), "depthwise"),
        (LayerSpec("pw", "conv", (32, 32, 24), (32, 32, 32), 768), "pointwise"),
        (LayerSpec("c", "conv", (16, 16, 64), (8, 8, 64), 36864), "conv"),
        (LayerSpec("fc", "dense", (192,), (128,), 24576), None),
        (LayerSpec("pool", "pool", (4, 4, 192), (192,)), None),
    ],
)
def test_kernel_class(layer: LayerSpec, cls: str | None) -> None:
    assert kernel_class(layer) == cls


def test_probe_macs() -> None:
    # 96x96x1, 3x3 stride 2 (SAME) -> 48x48x16: 48*48*16 outputs of 9 MACs each
    assert KernelProbe("conv_thin", 96, 1, 16, 2, 3).macs == 48 * 48 * 16 * 9
    # depthwise 32x32x48 stride 1: 9 MACs per output, whatever Cin
    assert KernelProbe("depthwise", 32, 48, 48, 1, 3).macs == 32 * 32 * 48 * 9
    assert KernelProbe("pointwise", 16, 64, 96, 1, 1).macs == 16 * 16 * 64 * 96
    # a kernel gradient does the forward's MACs: batch 5, 8x8 outputs of 3*3*48 MACs, 48 maps
    assert KernelProbe("kernel_gradient", 16, 48, 48, 2, 3, batch=5).macs == 5 * 8 * 8 * 48 * 9 * 48


def test_class_efficiencies() -> None:
    rows = [
        ("forward_depthwise", "a", 12e-6, 2e6),  # 2e6 ops in 12 - 2 = 10 us
        ("forward_depthwise", "b", 32e-6, 4e6),  # 4e6 ops in 30 us: together 6e6 / 40 us
        ("forward_conv_int8", "c", 3e-6, 4e6),  # 4e6 / 1 us = 4e12 > peak: capped at 1
    ]
    eff = class_efficiencies(rows, {"fp32": 1e12, "int8": 2e12}, 2e-6)
    assert eff["forward_depthwise"] == pytest.approx(6e6 / 40e-6 / 1e12)
    assert eff["forward_conv_int8"] == 1.0
    # with XNNPACK's per-node cost: delegated probes less 20 ns, variable filters less 2 us
    rows = [
        ("forward_depthwise", "a", 10.02e-6, 2e6),  # 2e6 ops in 10 us
        ("forward_conv_variable", "v", 12e-6, 2e6),  # 2e6 ops in 12 - 2 = 10 us
    ]
    eff = class_efficiencies(rows, {"fp32": 1e12, "int8": 2e12}, 2e-6, 20e-9)
    assert eff["forward_depthwise"] == pytest.approx(0.2)
    assert eff["forward_conv_variable"] == pytest.approx(0.2)
    assert efficiency_key("conv_thin", "int8") == "forward_conv_thin_int8"
    assert efficiency_key("conv_thin", "fp32") == "forward_conv_thin"
    assert efficiency_key("kernel_gradient", "fp32") == "weight_gradient"
    assert efficiency_key("matmul_backward", "fp32") == "backward_matmul"
    assert efficiency_key("matmul_kernel_gradient", "fp32") == "weight_gradient_matmul"
    assert efficiency_key("matmul_variable", "fp32") == "forward_matmul_variable"


def test_a_trained_conv_runs_at_the_variable_filter_share(device) -> None:
    # train the conv "c" (3x3, 8x8x4 -> 8x8x4, 4*9*4 kernel, 4 biases) on features, batch 2
    conv = LayerSpec(
        "c", "conv", (8, 8, 4), (8, 8, 4), 144, 4, macs=8 * 8 * 4 * 36, train={"all": "all"}
    )
    graph = Graph(
        name="one_conv",
        input_shape=(8, 8, 4),
        layers=(conv,),
        embedding_layer="c",
        features_layer=None,
        scopes=("all",),
        signatures=(SignatureSpec("train", "train", 2, "all", "images"),),
    )
    eff = {
        **device.compute_efficiency,
        "forward_conv": 1.0,
        "forward_conv_variable": 0.5,
        "weight_gradient": 0.25,
    }
    prof = dataclasses.replace(device, compute_efficiency=eff)
    ops = 2.0 * 2 * 8 * 8 * 4 * 36
    # forward at 1/2, its kernel gradient at 1/4 (no input gradient: the first trained
    # layer), the update of 148 scalars: 4 ops each at the peak
    expected = ops / 0.5e9 + ops / 0.25e9 + 4 * 148 / 1e9
    assert estimate(graph, "train", prof).latency_s == pytest.approx(expected)


def test_matrix_product_steps_run_at_their_measured_shares(device) -> None:
    # a native last block trained whole on features [4, 4, 8], batch 2: depthwise 3x3, 1x1
    # conv 8 -> 16, dense 16 -> 4 (after a pool); the file shows the matrix-product form
    dw = LayerSpec(
        "dw",
        "depthwise_conv",
        (4, 4, 8),
        (4, 4, 8),
        72,
        8,
        macs=4 * 4 * 8 * 9,
        train={"all": "all"},
    )
    pw = LayerSpec(
        "pw", "conv", (4, 4, 8), (4, 4, 16), 128, 16, macs=4 * 4 * 16 * 8, train={"all": "all"}
    )
    pool = LayerSpec("pool", "pool", (4, 4, 16), (16,), 0, 0, train={"all": "none"})
    fc = LayerSpec("fc", "dense", (16,), (4,), 64, 4, macs=64, train={"all": "all"})
    graph = Graph(
        name="native",
        input_shape=(4, 4, 8),
        layers=(dw, pw, pool, fc),
        embedding_layer="fc",
        features_layer=None,
        scopes=("all",),
        signatures=(SignatureSpec("train", "train", 2, "all", "images"),),
    )
    eff = {
        **device.compute_efficiency,
        "forward_depthwise": 0.5,
        "forward_matmul_variable": 0.8,
        "backward_matmul": 0.25,
        "weight_gradient_matmul": 0.4,
        "weight_gradient": 0.1,
        "forward_conv_variable": 0.2,
    }
    prof = dataclasses.replace(device, compute_efficiency=eff)
    work = SubgraphWork(nodes=10, variable_fc=2)
    assert work.matmul_form
    stats = ModelStats(1, 10, 20, 0, 0, work=(("train", work),))
    d, p, f = (2.0 * 2 * layer.macs for layer in (dw, pw, fc))
    update = 4 * (80 + 144 + 68) / 1e9  # kernels and biases of the three layers
    pool_ops = 2 * 2 * 16 / 1e9  # the pool's forward and gradient: an op per output element
    # depthwise forward at its class share, no kernel-gradient pass (elementwise in the file);
    # the products: forward, input gradient, kernel gradient at the measured shares
    native = d / 0.5e9 + (p + f) / 0.8e9 + (p + f) / 0.25e9 + (p + f) / 0.4e9 + pool_ops + update
    assert estimate(graph, "train", prof, model_stats=stats).latency_s == pytest.approx(native)
    # without the file: convs with variable filters, kernel gradients at weight_gradient,
    # input gradients at backward (1), the dense forward at forward (1)
    conv = d / 0.5e9 + p / 0.2e9 + f / 1e9 + (d + p + f) / 0.1e9 + (p + f) / 1e9 + pool_ops + update
    assert estimate(graph, "train", prof).latency_s == pytest.approx(conv)


def test_matrix_product_probes_are_what_the_native_steps_run(tmp_path) -> None:
    # the forward and kernel gradient are BATCH_MATMUL (XNNPACK takes them over run-time
    # operands); the input gradient is a FULLY_CONNECTED over a run-time weight (XNNPACK
    # does not take it: the builtin kernel)
    from devices import read_model_stats
    from devices.server.probes import build_kernel_probe

    for cls, delegated, variable_fc in (
        ("matmul_variable", 1, 0),
        ("matmul_backward", 0, 1),
        ("matmul_kernel_gradient", 1, 0),
    ):
        probe = KernelProbe(cls, 2, 8, 4, 1, 1, batch=1)
        path = build_kernel_probe(probe, 1, tmp_path / f"{cls}.tflite", int8=False)
        work = read_model_stats(path).work_of("run")
        assert (work.nodes, work.delegated, work.variable_fc) == (1, delegated, variable_fc), cls
        assert work.matmul_form == bool(variable_fc)


def _convnet(bits: int) -> Graph:
    # a thin stem and a depthwise layer, each 144 kernel weights, 16 biases, 32x32x16x9 MACs
    def spec(name: str, op: str, shape_in: tuple[int, ...]) -> LayerSpec:
        return LayerSpec(
            name,
            op,
            shape_in,
            (32, 32, 16),
            144,
            16,
            bits=bits,
            act_bits=bits,
            macs=32 * 32 * 16 * 9,
        )

    layers = (spec("stem", "conv", (64, 64, 1)), spec("dw", "depthwise_conv", (32, 32, 16)))
    return Graph(
        name="convnet",
        input_shape=(64, 64, 1),
        layers=layers,
        embedding_layer="dw",
        signatures=(SignatureSpec("embed", "embed", 1, None, "images", bits),),
    )


@pytest.fixture
def device():
    """Round numbers; memory so fast that every layer is compute bound."""
    p = load_profile("mcu")
    return dataclasses.replace(
        p,
        sram_bytes=10**9,
        precisions=("fp32", "int8"),
        peak_ops_per_s={"fp32": 1e9, "int8": 4e9},
        sram_bandwidth_bytes_per_s=1e15,
        dram_bandwidth_bytes_per_s=1e15,
        op_overhead_s=0.0,
        call_overhead_s=0.0,
        compute_efficiency={
            "forward": 1.0,
            "backward": 1.0,
            "forward_depthwise": 0.25,
            "forward_conv_thin_int8": 0.1,
        },
        kernel_costs={},
    )


def test_forward_layers_run_at_their_class_share(device) -> None:
    ops = 2 * 32 * 32 * 16 * 9
    # fp32: the stem has no fp32 class figure (forward: 1), the depthwise runs at 1/4
    e = estimate(_convnet(32), "embed", device)
    assert e.latency_s == pytest.approx(ops / 1e9 + ops / (1e9 * 0.25))
    # int8: the thin stem at 0.1 of the int8 peak, the depthwise has no int8 figure
    e8 = estimate(_convnet(8), "embed", device)
    assert e8.latency_s == pytest.approx(ops / (4e9 * 0.1) + ops / 4e9)


def test_call_pays_per_input_and_output_tensor(device) -> None:
    costs = {"io_input_s": 1e-6, "io_output_s": 3e-7, "io_byte_s": 0.0, "node_s": 0.0}
    prof = dataclasses.replace(device, kernel_costs=costs)
    graph = _convnet(32)
    stats = ModelStats(1, 2, 3, 2, 0, work=(("embed", SubgraphWork(2, 2, io_tensors=(2, 1))),))
    plain = estimate(graph, "embed", prof).latency_s
    assert estimate(graph, "embed", prof, model_stats=stats).latency_s == pytest.approx(
        plain + 2e-6 + 3e-7
    )


def _info(shape: list[int], signature: list[int] | None = None) -> tuple:
    return (False, 0, False, shape, signature or shape)  # const, FLOAT32, dynamic, shape, sig


def test_im2col_of_a_kernel_gradient_by_hand() -> None:
    # The kernel gradient of a 3x3 stride-2 conv 16x16x64 -> 8x8x64 at batch 5, as the export
    # writes it: a conv over the padded, transposed input [64, 17, 17, 5] with the transposed
    # output gradient [64, 8, 8, 5] as filter, giving [64, 3, 3, 64]: one row of 8*8*5 values
    # per output position: 64 * 3 * 3 * 8 * 8 * 5 = 184320 floats.
    x, w, y = _info([64, 17, 17, 5]), _info([64, 8, 8, 5]), _info([64, 3, 3, 64])
    assert _im2col(x, w, y) == [(184320, 0)]
    # the same with a symbolic batch (the filter's Cin): scales with the batch
    w_dyn = _info([64, 8, 8, 1], [64, 8, 8, -1])
    assert _im2col(_info([64, 17, 17, 1], [64, 17, 17, -1]), w_dyn, y) == [(0, 36864)]
    # the forward conv: [5, 16, 16, 64] by a 3x3 filter, stride 2: 5 * 8 * 8 * 9 * 64
    assert _im2col(_info([5, 16, 16, 64]), _info([64, 3, 3, 64]), _info([5, 8, 8, 64])) == [
        (184320, 0)
    ]
    # 1x1 at stride 1 reads its input in place; int8 inputs (type 9) take another kernel
    assert _im2col(_info([5, 8, 8, 64]), _info([128, 1, 1, 64]), _info([5, 8, 8, 128])) == []
    assert (
        _im2col(
            (False, 9, False, [5, 16, 16, 64], [5, 16, 16, 64]),
            _info([64, 3, 3, 64]),
            _info([5, 8, 8, 64]),
        )
        == []
    )


def test_planner_adds_the_largest_im2col(mlp: Graph) -> None:
    host = load_profile("host")
    im2col = ((184320, 0), (20480, 0), (0, 1000))  # at batch 5: 184320, 20480, 5000 floats
    stats = ModelStats(
        1, 9, 9, 0, 0, work=(("train_last_block", SubgraphWork(9, 0, im2col=im2col)),)
    )
    bare = ModelStats(1, 9, 9, 0, 0, work=(("train_last_block", SubgraphWork(9, 0)),))
    with_scratch = plan_signature(mlp, "train_last_block", host, model_stats=stats)
    without = plan_signature(mlp, "train_last_block", host, model_stats=bare)
    assert with_scratch.scratch == 4 * 184320
    assert with_scratch.peak_bytes - without.peak_bytes == 4 * 184320
    assert SubgraphWork(im2col=((10, 0), (0, 3))).im2col_bytes_at(5) == 4 * 15


def test_invoke_only_times_the_kernels(tmp_path) -> None:
    from devices.measure import measure_signature
    from devices.server.chains import write_chain

    path = write_chain(tmp_path / "chain.tflite", 4, "ADD")
    m = measure_signature(path, "run", runs=3, invoke_only=True)
    assert len(m.latencies_s) == 3 and all(t > 0 for t in m.latencies_s)


def test_dispatch_is_charged_per_layer_pass_not_per_copy(device, mlp: Graph) -> None:
    prof = dataclasses.replace(device, op_overhead_s=1e-3)
    # get_weights: a copy of the scope's variables in and out, no layer: no dispatch
    e = estimate(mlp, "get_weights", prof)
    assert e.dispatches == 0 and e.latency_s < 1e-3
    # embed: two layer passes, each dispatched once
    assert estimate(mlp, "embed", prof).dispatches == 2
    # head-only train: the head's forward and weight gradient dispatched, its update is a copy
    assert estimate(mlp, "train", prof).dispatches == 2
