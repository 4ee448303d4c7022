"""The official recipe over a native Keras rebuild of the backbone: same function, converts, trains."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from export.baselines import OfficialModel, build_official_keras, keras_embednet
from pretrain import build_model

SHAPE = (24, 20, 1)
OPTIONS = {
    "stem_width": 8,
    "widths": (8, 16, 16),
    "strides": (2, 1, 2),
    "embedding_dim": 16,
    "feature_norm": True,
}


def _flax(seed: int = 0) -> tuple[Any, Any]:
    module = build_model("embednet", **OPTIONS, impl="native")
    params = module.init(jax.random.key(seed), jnp.zeros((1, *SHAPE)))["params"]
    # non-zero biases, so a bias copied to the wrong layer shows
    params = jax.tree.map(
        lambda p: p + 0.05 * jax.random.normal(jax.random.key(7), p.shape), params
    )
    return module, params


@pytest.fixture(scope="module")
def rebuilt() -> dict[str, Any]:
    module, params = _flax()
    x = np.random.default_rng(0).standard_normal((6, *SHAPE)).astype(np.float32)
    return {
        "model": keras_embednet(OPTIONS, params, SHAPE),
        "flax": module,
        "params": params,
        "x": x,
    }


def test_keras_forward_equals_the_flax_forward(rebuilt) -> None:
    want = np.asarray(rebuilt["flax"].apply({"params": rebuilt["params"]}, rebuilt["x"]))
    got = np.asarray(rebuilt["model"](rebuilt["x"], training=False))
    # float32 kernels in another order of summation: a few ulps of unit-norm outputs
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-6)
    assert not np.allclose(
        got, np.asarray(_flax(1)[0].apply({"params": _flax(1)[1]}, rebuilt["x"]))
    )


def test_the_guide_recipe_over_keras_converts_and_trains(rebuilt) -> None:
    blob = build_official_keras(rebuilt["model"], 3, learning_rate=4.0)
    model = OfficialModel(blob)
    assert set(model.interpreter.get_signature_list()) == {
        "load",
        "train",
        "infer",
        "save",
        "restore",
    }
    x = rebuilt["x"]
    want = np.asarray(rebuilt["flax"].apply({"params": rebuilt["params"]}, x))
    np.testing.assert_allclose(model.load(x), want, rtol=1e-4, atol=1e-5)
    labels = np.arange(len(x)) % 3
    losses = model.train(model.load(x), labels, epochs=80, batch=6)
    assert losses[-1] < 0.8 * losses[0], losses


def test_parameters_that_do_not_fit_the_options_are_refused() -> None:
    _, params = _flax()
    with pytest.raises(ValueError, match="options and parameters disagree"):
        keras_embednet({**OPTIONS, "embedding_dim": 8}, params, SHAPE)
    with pytest.raises(ValueError, match="fold standardisation"):
        keras_embednet({**OPTIONS, "standardize": True}, params, SHAPE)
    with pytest.raises(ValueError, match="embed_norm"):  # it would be silently dropped
        keras_embednet({**OPTIONS, "embed_norm": True}, params, SHAPE)
    assert keras_embednet({**OPTIONS, "embed_norm": False}, params, SHAPE) is not None  # folded
