"""Node counts read from .tflite flatbuffers, and what the planner and the estimator charge
for them; every figure computed by hand in the test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from devices import (
    Graph,
    ModelFileError,
    ModelStats,
    estimate,
    load_profile,
    plan_signature,
    read_model_stats,
)
from devices.profiles import Runtime
from devices.server.chains import write_chain, write_fanout
from devices.tflite_file import SubgraphWork


@pytest.mark.parametrize(("op", "delegable"), [("ADD", True), ("ZEROS_LIKE", False)])
def test_chain_counts(tmp_path: Path, op: str, delegable: bool) -> None:
    path = write_chain(tmp_path / "chain.tflite", 7, op)
    stats = read_model_stats(path)
    # One subgraph; 7 nodes; the input and one output per node; nothing dynamic.
    assert (stats.subgraphs, stats.nodes, stats.tensors) == (1, 7, 8)
    assert stats.delegable_nodes == (7 if delegable else 0)
    assert stats.dynamic_nodes == 0 and stats.dynamic_bytes("run", 5) == 0
    work = stats.work_of("run")
    assert (work.nodes, work.delegated) == (7, 7 if delegable else 0)
    # 7 outputs of [1, 16]: builtin ZEROS_LIKE elementwise, XNNPACK's ADDs its own class
    assert work.elements_at(5) == {"delegated" if delegable else "elementwise": 7 * 16}
    # Signature input and output: [1, 16] float32 each, no symbolic batch.
    assert work.io_bytes_at(5) == 2 * 16 * 4
    assert read_model_stats(path.read_bytes()) == stats


@pytest.mark.parametrize(
    ("op", "kind", "out_elements", "dynamic"),
    [
        ("BROADCAST_TO", "broadcast", 2 * 3 * 4 * 5, True),  # to a run-time shape: heap
        ("STRIDED_SLICE", "copy", 2 * 2 * 4 * 5, True),  # every other row, run-time bounds
        ("RESHAPE", "memcpy", 2 * 3 * 4 * 5, True),  # to a run-time shape: one memcpy
        ("ADD", "elementwise", 2 * 3 * 4 * 5, False),  # int32: builtin, static shape
    ],
)
def test_runtime_shaped_outputs(
    tmp_path: Path, op: str, kind: str, out_elements: int, dynamic: bool
) -> None:
    path, _ = write_fanout(tmp_path / "fan.tflite", 3, op, (2, 3, 4, 5))
    stats = read_model_stats(path)
    work = stats.work_of("run")
    assert (work.nodes, work.delegated) == (3, 0)
    assert work.elements_at(1) == {kind: 3 * out_elements}
    # 3 outputs of 4-byte elements each on the heap when their shape is computed at run time
    assert stats.dynamic_bytes("run", 1) == (3 * 4 * out_elements if dynamic else 0)


def test_xnnpack_elementwise_nodes_are_counted_per_element(tmp_path: Path) -> None:
    # 3 float ADDs in a chain over [2, 3, 4, 5]: XNNPACK takes them; 120 elements each
    path, _ = write_fanout(tmp_path / "fan.tflite", 3, "FLOAT_ADD", (2, 3, 4, 5))
    work = read_model_stats(path).work_of("run")
    assert (work.nodes, work.delegated) == (3, 3)
    assert work.elements_at(7) == {"delegated": 3 * 120}
    assert (work.variable_fc, work.variable_conv, work.matmul_form) == (0, 0, False)


def test_a_broadcast_that_broadcasts_nothing_is_a_memcpy(tmp_path: Path) -> None:
    # [2, 1, 1, 5] to the run-time shape [2, 1, 1, 5]: as many elements in as out
    path, _ = write_fanout(tmp_path / "fan.tflite", 3, "BROADCAST_TO", (2, 1, 1, 5))
    assert read_model_stats(path).work_of("run").elements_at(1) == {"memcpy": 3 * 10}


def test_not_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="TFL3"):
        read_model_stats(bad)
    with pytest.raises(ModelFileError, match="cannot read"):
        read_model_stats(tmp_path / "missing.tflite")
    truncated = write_chain(tmp_path / "c.tflite", 3, "ADD").read_bytes()[:40]
    with pytest.raises(ModelFileError):
        read_model_stats(truncated)


STATS = ModelStats(
    subgraphs=5,
    nodes=120,
    tensors=150,
    delegable_nodes=40,
    dynamic_nodes=10,
    dynamic=(("train", 100, 30),),
    work=(
        (
            "train",
            SubgraphWork(
                nodes=50,
                delegated=20,
                elements=(("broadcast", 10, 2), ("copy", 0, 4)),
                io_bytes=(8, 16),
            ),
        ),
    ),
)


def test_runtime_bytes_per_node(mlp: Graph) -> None:
    rt = Runtime(
        fixed_bytes=1000,
        weight_copies=0.0,
        training_artifact_bytes=50_000,
        train_subgraph_bytes=70_000,
        node_bytes=500,
        delegated_node_bytes=1700,
        prepared_node_bytes=300,
    )
    with_file = plan_signature(mlp, "get_weights", runtime=rt, model_stats=STATS)
    # fixed + 500 per node + 1700 per delegated node; the layer-graph proxies are not added.
    assert with_file.runtime_fixed == 1000 + 500 * 120 + 1700 * 40
    without = plan_signature(mlp, "get_weights", runtime=rt)
    images = sum(1 for s in mlp.signatures if s.kind == "train" and s.input == "images")
    assert without.runtime_fixed == 1000 + 50_000 + 70_000 * images
    # get_weights: no dynamic outputs, nodes unknown in STATS: the same step either way
    assert with_file.step_bytes == without.step_bytes and with_file.dynamic_tensors == 0
    train = plan_signature(mlp, "train", runtime=rt, model_stats=STATS)
    plain = plan_signature(mlp, "train", runtime=rt)
    # train at its batch (5): dynamic outputs 100 + 30 * 5, and its 50 nodes prepared
    assert train.dynamic_tensors == 100 + 30 * 5
    assert train.step_bytes - plain.step_bytes == 100 + 30 * 5 + 300 * 50


def test_builtin_kernel_time(mlp: Graph) -> None:
    host = load_profile("host")
    costs = {
        "node_s": 1e-8,
        "broadcast_element_s": 1e-9,
        "copy_element_s": 5e-10,
        "io_byte_s": 1e-11,
    }
    prof = dataclasses.replace(host, kernel_costs=costs)
    sig = mlp.signature("train")  # batch 5
    base = estimate(mlp, sig, prof).latency_s
    more = estimate(mlp, sig, prof, model_stats=STATS).latency_s
    # 30 builtin nodes; broadcast 10 + 2 * 5 and copy 4 * 5 elements; io 8 + 16 * 5 bytes
    expected = 30 * 1e-8 + 20 * 1e-9 + 20 * 5e-10 + 88 * 1e-11
    assert more - base == pytest.approx(expected, rel=1e-9)
    # memcpy elements (RESHAPE) at their own cost; a profile without it charges them as copies
    work = dataclasses.replace(STATS.work[0][1], elements=(("memcpy", 100, 10),))
    stats = dataclasses.replace(STATS, work=(("train", work),))
    memcpy = {**costs, "memcpy_element_s": 1e-10}
    t = estimate(mlp, sig, dataclasses.replace(host, kernel_costs=memcpy), model_stats=stats)
    assert t.latency_s - base == pytest.approx(30 * 1e-8 + 150 * 1e-10 + 88 * 1e-11, rel=1e-9)
    t = estimate(mlp, sig, prof, model_stats=stats)
    assert t.latency_s - base == pytest.approx(30 * 1e-8 + 150 * 5e-10 + 88 * 1e-11, rel=1e-9)
    # XNNPACK's elementwise nodes: 1000 + 200 * 5 elements at their own cost
    work = dataclasses.replace(STATS.work[0][1], elements=(("delegated", 1000, 200),))
    stats = dataclasses.replace(STATS, work=(("train", work),))
    costs = {**costs, "delegated_element_s": 1e-11}
    t = estimate(mlp, sig, dataclasses.replace(host, kernel_costs=costs), model_stats=stats)
    assert t.latency_s - base == pytest.approx(30 * 1e-8 + 2000 * 1e-11 + 88 * 1e-11, rel=1e-9)
    # a profile without kernel costs adds nothing
    bare = dataclasses.replace(host, kernel_costs={})
    assert (
        estimate(mlp, sig, bare, model_stats=STATS).latency_s == estimate(mlp, sig, bare).latency_s
    )
