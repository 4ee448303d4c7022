"""The conditional LeNet-5: hard routing equals the soft mixture when one branch has all the weight."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain.models import build_model
from pretrain.train import cross_entropy
from pretrain.tree import routed_loss, temperature


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
