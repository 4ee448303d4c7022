"""The LeNets: parameter counts of the paper, shapes, the configurable initialisation, and
LeNet-5's fast pooling and convolution backward passes against JAX's own."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from pretrain.models import build_model, count_params, model_names
from pretrain.models.lenet import max_pool_2x2, valid_conv


@pytest.mark.parametrize(
    ("name", "expected", "layers"),
    [
        ("lenet300", 266_610, ["fc1", "fc2", "fc3"]),
        ("lenet5", 431_080, ["conv1", "conv2", "fc1", "fc2"]),
    ],
)
def test_parameter_counts_and_layers(name: str, expected: int, layers: list[str]) -> None:
    model = build_model(name)
    params = model.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)))["params"]
    assert count_params(params) == expected
    assert list(params) == layers
    assert model.apply({"params": params}, jnp.zeros((5, 28, 28, 1))).shape == (5, 10)


def test_initialisation_follows_per_layer_std_and_bias() -> None:
    model = build_model("lenet300", init_std=(0.01, 0.2, 0.5), bias_init=(0.0, 1.0, 0.0))
    params = model.init(jax.random.key(1), jnp.zeros((1, 784)))["params"]
    for layer, std in (("fc1", 0.01), ("fc2", 0.2), ("fc3", 0.5)):
        kernel = np.asarray(params[layer]["kernel"])
        assert abs(kernel.mean()) < 0.1 * std
        assert kernel.std() == pytest.approx(std, rel=0.12)
    np.testing.assert_array_equal(params["fc2"]["bias"], 1.0)
    np.testing.assert_array_equal(params["fc1"]["bias"], 0.0)


def test_wrong_number_of_per_layer_values() -> None:
    model = build_model("lenet5", init_std=(0.1, 0.1))
    with pytest.raises(ValueError, match="init_std needs one value per layer"):
        model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))


def test_unknown_model_and_option() -> None:
    assert {"lenet300", "lenet5"} <= set(model_names())
    with pytest.raises(ValueError, match="Did you mean 'lenet5'"):
        build_model("lenet-5")
    with pytest.raises(ValueError, match=r"no option\(s\) dropout; valid: hidden"):
        build_model("lenet300", dropout=0.5)


@pytest.mark.parametrize("shape", [(3, 8, 8, 4), (2, 7, 9, 3)])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_2x2_is_nn_max_pool_with_its_gradients(shape: tuple, ties: bool) -> None:
    rng = np.random.default_rng(0)
    # Ties: small integers, so most windows hold their maximum twice or more.
    x = rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)
    x = jnp.asarray(x, jnp.float32)
    g = jnp.asarray(rng.standard_normal((shape[0], shape[1] // 2, shape[2] // 2, shape[3])))
    want, want_vjp = jax.vjp(lambda v: nn.max_pool(v, (2, 2), strides=(2, 2)), x)
    got, got_vjp = jax.jit(lambda v: jax.vjp(max_pool_2x2, v))(x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(max_pool_2x2(x), want)  # undifferentiated: reduce_window
    np.testing.assert_array_equal(got_vjp(g)[0], want_vjp(g)[0])


def _lax_conv(x: jax.Array, k: jax.Array, strides=(1, 1), padding="VALID") -> jax.Array:
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
    return lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=dn)


def _within_rounding(got: jax.Array, want: jax.Array, magnitude: jax.Array, terms: int) -> None:
    """Each value sums ``terms`` products in another order than lax's: both are within
    ``terms * eps`` of the sum of the products' magnitudes (``magnitude``), so they differ by at
    most twice that on any x86 CPU."""
    bound = 2 * terms * np.finfo(np.float32).eps * np.asarray(magnitude)
    assert np.all(np.abs(np.asarray(got) - np.asarray(want)) <= bound)
    assert float(np.abs(want).max()) > 100 * float(bound.max())  # the bound is meaningful


# conv2 of LeNet-5 (lax's forward and kernel gradient) and a conv1-like single-channel input
# (patch depth 25 <= IM2COL_MAX_DEPTH: im2col forward and kernel gradient).
@pytest.mark.parametrize(
    ("x_shape", "k_shape"), [((4, 12, 12, 20), (5, 5, 20, 50)), ((4, 12, 12, 1), (5, 5, 1, 20))]
)
def test_valid_conv_values_and_gradients_are_lax_s(x_shape: tuple, k_shape: tuple) -> None:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
    k = jnp.asarray(0.1 * rng.standard_normal(k_shape), jnp.float32)
    g_shape = (x_shape[0], x_shape[1] - k_shape[0] + 1, x_shape[2] - k_shape[1] + 1, k_shape[3])
    g = jnp.asarray(rng.standard_normal(g_shape), jnp.float32)
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
    want, want_vjp = jax.vjp(_lax_conv, x, k)
    got, got_vjp = jax.jit(
        lambda a, b: jax.vjp(
            lambda u, v: valid_conv(u, v, (1, 1), "VALID", dimension_numbers=dn), a, b
        )
    )(x, k)
    (dx_want, dk_want), (dx_got, dk_got) = want_vjp(g), got_vjp(g)
    np.testing.assert_array_equal(valid_conv(x, k, (1, 1), "VALID", dimension_numbers=dn), want)
    kh, kw, c, _ = k_shape
    (ax, ak), ag = (jnp.abs(x), jnp.abs(k)), jnp.abs(g)
    abs_out, abs_vjp = jax.vjp(_lax_conv, ax, ak)
    dx_magnitude, dk_magnitude = abs_vjp(ag)
    _within_rounding(got, want, abs_out, kh * kw * c)
    _within_rounding(dx_got, dx_want, dx_magnitude, kh * kw * k_shape[3])
    _within_rounding(dk_got, dk_want, dk_magnitude, int(np.prod(g_shape[:3])))


@pytest.mark.parametrize(("strides", "padding"), [((2, 2), "VALID"), ((1, 1), "SAME")])
def test_valid_conv_leaves_other_convolutions_to_lax(strides, padding) -> None:
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((2, 9, 9, 3)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32)
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
    f = lambda u, v: valid_conv(u, v, strides, padding, dimension_numbers=dn)  # noqa: E731
    g = lambda u, v: _lax_conv(u, v, strides, padding)  # noqa: E731
    np.testing.assert_array_equal(f(x, k), g(x, k))
    got = jax.grad(lambda u, v: f(u, v).sum(), (0, 1))(x, k)
    want = jax.grad(lambda u, v: g(u, v).sum(), (0, 1))(x, k)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_saved_lenet5_evaluates_to_its_recorded_test_error(mnist_dir) -> None:
    """The shipped model (notebooks/results/models/lenet5) against the bench's figure."""
    from pathlib import Path

    import pretrain
    from pretrain.train import Trainer, load_splits

    root = Path(__file__).resolve().parents[2] / "notebooks" / "results"
    saved = pretrain.load_model(root / "models" / "lenet5")
    recorded = json.loads((root / "pretrain_mnist.json").read_text())["lenet5"]["test_error_pct"]
    config = pretrain.make_config({**saved.info["info"]["config"], "val_size": 0})
    splits = load_splits(config)
    trainer = Trainer(config, splits.test.images)
    stats = trainer.evaluate(trainer.replicate(saved.params), splits.test)
    assert stats.examples == 10_000
    assert round(100 * stats.error, 2) == recorded
