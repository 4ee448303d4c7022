"""OBD's curvature: the Gauss-Newton diagonal against ``jax.hessian`` on tiny networks."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import pretrain.compression as pc


class _Mlp(nn.Module):
    act: str = "relu"

    @nn.compact
    def __call__(self, x):
        act = nn.relu if self.act == "relu" else jnp.tanh
        return nn.Dense(3, name="fc2")(act(nn.Dense(5, name="fc1")(x)))


def _setup(act: str):
    model = _Mlp(act)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((12, 4)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, 12))
    params = model.init(jax.random.key(1), x)["params"]

    def apply(p, xs):
        return model.apply({"params": p}, xs)

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(apply(p, x), y).mean()

    return apply, loss, params, x


def _hessian_diag(loss, params) -> np.ndarray:
    flat, unravel = ravel_pytree(params)
    return np.diag(np.asarray(jax.jit(jax.hessian(lambda f: loss(unravel(f))))(flat)))


def test_exact_diagonal_matches_jax_hessian() -> None:
    _, loss, params, _ = _setup("tanh")
    mine = ravel_pytree(pc.hessian_diagonal(loss, params, chunk=16))[0]
    np.testing.assert_allclose(mine, _hessian_diag(loss, params), rtol=5e-5, atol=1e-6)


def test_gauss_newton_diagonal_is_the_hessian_diagonal_of_a_relu_net() -> None:
    """A ReLU net is linear in each single weight, so the Hessian's diagonal is Gauss-Newton's."""
    apply, loss, params, x = _setup("relu")
    ggn = ravel_pytree(pc.gauss_newton_diagonal(apply, params, np.asarray(x), chunk=5))[0]
    np.testing.assert_allclose(ggn, _hessian_diag(loss, params), rtol=1e-5, atol=1e-7)


def test_gauss_newton_diagonal_matches_the_linearised_hessian() -> None:
    """For any net, it is the Hessian diagonal of the loss of the network linearised at ``params``."""
    apply, _, params, x = _setup("tanh")
    flat, unravel = ravel_pytree(params)
    logits0 = apply(params, x)
    p0 = jax.nn.softmax(logits0)

    def linearised(f):
        out = logits0 + jax.jvp(lambda g: apply(unravel(g), x), (flat,), (f - flat,))[1]
        return -(p0 * jax.nn.log_softmax(out)).sum(-1).mean()  # any labels: same curvature

    want = np.diag(np.asarray(jax.jit(jax.hessian(linearised))(flat)))
    ggn = ravel_pytree(pc.gauss_newton_diagonal(apply, params, np.asarray(x), chunk=8))[0]
    np.testing.assert_allclose(ggn, want, rtol=1e-5, atol=1e-7)
    assert np.all(np.asarray(ggn) >= 0)


def test_obd_deletes_the_lowest_saliency() -> None:
    apply, _, params, x = _setup("relu")
    curvature = pc.gauss_newton_diagonal(apply, params, np.asarray(x))
    sal = pc.obd_saliency(params, curvature)
    for k, w in pc.named_leaves(params).items():
        np.testing.assert_allclose(
            sal[k], 0.5 * np.asarray(pc.named_leaves(curvature)[k]) * np.asarray(w) ** 2, rtol=1e-6
        )
    prune = pc.obd_pruning(0.5, lambda p: curvature)
    state = prune.init(params)
    kept = np.concatenate([np.ravel(sal[k])[np.ravel(m)] for k, m in state.masks.items()])
    gone = np.concatenate([np.ravel(sal[k])[~np.ravel(m)] for k, m in state.masks.items()])
    assert gone.size == round(0.5 * (kept.size + gone.size))
    assert gone.max() <= kept.min()


def test_curvature_needs_examples() -> None:
    apply, _, params, _ = _setup("relu")
    with pytest.raises(ValueError, match="at least one"):
        pc.gauss_newton_diagonal(apply, params, np.zeros((0, 4), np.float32))
