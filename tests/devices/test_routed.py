"""A routed model's costs: MACs and latency of the path taken, weights of every branch."""

from __future__ import annotations

import pytest

from devices import LayerSpec, RoutedGraph, estimate, load_profile, routed_cost
from devices.graph import GraphError


def layers() -> list[LayerSpec]:
    """Trunk 100 -> 50 (+ router 50 -> 2), two branches 50 -> 20 -> 10 of different widths."""
    return [
        LayerSpec("m/conv1", "dense", (100,), (50,), 5000, 50, macs=5000),
        LayerSpec("m/router", "dense", (50,), (2,), 100, 2, macs=100),
        LayerSpec("m/branch_0/fc1", "dense", (50,), (20,), 1000, 20, macs=1000),
        LayerSpec("m/branch_0/fc2", "dense", (20,), (10,), 200, 10, macs=200),
        LayerSpec("m/branch_1/fc1", "dense", (50,), (30,), 1500, 30, macs=1500),
        LayerSpec("m/branch_1/fc2", "dense", (30,), (10,), 300, 10, macs=300),
    ]


def routed() -> RoutedGraph:
    return RoutedGraph.from_layers("toy", layers(), (100,))


def test_layers_split_into_trunk_and_branches() -> None:
    r = routed()
    assert r.trunk == ("m/conv1", "m/router")
    assert r.branches == (
        ("m/branch_0/fc1", "m/branch_0/fc2"),
        ("m/branch_1/fc1", "m/branch_1/fc2"),
    )
    assert [layer.name for layer in r.path(1).layers] == ["m/conv1", "m/router", *r.branches[1]]


def test_cost_counts_the_taken_path_and_every_branch_resident() -> None:
    cost = routed_cost(routed(), load_profile("phone_cpu"))
    assert cost.taken_macs == 5000 + 100 + 1500 + 300  # trunk + the larger branch
    assert cost.all_macs == 8100
    stored = sum(4 * (layer.kernel_params + layer.bias_params) for layer in layers())
    assert cost.resident_weight_bytes == stored
    assert cost.activation_peak_bytes == 4 * (100 + 50)  # conv1's input + output, float32


def test_taken_path_is_estimated_faster_than_every_branch() -> None:
    profile = load_profile("phone_cpu")
    r = routed()
    everything = r.path(0)
    everything = type(everything)(
        "all",
        everything.input_shape,
        r.graph.layers,
        "m/branch_1/fc2",
        signatures=everything.signatures,
    )
    assert routed_cost(r, profile).latency_s < estimate(everything, "embed", profile).latency_s


def test_round_trip_and_refusals() -> None:
    r = routed()
    assert RoutedGraph.from_dict(r.to_dict()) == r
    with pytest.raises(GraphError, match="unplaced"):
        RoutedGraph(r.graph, r.trunk[:1], r.branches)
    with pytest.raises(GraphError, match="branch 2 of 2"):
        r.path(2)
