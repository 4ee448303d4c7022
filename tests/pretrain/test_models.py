"""The LeNets: parameter counts of the paper, shapes, the configurable initialisation, and
LeNet-5's fast pooling and convolution training passes against JAX's own."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from pretrain.models import build_model, count_params, model_names
from pretrain.models.lenet_ops import ValidConv, col2im, conv_bias, max_pool_2x2, patches


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


def _lax_conv(x: jax.Array, k: jax.Array) -> jax.Array:
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
    return lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=dn)


def _within_rounding(got: jax.Array, want: jax.Array, magnitude: jax.Array, terms: int) -> None:
    """Each value sums ``terms`` products in another order than lax's: both are within
    ``terms * eps`` of the sum of the products' magnitudes (``magnitude``), so they differ by at
    most twice that on any x86 CPU."""
    bound = 2 * terms * np.finfo(np.float32).eps * np.asarray(magnitude)
    assert np.all(np.abs(np.asarray(got) - np.asarray(want)) <= bound)
    assert float(np.abs(want).max()) > 100 * float(bound.max())  # the bound is meaningful


def _lax_conv_bias(x: jax.Array, k: jax.Array, b: jax.Array) -> jax.Array:
    return _lax_conv(x, k) + b


# conv2 of LeNet-5 (lax's forward and kernel gradient) and a conv1-like single-channel input
# (patch depth 25 <= IM2COL_MAX_DEPTH: im2col forward, kernel and bias gradients).
@pytest.mark.parametrize(
    ("x_shape", "k_shape"), [((4, 12, 12, 20), (5, 5, 20, 50)), ((4, 12, 12, 1), (5, 5, 1, 20))]
)
def test_conv_bias_values_and_gradients_are_lax_s(x_shape: tuple, k_shape: tuple) -> None:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
    k = jnp.asarray(0.1 * rng.standard_normal(k_shape), jnp.float32)
    b = jnp.asarray(rng.standard_normal(k_shape[3]), jnp.float32)
    g_shape = (x_shape[0], x_shape[1] - k_shape[0] + 1, x_shape[2] - k_shape[1] + 1, k_shape[3])
    g = jnp.asarray(rng.standard_normal(g_shape), jnp.float32)
    want, want_vjp = jax.vjp(_lax_conv_bias, x, k, b)
    got, got_vjp = jax.jit(lambda *a: jax.vjp(conv_bias, *a))(x, k, b)
    np.testing.assert_array_equal(conv_bias(x, k, b), want)  # undifferentiated: lax's
    kh, kw, c, _ = k_shape
    (ax, ak, ab), ag = (jnp.abs(x), jnp.abs(k), jnp.abs(b)), jnp.abs(g)
    abs_out, abs_vjp = jax.vjp(_lax_conv_bias, ax, ak, ab)
    magnitudes = abs_vjp(ag)
    positions = int(np.prod(g_shape[:3]))
    _within_rounding(got, want, abs_out, kh * kw * c + 1)
    terms = (kh * kw * k_shape[3], positions, positions)  # dx, dkernel, dbias
    for got_d, want_d, magnitude, n in zip(got_vjp(g), want_vjp(g), magnitudes, terms, strict=True):
        _within_rounding(got_d, want_d, magnitude, n)


def test_col2im_is_the_transpose_of_patches() -> None:
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((2, 9, 8, 3)), jnp.float32)
    cols = jnp.asarray(rng.standard_normal((2, 6, 4, 4 * 5 * 3)), jnp.float32)
    _, patches_vjp = jax.vjp(lambda v: patches(v, 4, 5), x)
    np.testing.assert_allclose(col2im(cols, 4, 5), patches_vjp(cols)[0], rtol=1e-6, atol=1e-6)


def test_valid_conv_is_nn_conv_with_its_parameters() -> None:
    x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 10, 10, 3)), jnp.float32)
    ours, flax_s = ValidConv(6, (3, 3), padding="VALID"), nn.Conv(6, (3, 3), padding="VALID")
    variables = ours.init(jax.random.key(4), x)
    same = jax.tree.map(np.array_equal, variables, flax_s.init(jax.random.key(4), x))
    assert all(jax.tree.leaves(same))
    np.testing.assert_array_equal(ours.apply(variables, x), flax_s.apply(variables, x))
    with pytest.raises(ValueError, match="stride-1 VALID 2-D convolutions with a bias"):
        ValidConv(6, (3, 3), padding="SAME").init(jax.random.key(4), x)


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
