"""Structured pruning: masks remove whole channels / kernels / strided positions, the particle
filter prefers lower validation error, and the rebuilt narrow LeNet-5 equals the masked one.

Tolerances: masks and selections are exact; the rebuilt network against the masked one differs
only by float32 summation order (bounded by 1e-5 of the output scale).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain
import pretrain.compression as pc

CHAIN = ("conv", "dense")


def tiny_params(seed: int = 0) -> dict:
    """A conv (3x3, 2 -> 4) whose 4 channels a dense layer reads at 3 positions, 12 -> 5."""
    rng = np.random.default_rng(seed)
    return {
        "conv": {
            "kernel": jnp.asarray(rng.standard_normal((3, 3, 2, 4)), jnp.float32),
            "bias": jnp.asarray(rng.standard_normal(4), jnp.float32),
        },
        "dense": {
            "kernel": jnp.asarray(rng.standard_normal((12, 5)), jnp.float32),
            "bias": jnp.asarray(rng.standard_normal(5), jnp.float32),
        },
    }


def pruned(params: dict, structure: pc.Structure) -> dict:
    c = pc.structured_pruning(structure, CHAIN)
    return jax.tree.map(np.asarray, c.apply(params, c.init(params))[0])


def test_channel_mask_removes_the_filter_and_the_next_layers_inputs() -> None:
    params = tiny_params()
    keep = np.array([True, False, True, False])
    out = pruned(params, pc.Structure({"conv": keep}, {}, {}))
    assert np.all(out["conv"]["kernel"][..., ~keep] == 0)
    assert np.all(out["conv"]["kernel"][..., keep] != 0)
    np.testing.assert_array_equal(out["conv"]["bias"], params["conv"]["bias"])  # reaches nothing
    rows = out["dense"]["kernel"].reshape(3, 4, 5)  # NHWC flatten: position, channel, unit
    assert np.all(rows[:, ~keep] == 0) and np.all(rows[:, keep] != 0)


def test_kernel_mask_removes_whole_2d_kernels() -> None:
    params = tiny_params()
    kernels = np.array([[True, False, True, True], [False, True, True, False]])
    out = pruned(params, pc.Structure({}, {"conv": kernels}, {}))["conv"]["kernel"]
    assert np.all(out[:, :, ~kernels] == 0)
    assert np.all(out[:, :, kernels] != 0)


def test_strided_positions_keep_every_stride_th_position_from_each_offset() -> None:
    positions = pc.strided_positions(3, 3, 2, np.array([0, 1, 1, 0]))
    flat = positions.reshape(9, 4)
    assert flat[:, 0].tolist() == [i % 2 == 0 for i in range(9)]
    assert flat[:, 1].tolist() == [i % 2 == 1 for i in range(9)]
    out = pruned(tiny_params(), pc.Structure({}, {}, {"conv": positions}))["conv"]["kernel"]
    assert np.all((out != 0) == positions[:, :, None, :])
    with pytest.raises(ValueError, match="offsets in"):
        pc.strided_positions(3, 3, 2, np.array([2]))


def test_structure_naming_a_dense_layer_for_kernels_is_refused() -> None:
    with pytest.raises(ValueError, match="convolutions only"):
        pc.structure_masks(tiny_params(), pc.Structure({}, {"dense": np.ones((12, 5))}, {}), CHAIN)


def test_l1_structure_keeps_the_largest_filters() -> None:
    params = tiny_params()
    norms = pc.filter_norms(params, "conv")
    keep = pc.l1_structure(params, {"conv": 2}).channels["conv"]
    assert sorted(np.flatnonzero(keep)) == sorted(np.argsort(-norms)[:2])


def test_systematic_resampling_follows_the_weights() -> None:
    idx = pc.systematic_resample(np.array([0.0, 3.0, 1.0, 0.0]), rng=np.random.default_rng(0))
    assert np.bincount(idx, minlength=4).tolist() == [0, 3, 1, 0]


def test_particle_filter_finds_the_mask_with_the_lowest_error() -> None:
    important = np.zeros(12, bool)
    important[[1, 4, 6, 9]] = True  # the error counts the important units a mask removes

    def error(mask: np.ndarray) -> float:
        return float(np.sum(important & ~mask)) / 12

    rng = np.random.default_rng(0)
    initial = [m for m in pc.particles.random_masks(12, 4, 16, rng=rng)]
    result = pc.particle_filter(
        error,
        initial,
        pc.particles.swap_units(1),
        rounds=12,
        temperature=0.05,
        rng=rng,
        progress=False,
    )
    assert result.error == 0.0
    assert np.array_equal(result.best, important)
    assert result.history[-1]["best_error"] <= result.history[0]["best_error"]


def test_the_first_particle_stays_unless_beaten_by_more_than_the_margin() -> None:
    important = np.zeros(12, bool)
    important[[1, 4, 6, 9]] = True  # the error counts the important units a mask removes
    first = np.zeros(12, bool)
    first[[1, 4, 6, 0]] = True  # one important unit short: error 1/12

    def error(mask: np.ndarray) -> float:
        return float(np.sum(important & ~mask)) / 12

    def run(margin: float) -> pc.particles.FilterResult:
        rng = np.random.default_rng(0)
        return pc.particle_filter(
            error,
            [first, important, ~important],  # the baseline, a better and a worse particle
            pc.particles.swap_units(1),
            rounds=1,
            temperature=0.05,
            rng=rng,
            margin=lambda e: margin,
            progress=False,
        )

    beaten = run(0.05)  # the perfect mask is 1/12 = 0.083 better: clearly better
    assert beaten.error == 0.0 and beaten.first_error == 1 / 12
    kept = run(0.1)  # within the margin: the first particle stays
    assert np.array_equal(kept.best, first) and kept.error == 1 / 12


def test_select_structure_prefers_a_lower_validation_error_than_l1() -> None:
    params = tiny_params()
    kernel = np.asarray(params["conv"]["kernel"]).copy()
    kernel[..., 3] *= 1e-3  # the smallest L1 norm: L1 removes filter 3 ...
    params["conv"]["kernel"] = jnp.asarray(kernel)

    def error(p: dict) -> float:  # ... but removing it is the only thing that costs
        return 0.5 if np.all(np.asarray(p["conv"]["kernel"])[..., 3] == 0) else 0.1

    l1 = pc.l1_structure(params, {"conv": 3})
    assert not l1.channels["conv"][3]
    structure, log = pc.select_structure(
        params,
        {"conv": pc.LayerPlan(channels=3)},
        error,
        settings=pc.FilterSettings(particles=6, rounds=3, moves=1),
        rng=np.random.default_rng(1),
        chain=CHAIN,
        progress=False,
    )
    assert structure.channels["conv"][3] and structure.channels["conv"].sum() == 3
    assert log["conv/channels"]["val_error"] == 0.1


def test_select_structure_scores_whole_structures_and_replaces_placeholders() -> None:
    params = tiny_params()
    seen: list[pc.Structure] = []

    def structure_error(s: pc.Structure) -> float:  # only keeping filter 3 is cheap
        seen.append(s)
        return 0.1 if s.channels["conv"][3] else 0.5

    placeholder = pc.Structure({"conv": np.array([True, True, True, False])}, {}, {})
    structure, log = pc.select_structure(
        params,
        {"conv": pc.LayerPlan(channels=3)},
        lambda p: 1.0,  # not read when structures are scored
        settings=pc.FilterSettings(particles=6, rounds=3, moves=1),
        rng=np.random.default_rng(1),
        chain=CHAIN,
        start=placeholder,
        structure_error=structure_error,
        progress=False,
    )
    assert len(seen) == 18 and all(s.channels["conv"].sum() == 3 for s in seen)
    assert structure.channels["conv"][3] and log["conv/channels"]["val_error"] == 0.1


def test_word_length_is_the_shortest_within_tolerance() -> None:
    params = tiny_params()
    # the error is the weights' rounding error: shorter words give larger errors
    reference = np.asarray(params["conv"]["kernel"])

    def error(p: dict) -> float:
        return float(np.max(np.abs(np.asarray(p["conv"]["kernel"]) - reference)))

    bits, scan = pc.word_length(params, error, 0.05, lengths=(8, 6, 4, 2))
    errors = {s["bits"]: s["val_error"] for s in scan}
    assert errors[8] <= 0.05 and bits is not None and errors[bits] <= 0.05
    assert bits == 2 or errors[{8: 6, 6: 4, 4: 2}[bits]] > 0.05  # the next shorter one fails


def test_word_length_rule_is_monotone() -> None:
    # 6 bits fails, 5 and 4 happen to pass: a monotone rule stops at 7 and scans every length
    errors = {None: 0.010, 8: 0.010, 7: 0.011, 6: 0.020, 5: 0.009, 4: 0.010, 3: 0.05}
    calls = iter([None, 8, 7, 6, 5, 4, 3])

    def error(p: dict) -> float:
        return errors[next(calls)]

    bits, scan = pc.word_length(tiny_params(), error, 0.002, lengths=(8, 7, 6, 5, 4, 3))
    assert bits == 7
    assert [s["bits"] for s in scan] == [8, 7, 6, 5, 4, 3]


def test_binomial_tolerance_and_common_bits() -> None:
    assert pc.binomial_se(0.01, 10_000) == pytest.approx(np.sqrt(0.01 * 0.99 / 10_000), rel=1e-12)
    with pytest.raises(ValueError, match="n >= 1"):
        pc.binomial_se(0.01, 0)
    assert pc.common_bits([4, 6, 5]) == 6
    assert pc.common_bits([4, None]) is None
    stats = pc.mean_std([1.0, 2.0, 3.0])
    assert stats == {"mean": 2.0, "std": 1.0, "n": 3}


@pytest.fixture(scope="module")
def lenet5() -> tuple:
    module = pretrain.build_model("lenet5")
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    rng = np.random.default_rng(0)  # random weights without compiling the initialisers
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.1, s.shape), s.dtype), shapes)
    return module, params


def test_rebuilt_lenet5_equals_the_masked_one(lenet5: tuple) -> None:
    module, params = lenet5
    rng = np.random.default_rng(0)
    structure = pc.l1_structure(params, {"conv1": 7, "conv2": 13, "fc1": 100})
    structure = structure._replace(
        kernels={"conv2": rng.random((20, 50)) > 0.3},
        positions={"conv1": pc.strided_positions(5, 5, 2, rng.integers(0, 2, 20))},
    )
    c = pc.structured_pruning(structure)
    masked = c.apply(params, c.init(params))[0]
    small_module, small = pc.shrink_module(module, params, structure)
    assert small_module.features == (7, 13, 100)
    assert small["conv1"]["kernel"].shape == (5, 5, 1, 7)
    assert small["conv2"]["kernel"].shape == (5, 5, 7, 13)
    assert small["fc1"]["kernel"].shape == (16 * 13, 100)
    assert small["fc2"]["kernel"].shape == (100, 10)
    x = jax.random.normal(jax.random.key(1), (16, 28, 28, 1))
    want = np.asarray(module.apply({"params": masked}, x))
    got = np.asarray(small_module.apply({"params": small}, x))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.max(np.abs(want)))
    positions = pc.output_positions(module.apply, params, np.zeros((1, 28, 28, 1), np.float32))
    assert pc.macs(masked, positions) == pc.macs(small, positions) < pc.macs(params, positions)


def test_shrink_module_needs_a_features_field() -> None:
    module = pretrain.build_model("lenet300")
    with pytest.raises(ValueError, match="no 'features' field"):
        pc.shrink_module(module, {}, pc.Structure({}, {}, {}))


def test_pf_vs_l1_is_positive_when_the_particle_filters_are_better() -> None:
    errors = pc.pf_vs_l1([0.8, 0.9], [1.0, 1.1], higher_is_better=False)
    assert errors["difference_pts"] == pytest.approx(0.2) and errors["pf_at_least_as_accurate"]
    accuracy = pc.pf_vs_l1([96.5, 96.7], [96.8, 97.0], higher_is_better=True)
    assert accuracy["difference_pts"] == pytest.approx(-0.3)
    assert not accuracy["pf_at_least_as_accurate"]
    assert accuracy["difference_se_pts"] == pytest.approx(0.02**0.5)  # sqrt(0.02 / 2 + 0.02 / 2)
    assert pc.pf_vs_l1([1.0], [1.0], higher_is_better=False)["pf_at_least_as_accurate"]
