"""Roofline arithmetic on one layer: compute- vs memory-bound, SRAM vs DRAM, energy by hand."""

from __future__ import annotations

import dataclasses

import pytest

from devices import Graph, LayerSpec, SignatureSpec, estimate, inference_energy, load_profile
from devices.estimate import dispatch_s


def one_layer(kernel: int, macs: int, bits: int = 32) -> Graph:
    return Graph(
        name="one",
        input_shape=(100,),
        layers=(
            LayerSpec("fc", "dense", (100,), (10,), kernel, 0, bits=bits, act_bits=32, macs=macs),
        ),
        embedding_layer="fc",
        signatures=(SignatureSpec("embed", "embed", 1, None, "images", bits),),
    )


@pytest.fixture
def device():
    """A made-up device with round numbers (the mcu file supplies the schema)."""
    p = load_profile("mcu")
    return dataclasses.replace(
        p,
        sram_bytes=1000,
        precisions=("fp32", "int8"),
        peak_ops_per_s={"fp32": 1e9, "int8": 4e9},
        sram_bandwidth_bytes_per_s=1e9,
        dram_bandwidth_bytes_per_s=1e8,
        op_overhead_s=0.0,
        call_overhead_s=0.0,
        compute_efficiency={"forward": 1.0, "backward": 1.0},
        energy_scale=1.0,
        pj_per_op={"fp32": 2.3, "int8": 0.115},
        sram_pj_per_byte=1.25,
        dram_pj_per_byte=160.0,
        runtime=dataclasses.replace(p.runtime, frozen_weights_in_ram=True),
    )


def test_weights_in_sram_compute_bound(device) -> None:
    e = estimate(one_layer(kernel=200, macs=1_000_000), "embed", device)  # 800 B fp32 fits
    assert e.weights_in_sram
    assert e.latency_s == pytest.approx(2e6 / 1e9)  # compute: 2 ops per MAC at 1 Gop/s
    traffic = 800 + (100 + 10) * 4  # weights + activations, all from SRAM
    assert e.energy_j == pytest.approx((2e6 * 2.3 + traffic * 1.25) * 1e-12)
    assert e.compute_bound_layers == 1


def test_weights_in_dram_memory_bound(device) -> None:
    e = estimate(one_layer(kernel=2000, macs=2000), "embed", device)  # 8000 B: DRAM
    assert not e.weights_in_sram
    assert e.latency_s == pytest.approx(8000 / 1e8 + 440 / 1e9)
    assert e.energy_j == pytest.approx((4000 * 2.3 + 8000 * 160.0 + 440 * 1.25) * 1e-12)
    assert e.memory_bound_layers == 1


def test_weights_executed_from_flash_are_read_from_flash(device) -> None:
    flash = dataclasses.replace(
        device, runtime=dataclasses.replace(device.runtime, frozen_weights_in_ram=False)
    )
    e = estimate(one_layer(kernel=200, macs=1_000_000), "embed", flash)
    assert not e.weights_in_sram and e.dram_bytes == 800


def test_int8_storage_fits_where_fp32_does_not(device) -> None:
    fp32 = estimate(one_layer(2000, 2000, bits=32), "embed", device)
    int8 = estimate(one_layer(2000, 2000, bits=8), "embed", device)  # 2000 B: still DRAM
    assert int8.energy_j < fp32.energy_j
    small = inference_energy(900, 2000, device, bits=8)
    large = inference_energy(4 * 900, 2000, device, bits=32)
    assert small["fits_sram"] and not large["fits_sram"]
    assert small["precision"] == "int8"
    assert large["weight_energy_j"] / small["weight_energy_j"] == pytest.approx(4 * 160 / 1.25)


def test_training_costs_more_than_inference(mlp: Graph) -> None:
    p = load_profile("phone_cpu")
    g = mlp
    head = estimate(g, "train", p)
    wide = estimate(g, "train_last_block", p)
    assert 0 < head.latency_s < wide.latency_s and head.energy_j < wide.energy_j


def test_a_frozen_backbone_pays_the_delegate_node_cost(device) -> None:
    # embed: its constant weights run inside XNNPACK, ~20 ns per layer, not op_overhead_s
    costs = {"delegated_node_s": 20e-9}
    dev = dataclasses.replace(device, op_overhead_s=2e-6, kernel_costs=costs)
    e = estimate(one_layer(kernel=200, macs=1_000_000), "embed", dev)
    assert e.latency_s == pytest.approx(2e6 / 1e9 + 20e-9)
    assert e.dispatches == 0  # no pass charged op_overhead_s
    # a profile without the delegate's figure charges the fitted per-layer overhead
    e = estimate(
        one_layer(kernel=200, macs=1_000_000), "embed", dataclasses.replace(dev, kernel_costs={})
    )
    assert e.latency_s == pytest.approx(2e6 / 1e9 + 2e-6) and e.dispatches == 1
    # the head over variable weights (infer) runs the builtin kernel: op_overhead_s
    head = LayerSpec("h", "dense", (10,), (5,), 50, 0, bits=32, act_bits=32, macs=50)
    g = Graph(
        name="two",
        input_shape=(100,),
        layers=(*one_layer(200, 1_000_000).layers, head),
        embedding_layer="fc",
        signatures=(SignatureSpec("infer", "infer", 1, None, "embeddings", 32),),
    )
    e = estimate(g, "infer", dev)  # 100 ops; traffic 200 B weights + 60 B activations in SRAM
    assert e.latency_s == pytest.approx(max(100 / 1e9, 260 / 1e9) + 2e-6) and e.dispatches == 1
    assert dispatch_s("copy", False, dev) == 0.0
