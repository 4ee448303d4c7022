"""The LeNets: parameter counts of the paper, shapes, the configurable initialisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain.models import build_model, count_params, model_names


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
