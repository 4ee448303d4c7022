"""Planner arithmetic on small models, every figure computed by hand in the test."""

from __future__ import annotations

import dataclasses

from devices import Graph, plan_signature, widest_fitting_scope
from devices.profiles import Runtime

IDEAL = Runtime(fixed_bytes=1000, weight_copies=0.0, arena_factor=1.0)


def test_resident_bytes_by_hand(mlp: Graph) -> None:
    g = mlp
    plan = plan_signature(g, "embed", runtime=IDEAL)
    # Frozen constants stored once: embed holds fc1 and fc2 at int8 (kernels) + int32 biases;
    # train_last_block holds fc1 at 32 bits (frozen_bits=32): kernel 4 B + bias 4 B.
    assert plan.frozen_weights == (25088 + 4 * 32) + (512 + 4 * 16) + (4 * 25088 + 4 * 32)
    # Variables: union over scopes = fc2 (528) + head (170), float32, with their initial values.
    assert plan.trainable_weights == 4 * (528 + 170)
    assert plan.initial_values == 4 * (528 + 170)
    assert plan.optimizer_state == 0
    assert plan.runtime_fixed == 1000  # no per-subgraph delegate bytes in IDEAL
    # Embed at batch 1, int8 activations: the larger of (784 + 32) and (32 + 16) bytes.
    assert plan.activations == plan.step_bytes == 784 + 32


def test_train_head_step_by_hand(mlp: Graph) -> None:
    plan = plan_signature(mlp, "train", runtime=IDEAL)
    # Head only, batch 5: kept input 5*16*4 and output 5*10*4, in flight (in + out) the same.
    kept = 5 * 16 * 4 + 5 * 10 * 4
    assert plan.activations == kept + (5 * 16 * 4 + 5 * 10 * 4)
    assert plan.gradients == 4 * 160  # the largest trained tensor, the head kernel
    reads = 4 * 170
    assert plan.workspace == reads + 2 * 4 * 160
    assert plan.step_bytes == reads + max(plan.activations, 3 * 4 * 160)


def test_train_last_block_step_by_hand(mlp: Graph) -> None:
    plan = plan_signature(mlp, "train_last_block", runtime=IDEAL)
    front = 5 * 784 * 4 + 5 * 32 * 4  # fc1 runs forward only, float
    kept = 5 * 32 * 4 + 5 * 16 * 4 + 5 * 10 * 4  # inputs of fc2 and head, output of head
    in_flight = max(5 * (32 + 16) * 4, 5 * (16 + 10) * 4)
    assert plan.activations == max(front, kept + in_flight)
    reads = 4 * (528 + 170)
    assert plan.step_bytes == reads + max(plan.activations, 3 * 4 * 512)


def test_runtime_terms_scale_as_documented(mlp: Graph) -> None:
    g = mlp
    rt = dataclasses.replace(
        IDEAL,
        weight_copies=1.0,
        arena_factor=2.0,
        train_subgraph_bytes=7,
        training_artifact_bytes=11,
        int8_layer_bytes=3,
    )
    ideal = plan_signature(g, "train_last_block", runtime=IDEAL)
    plan = plan_signature(g, "train_last_block", runtime=rt)
    # Packed copies of every subgraph's constants: embed (int8) + train_last_block's fc1 (fp32).
    assert plan.weight_copies == (25088 + 128) + (512 + 64) + (4 * 25088 + 128)
    # fixed + an artifact with variables + one image-input train subgraph + embed's 2 int8 layers
    assert plan.runtime_fixed == 1000 + 11 + 7 + 2 * 3
    packed = 2 * 4 * (512 + 160)  # trained kernels packed for forward and backward
    reads = 4 * (528 + 170)
    # The factor is on the activations only; reads and update temporaries are plain tensors.
    assert plan.activations == ideal.activations
    assert plan.step_bytes == reads + max(2 * ideal.activations, 3 * 4 * 512) + packed


def test_model_bytes_fill_the_file_and_copies_do_not_run(mlp: Graph) -> None:
    g = mlp
    plan = plan_signature(g, "get_weights", runtime=IDEAL, model_bytes=200_000)
    assert plan.frozen_weights + plan.initial_values + plan.file_other == 200_000
    assert plan.step_bytes == 2 * 4 * (528 + 170)  # arena copies + the caller's copies


def test_a_smaller_file_caps_the_graph_estimate(mlp: Graph) -> None:
    # A file that stores less than the graph says (initial values at int8, shared buffers): the
    # runtime holds the file, not the estimate.
    whole = plan_signature(mlp, "get_weights", runtime=IDEAL)
    estimate = whole.frozen_weights + whole.initial_values
    plan = plan_signature(mlp, "get_weights", runtime=IDEAL, model_bytes=estimate - 1000)
    assert plan.frozen_weights + plan.initial_values + plan.file_other == estimate - 1000
    assert plan.file_other == 0
    assert plan.frozen_weights == whole.frozen_weights
    tiny = plan_signature(mlp, "get_weights", runtime=IDEAL, model_bytes=100)
    assert (tiny.frozen_weights, tiny.initial_values, tiny.file_other) == (100, 0, 0)
    assert tiny.trainable_weights == whole.trainable_weights  # the variables stay float32


def test_weights_in_flash_do_not_count(mlp: Graph) -> None:
    mcu = dataclasses.replace(IDEAL, frozen_weights_in_ram=False)
    plan = plan_signature(mlp, "train", runtime=mcu, model_bytes=200_000)
    assert plan.frozen_weights == plan.initial_values == plan.file_other == 0
    assert plan.trainable_weights == 4 * (528 + 170)


def test_widest_fitting_scope_picks_by_budget(mlp: Graph) -> None:
    from devices import load_profile

    g = mlp
    profile = dataclasses.replace(load_profile("mcu"), runtime=IDEAL)
    _, plans = widest_fitting_scope(g, profile, 10**9)
    head, last = plans["head"].peak_bytes, plans["last_block"].peak_bytes
    assert head < last
    assert widest_fitting_scope(g, profile, last)[0] == "last_block"
    assert widest_fitting_scope(g, profile, last - 1)[0] == "head"
    assert widest_fitting_scope(g, profile, head - 1)[0] is None


def test_momentum_adds_its_slots(mlp: Graph) -> None:
    plain = plan_signature(mlp, "train", runtime=IDEAL)
    momentum = plan_signature(dataclasses.replace(mlp, optimizer_slots=1), "train", runtime=IDEAL)
    assert momentum.optimizer_state == momentum.trainable_weights == 4 * (528 + 170)
    assert momentum.step_bytes - plain.step_bytes == 4 * 170  # the head's momentum read copy
