"""Each compression method's own properties: counts, monotone masks, k-means, ties, ranges."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain.compression as pc


def jit_grad(f):
    return jax.jit(jax.grad(f))


def params_of(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "fc1": {
            "kernel": jnp.asarray(rng.standard_normal((20, 10)), jnp.float32),
            "bias": jnp.zeros(10),
        },
        "fc2": {
            "kernel": jnp.asarray(rng.standard_normal((10, 5)), jnp.float32),
            "bias": jnp.zeros(5),
        },
    }


# --- pruning -------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.9])
def test_pruning_removes_exactly_the_smallest(fraction: float) -> None:
    params = params_of()
    prune = pc.magnitude_pruning(fraction)
    out, _ = jax.jit(prune.apply)(params, prune.init(params))
    for layer in ("fc1", "fc2"):
        w, kept = np.asarray(params[layer]["kernel"]), np.asarray(out[layer]["kernel"])
        assert np.sum(kept == 0) == round(fraction * w.size)
        if fraction > 0:
            assert np.abs(w[kept == 0]).max() <= np.abs(w[kept != 0]).min()
        np.testing.assert_array_equal(kept[kept != 0], w[kept != 0])
        np.testing.assert_array_equal(out[layer]["bias"], params[layer]["bias"])


def test_global_pruning_counts_all_layers_together() -> None:
    params = params_of()
    prune = pc.magnitude_pruning(0.7, scope="global")
    out, _ = jax.jit(prune.apply)(params, prune.init(params))
    zeros = sum(int(np.sum(np.asarray(out[k]["kernel"]) == 0)) for k in ("fc1", "fc2"))
    assert zeros == round(0.7 * 250)


def test_masks_only_grow_with_rising_sparsity() -> None:
    params = params_of()
    previous = None
    schedule = pc.polynomial({"fc1": 0.9, "fc2": 0.6}, 4)
    for r in range(4):
        prune = pc.magnitude_pruning(schedule(r))
        params, state = jax.jit(prune.apply)(params, prune.init(params))
        if previous is not None:
            for k, m in state.masks.items():
                assert not np.any(np.asarray(m) & ~previous[k])
        previous = {k: np.asarray(m) for k, m in state.masks.items()}


def test_pruned_weights_get_no_gradient() -> None:
    params = params_of()
    prune = pc.magnitude_pruning(0.5)
    state = prune.init(params)
    grads = jit_grad(
        lambda p: sum(jnp.sum(x**2 + x) for x in jax.tree.leaves(prune.apply(p, state)[0]))
    )(params)
    for k, m in state.masks.items():
        layer = k.split("/")[0]
        assert np.all(np.asarray(grads[layer]["kernel"])[~np.asarray(m)] == 0)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: pc.magnitude_pruning(1.0), "in \\[0, 1\\)"),
        (lambda: pc.magnitude_pruning({"fc9": 0.5}).init(params_of()), "fc9"),
        (
            lambda: pc.magnitude_pruning({"fc1": 0.5}, scope="global").init(params_of()),
            "one fraction",
        ),
        (lambda: pc.magnitude_pruning(0.5, scope="nope"), "scope"),
        (
            lambda: pc.magnitude_pruning(0.5, select=pc.kernels(["none"])).init(params_of()),
            "picks no",
        ),
    ],
)
def test_pruning_refuses_bad_settings(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# --- schedules -----------------------------------------------------------------------------


def test_polynomial_schedule_rises_to_its_target() -> None:
    sched = pc.polynomial(0.9, 4)
    values = [sched(r) for r in range(6)]
    assert values == sorted(values)
    assert values[3] == pytest.approx(0.9) and values[5] == pytest.approx(0.9)
    per_layer = pc.polynomial({"fc1": 0.96, "fc2": 0.9}, 3)(2)
    assert per_layer == pytest.approx({"fc1": 0.96, "fc2": 0.9})


@pytest.mark.parametrize(
    "build",
    [
        lambda: pc.polynomial(1.2, 3),
        lambda: pc.polynomial(0.5, 0),
        lambda: pc.polynomial(0.2, 3, initial=0.5),
        lambda: pc.steps([0.5, 0.3]),
        lambda: pc.steps([]),
        lambda: pc.constant(-0.1),
        lambda: pc.constant(0.5)(-1),
    ],
)
def test_schedules_are_validated(build) -> None:
    with pytest.raises(ValueError):
        build()


# --- weight sharing ------------------------------------------------------------------------


def test_kmeans_linear_init_converges_to_a_lloyd_fixed_point() -> None:
    x = np.random.default_rng(0).standard_normal(5000)
    c, a = pc.kmeans_1d(x, 8)
    assert np.all(np.diff(c) > 0)
    nearest = np.argmin(np.abs(x[:, None] - c[None, :]), 1)
    np.testing.assert_array_equal(a, nearest)
    for k in range(8):
        np.testing.assert_allclose(c[k], x[a == k].mean(), rtol=1e-12)
    first, _ = pc.kmeans_1d(x, 8, iters=0)
    np.testing.assert_allclose(first, np.linspace(x.min(), x.max(), 8))


def test_kmeans_random_init_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        pc.kmeans_1d(np.arange(10.0), 3, init="random")
    c, _ = pc.kmeans_1d(np.arange(10.0), 3, init="random", key=jax.random.key(0))
    assert c.shape == (3,)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_sharing_uses_at_most_2_to_the_bits_values_and_keeps_zeros(bits: int) -> None:
    prune = pc.magnitude_pruning(0.5)
    params, _ = jax.jit(prune.apply)(params_of(), prune.init(params_of()))
    share = pc.weight_sharing(bits)
    state = share.init(params)
    out, state = jax.jit(share.apply)(params, state)
    for layer in ("fc1", "fc2"):
        w = np.asarray(out[layer]["kernel"])
        assert np.unique(w).size <= 2**bits
        np.testing.assert_array_equal(w == 0, np.asarray(params[layer]["kernel"]) == 0)
        book = np.asarray(state.centroids[f"{layer}/kernel"])
        assert book[0] == 0 and set(np.unique(w)) <= set(book)


def test_centroid_gradient_is_the_sum_of_member_gradients() -> None:
    prune = pc.magnitude_pruning(0.3)
    params, _ = jax.jit(prune.apply)(params_of(), prune.init(params_of()))
    share = pc.weight_sharing(3)
    state = share.init(params)
    target = jax.tree.map(
        lambda p: jnp.cos(jnp.arange(p.size, dtype=jnp.float32)).reshape(p.shape), params
    )

    def loss(p):
        out, _ = share.apply(p, state)
        return sum(
            jnp.sum(o * t)
            for o, t in zip(jax.tree.leaves(out), jax.tree.leaves(target), strict=True)
        )

    grads = jit_grad(loss)(params)
    codes = np.asarray(state.assignments["fc1/kernel"])
    g, t = np.asarray(grads["fc1"]["kernel"]), np.asarray(target["fc1"]["kernel"])
    for k in range(1, 8):
        if np.any(codes == k):
            np.testing.assert_allclose(g[codes == k], t[codes == k].sum(), rtol=1e-5)
    assert np.all(g[codes == 0] == 0)  # the zero code is frozen


def test_an_sgd_step_keeps_weights_shared() -> None:
    share = pc.weight_sharing(2)
    params = params_of()
    state = share.init(params)
    params, state = jax.jit(share.apply)(params, state)
    grads = jit_grad(lambda p: jnp.sum(jnp.sin(share.apply(p, state)[0]["fc1"]["kernel"])))(params)
    stepped = jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)
    out, new = jax.jit(share.apply)(stepped, state)
    assert np.unique(np.asarray(stepped["fc1"]["kernel"])).size <= 4
    np.testing.assert_array_equal(out["fc1"]["kernel"], stepped["fc1"]["kernel"])
    assert not np.array_equal(new.centroids["fc1/kernel"], state.centroids["fc1/kernel"])


def test_sharing_refuses_bad_bits() -> None:
    with pytest.raises(ValueError, match="bits"):
        pc.weight_sharing(0)
    with pytest.raises(ValueError, match="no selected layer"):
        pc.weight_sharing({"fc7": 4}).init(params_of())


# --- deduplication -------------------------------------------------------------------------


def test_dedup_finds_identical_rows_and_ties_them() -> None:
    w = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    w[4] = w[1]
    w[2] = 0
    w[5] = 0
    params = {"d": {"kernel": jnp.asarray(w)}}
    dedup = pc.deduplicate(axis=0)
    state = dedup.init(params)
    np.testing.assert_array_equal(state.groups["d/kernel"], [0, 1, 2, 3, 1, 2])
    packed = dedup.encode(params, state)
    assert packed.leaves["d/kernel"].unique.shape == (4, 4)
    grads = jit_grad(
        lambda p: jnp.sum(dedup.apply(p, state)[0]["d"]["kernel"] * jnp.arange(24.0).reshape(6, 4))
    )(params)
    np.testing.assert_allclose(grads["d"]["kernel"][1], np.arange(4, 8) + np.arange(16, 20))


def test_dedup_with_tolerance_merges_near_rows() -> None:
    w = np.array([[1.0, 2.0], [1.05, 1.98], [3.0, 0.0]], np.float32)
    state = pc.deduplicate(axis=0, atol=0.1).init({"k": jnp.asarray(w)})
    np.testing.assert_array_equal(state.groups["k"], [0, 0, 1])
    assert pc.distinct_slices({"k": w})["k"] == (3, 3)


# --- fixed point and ranges ----------------------------------------------------------------


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_fixed_point_values_are_on_the_grid(bits: int) -> None:
    params = params_of()
    fp = pc.fixed_point(bits)
    state = fp.init(params)
    out, _ = jax.jit(fp.apply)(params, state)
    qmax = 2 ** (bits - 1) - 1
    for k, scale in state.scales.items():
        layer = k.split("/")[0]
        w = np.asarray(params[layer]["kernel"])
        q = np.asarray(out[layer]["kernel"]) / float(scale)
        np.testing.assert_allclose(q, np.round(q), atol=1e-4)
        assert np.abs(q).max() <= qmax + 1e-4
        assert np.abs(np.asarray(out[layer]["kernel"]) - w).max() <= float(scale) / 2 + 1e-6
    packed = fp.encode(params, state).leaves["fc1/kernel"]
    assert packed.values.dtype == np.int8


def test_range_constrained_weights_clip_and_stop_the_gradient_outside() -> None:
    params = {"k": jnp.asarray([[-2.0, -0.3], [0.1, 0.9]])}
    fp = pc.fixed_point(8, clip=0.5)
    state = fp.init(params)
    out, _ = jax.jit(fp.apply)(params, state)
    assert float(jnp.abs(out["k"]).max()) <= 0.5
    grads = jit_grad(lambda p: jnp.sum(fp.apply(p, state)[0]["k"]))(params)
    np.testing.assert_array_equal(grads["k"], [[0.0, 1.0], [1.0, 0.0]])


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3, name="out")(nn.relu(nn.Dense(8, name="hidden")(x)))


def test_clip_activations_bounds_layer_outputs() -> None:
    model = _Tiny()
    x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 5)) * 10, jnp.float32)
    params = model.init(jax.random.key(0), x)["params"]
    ranges = pc.activation_ranges(model.apply, params, x)
    assert set(ranges) == {"hidden", "out"} and ranges["hidden"] > 0.5
    clipped = pc.clip_activations(model.apply, {"hidden": 0.5, "out": 0.25}, bits=4)
    y = jax.jit(clipped)({"params": params}, x)
    assert float(jnp.abs(y).max()) <= 0.25
    after = pc.activation_ranges(pc.clip_activations(model.apply, 0.5), params, x)
    assert max(after.values()) <= 0.5 + 1e-6
