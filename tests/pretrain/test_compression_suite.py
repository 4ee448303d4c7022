"""The suite every compressor passes: jit once, tree and dtypes kept, stable state, exact packing.

Tolerance tiers: packing round-trips are exact (``assert_array_equal``); projections are exact on
their own output (idempotent).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain.compression as pc

METHODS: dict[str, Callable[[], pc.Compressor]] = {
    "magnitude": lambda: pc.magnitude_pruning(0.5),
    "magnitude-global": lambda: pc.magnitude_pruning(0.6, scope="global"),
    "magnitude-per-layer": lambda: pc.magnitude_pruning({"conv": 0.3, "dense": 0.8}),
    "obd": lambda: pc.obd_pruning(0.5, lambda p: jax.tree.map(lambda x: 1.0 + x**2, p)),
    "sharing": lambda: pc.weight_sharing(3),
    "sharing-per-layer": lambda: pc.weight_sharing({"conv": 2, "dense": 4}),
    "dedup-rows": lambda: pc.deduplicate(axis=0),
    "dedup-filters": lambda: pc.deduplicate(axis=-1, atol=0.5),
    "fixed-point": lambda: pc.fixed_point(8),
    "structured": lambda: pc.structured_pruning(
        pc.Structure(
            {"conv": np.array([True, False, True, True])},
            {"conv": np.array([[True, True, False, True], [False, True, True, True]])},
            {},
        ),
        ("conv", "dense"),
    ),
    "fixed-point-clipped": lambda: pc.fixed_point(4, clip={"conv": 0.5, "dense": 0.25}),
    "chain": lambda: pc.chain(
        pc.magnitude_pruning(0.7), pc.weight_sharing(3), pc.deduplicate(axis=0)
    ),
}
DTYPES = [np.float32, np.float16]


def make_params(dtype: type, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((12, 8)) * 0.3
    dense[3] = dense[5]  # a duplicated row
    dense[7] = 0.0
    return {
        "conv": {
            "kernel": jnp.asarray(rng.standard_normal((3, 3, 2, 4)) * 0.5, dtype),
            "bias": jnp.asarray(rng.standard_normal(4) * 0.1, dtype),
        },
        "dense": {
            "kernel": jnp.asarray(dense, dtype),
            "bias": jnp.asarray(rng.standard_normal(8) * 0.1, dtype),
        },
    }


def signature(tree):
    return jax.tree.structure(tree), [
        (jnp.shape(x), jnp.result_type(x)) for x in jax.tree.leaves(tree)
    ]


_BUILT: dict[str, tuple[pc.Compressor, Callable]] = {}


def built(name: str) -> tuple[pc.Compressor, Callable]:
    """One compressor and one jitted ``apply`` per method, shared by the tests (compile once)."""
    if name not in _BUILT:
        c = METHODS[name]()
        _BUILT[name] = (c, jax.jit(c.apply))
    return _BUILT[name]


@pytest.fixture(params=list(METHODS), ids=list(METHODS))
def name(request) -> str:
    return request.param


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_jit_once_tree_dtypes_and_state_shapes_kept(name: str, dtype) -> None:
    method, _ = built(name)
    params = make_params(dtype)
    state = method.init(params)
    traces = []

    def apply(p, s):
        traces.append(1)
        return method.apply(p, s)

    jitted = jax.jit(apply)
    out, new_state = jitted(params, state)
    _, third = jitted(jax.tree.map(lambda x: x * 0.5, params), new_state)
    assert len(traces) == 1, "the second call recompiled"
    assert signature(out) == signature(params)
    assert signature(new_state) == signature(state) == signature(third)


def test_decode_encode_is_exact(name: str) -> None:
    method, apply = built(name)
    params = make_params(np.float32)
    state = method.init(params)
    projected, _ = apply(params, state)
    decoded = method.decode(method.encode(params, state))
    assert method.tolerance == 0.0
    assert jax.tree.structure(decoded) == jax.tree.structure(params)
    for got, want in zip(jax.tree.leaves(decoded), jax.tree.leaves(projected), strict=True):
        assert np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(got, want)


def test_projection_is_idempotent(name: str) -> None:
    method, apply = built(name)
    params = make_params(np.float32)
    state = method.init(params)
    once, state = apply(params, state)
    twice, _ = apply(once, state)
    for a, b in zip(jax.tree.leaves(once), jax.tree.leaves(twice), strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradient_flows_through_projection(name: str) -> None:
    method, _ = built(name)
    params = make_params(np.float32)
    state = method.init(params)
    weights = jax.tree.map(
        lambda p: jnp.arange(p.size, dtype=p.dtype).reshape(p.shape) / p.size, params
    )

    def loss(p):
        out, _ = method.apply(p, state)
        pairs = zip(jax.tree.leaves(out), jax.tree.leaves(weights), strict=True)
        return sum(jnp.sum(o * w) for o, w in pairs)

    grads = jax.jit(jax.grad(loss))(params)
    assert signature(grads) == signature(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    np.testing.assert_array_equal(
        grads["conv"]["bias"], weights["conv"]["bias"]
    )  # biases untouched
