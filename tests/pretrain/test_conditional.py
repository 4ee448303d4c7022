"""The conditional LeNet-5: hard routing equals the soft mixture when one branch has all the weight."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pretrain.models import build_model
from pretrain.train import cross_entropy
from pretrain.tree import (
    RoutedClassification,
    class_groups,
    lenet5_trunk_features,
    routed_loss,
    temperature,
)


def small(branches: int = 3):
    model = build_model(
        "lenet5_tree", branches=branches, trunk_features=4, branch_features=4, branch_hidden=8
    )
    x = jax.random.uniform(jax.random.key(1), (5, 28, 28, 1))
    return model, model.init(jax.random.key(0), x), x


def with_router(variables, bias: np.ndarray):
    """The router's kernel zeroed and its bias set: every example routes the same way."""
    params = dict(variables["params"])
    params["router"] = {
        "kernel": jnp.zeros_like(params["router"]["kernel"]),
        "bias": jnp.asarray(bias, jnp.float32),
    }
    return {"params": params}


@pytest.mark.parametrize("taken", [0, 2])
def test_hard_path_equals_soft_path_with_all_weight_on_one_branch(taken: int) -> None:
    model, variables, x = small()
    bias = np.full(3, -30.0)
    bias[taken] = 30.0
    labels = jnp.arange(5) % 10

    @jax.jit  # one compilation instead of every op's (the test's time)
    def paths(v):
        logits, route = model.apply(v, x, method="soft")
        weights = jax.nn.softmax(route, axis=-1)  # one-hot up to exp(-60)
        soft = jnp.einsum("nb,bnc->nc", weights, logits)
        features, _ = model.apply(v, x, method="trunk")
        alone = model.apply(v, features, taken, method="branch")
        loss, _ = routed_loss(logits, route, labels, jnp.float32(1.0), balance=0.0)
        return model.apply(v, x), soft, alone, loss

    hard, soft, alone, loss = paths(with_router(variables, bias))
    np.testing.assert_allclose(hard, soft, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hard, alone, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loss, cross_entropy(hard, labels).mean(), rtol=1e-5)


def test_balance_term_is_one_when_spread_evenly_and_b_when_collapsed() -> None:
    logits = jnp.zeros((2, 4, 10))
    labels = jnp.zeros(4, jnp.int32)
    base = float(cross_entropy(logits[0], labels).mean())
    even = jnp.asarray([[9.0, -9.0], [-9.0, 9.0]] * 2)
    loss, _ = routed_loss(logits, even, labels, jnp.float32(1.0), balance=1.0)
    assert float(loss) == pytest.approx(base + 1.0, abs=1e-6)
    collapsed = jnp.asarray([[30.0, -30.0]] * 4)
    loss, _ = routed_loss(logits, collapsed, labels, jnp.float32(1.0), balance=1.0)
    assert float(loss) == pytest.approx(base + 2.0, abs=1e-6)


def test_temperature_falls_geometrically_then_stays() -> None:
    assert float(temperature(0, 1.0, 0.01, 100)) == pytest.approx(1.0)
    assert float(temperature(50, 1.0, 0.01, 100)) == pytest.approx(0.1, rel=1e-5)
    assert float(temperature(500, 1.0, 0.01, 100)) == pytest.approx(0.01, rel=1e-5)


def test_grouped_router_learns_only_from_the_groups() -> None:
    """With groups, the router's gradient is the group cross-entropy's: the mixture's weights are
    constants to it, the overlap mixes uniform weight into them."""
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(2, 6, 4)), jnp.float32)
    route = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
    labels = jnp.asarray([0, 1, 2, 3, 0, 2])
    groups = jnp.asarray([0, 0, 1, 1])

    def loss(r):
        value, _ = routed_loss(
            logits, r, labels, jnp.float32(0.5), 0.0, groups=groups, route_weight=2.0, overlap=0.3
        )
        return value

    @jax.jit  # one compilation instead of every op's (the test's time)
    def both(r):
        want = jax.grad(lambda r: 2.0 * cross_entropy(r, groups[labels]).mean())(r)
        _, weights = routed_loss(
            logits, r, labels, jnp.float32(0.5), 0.0, groups=groups, overlap=0.3
        )
        return jax.grad(loss)(r), want, weights

    got, want, weights = both(route)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    soft = jax.nn.softmax(route / 0.5, axis=-1)
    np.testing.assert_allclose(weights, 0.7 * soft + 0.15, rtol=1e-6)


def quadrant_images(per_class: int) -> tuple[jax.Array, jax.Array]:
    """4 classes, a bright 7x7 square in quadrant c (plus noise); classes 0, 1 are the top half."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), per_class)
    images = rng.uniform(0.0, 0.2, size=(len(labels), 28, 28, 1)).astype(np.float32)
    for i, c in enumerate(labels):
        top, left = 14 * (c // 2) + 3, 14 * (c % 2) + 3
        images[i, top : top + 7, left : left + 7] = 1.0
    return jnp.asarray(images), jnp.asarray(labels)


def test_group_supervised_router_sends_each_group_to_its_own_branch() -> None:
    """Trained on the task's loss with groups {0, 1} -> 0 and {2, 3} -> 1 (the constructed case:
    the groups are the top and bottom halves), the router sends every image to its group's
    branch; without the groups' term nothing makes it do so."""
    task = RoutedClassification(groups=(0, 0, 1, 1), balance=0.0, overlap=0.2, anneal_steps=40)
    model = build_model(
        "lenet5_tree", branches=2, trunk_features=4, branch_features=4, branch_hidden=8
    )
    images, labels = quadrant_images(8)
    params = jax.jit(model.init)(jax.random.key(0), images[:1])["params"]
    tx = optax.adam(0.01)
    state = tx.init(params)

    @jax.jit
    def step(params, state, i):
        grads = jax.grad(lambda p: task.loss(model.apply, p, images, labels, i)[0])(params)
        updates, state = tx.update(grads, state)
        return optax.apply_updates(params, updates), state

    for i in range(20):  # right from step 5 on, margin 19 logits at 20 (25% right without groups)
        params, state = step(params, state, i)
    _, route = jax.jit(lambda p: model.apply({"params": p}, images, method="trunk"))(params)
    np.testing.assert_array_equal(np.argmax(route, -1), np.asarray(labels) // 2)


def test_class_groups_split_the_class_means_with_the_least_scatter() -> None:
    """Classes 0-2 lie near one point, 3-5 near another: those are the groups, numbered from
    class 0; a share floor that one group cannot meet moves a class across."""
    rng = np.random.default_rng(0)
    centre = {c: np.zeros(8) if c < 3 else np.full(8, 5.0) for c in range(6)}
    labels = np.repeat(np.arange(6), 20)
    features = np.stack([centre[c] + rng.normal(0, 0.1, 8) + 0.3 * c for c in labels])
    assert class_groups(features, labels, 2, min_share=0.2) == (0, 0, 0, 1, 1, 1)
    uneven = np.concatenate([labels, np.full(100, 0)])
    feats = np.concatenate([features, np.zeros((100, 8))])
    groups = class_groups(feats, uneven, 2, min_share=0.4)
    share = np.mean(np.asarray(groups)[uneven] == groups[0])
    assert 0.4 <= share <= 0.6
    with pytest.raises(ValueError, match="min_share"):
        class_groups(features, labels, 2, min_share=0.6)


def test_lenet5_trunk_features_are_the_conditional_trunks() -> None:
    """The features the groups are fitted on are what the tree's trunk computes from conv1."""
    model, variables, x = small(branches=2)
    features, _ = model.apply(variables, x, method="trunk")
    got = lenet5_trunk_features(variables["params"]["conv1"], np.asarray(x), batch=2)
    np.testing.assert_allclose(got, features, rtol=1e-6, atol=1e-6)
