"""MobileFaceNet: unit-norm embeddings, the two implementations agree, folding, the export cut."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain.models import MobileFaceNet, build_model
from pretrain.models.mobilefacenet import RunningStandardize, fold_mobilefacenet

# Two stages: a strided one that changes width, then residual blocks (repeats 2 -> 1 residual).
TINY = {
    "stem_width": 8,
    "widths": (8, 16),
    "expansions": (2, 2),
    "repeats": (2, 2),
    "strides": (2, 2),
    "tail_width": 32,
    "embedding_dim": 16,
}


def _images(n: int = 3, shape: tuple[int, int] = (28, 24), seed: int = 0) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((n, *shape, 1)), jnp.float32)


def _params(model: MobileFaceNet, x: jax.Array, gain: float = 0.5) -> dict:
    """Initial parameters with the residual gains moved off zero (else residuals are idle)."""
    params = jax.jit(model.init)(jax.random.key(0), x[:1])["params"]
    return jax.tree_util.tree_map_with_path(
        lambda path, v: v + gain if path[-1].key == "gain" else v, params
    )


def test_registered_with_residual_gains_and_unit_norm_embeddings() -> None:
    model = build_model("mobilefacenet", **TINY)
    assert isinstance(model, MobileFaceNet)
    x = _images()
    params = _params(model, x)
    # block1 strides and widens (no residual), block2 keeps the shape (residual, a gain).
    assert "gain" not in params["block1"] and params["block2"]["gain"].shape == ()
    blocks = {f"block{i}" for i in range(1, 5)}
    assert set(params) == {"stem", "stem_dw", *blocks, "tail", "gdc", "embed"}
    # The GDC covers the whole final map: 28x24 -> stem 14x12 -> 7x6 -> 4x3.
    assert params["gdc"]["kernel"].shape == (4, 3, 1, 32)
    out = model.apply({"params": params}, x)
    assert out.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-6)


def test_residual_branches_start_as_the_identity() -> None:
    model = build_model("mobilefacenet", **TINY, part="front")
    x = _images()
    params = jax.jit(model.init)(jax.random.key(0), x[:1])["params"]
    before = model.apply({"params": params}, x)
    changed = jax.tree.map(lambda v: v, params)
    changed["block4"]["project"]["kernel"] = params["block4"]["project"]["kernel"] + 1.0
    # gain 0: block4's branch (the last residual) does not reach the output yet
    np.testing.assert_array_equal(model.apply({"params": changed}, x), before)


@pytest.mark.parametrize("options", [{}, {"standardize": False, "feature_norm": False}])
def test_fast_and_native_agree(options: dict) -> None:
    x = _images(n=2, shape=(27, 21))  # odd sizes after the strides
    fast = build_model("mobilefacenet", **TINY, **options, impl="fast")
    native = build_model("mobilefacenet", **TINY, **options, impl="native")
    params = _params(fast, x)
    # Jitted, as training and export run them (eagerly every op compiles on its own: 2x slower).
    a = jax.jit(fast.apply)({"params": params}, x)
    np.testing.assert_allclose(a, jax.jit(native.apply)({"params": params}, x), atol=1e-5)
    ga = jax.jit(jax.grad(lambda p: jnp.sum(fast.apply({"params": p}, x)[:, 0])))(params)
    gb = jax.jit(jax.grad(lambda p: jnp.sum(native.apply({"params": p}, x)[:, 0])))(params)
    for u, v in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


def test_folding_gives_the_same_function_as_plain_convolutions() -> None:
    model = build_model("mobilefacenet", **TINY)
    x = _images()
    params = _params(model, x)
    folded_model, folded = fold_mobilefacenet(model, params)
    assert not folded_model.standardize and not folded_model.skip_init
    assert "gain" not in folded["block2"]
    np.testing.assert_allclose(
        folded_model.apply({"params": folded}, x), model.apply({"params": params}, x), atol=1e-5
    )
    # Folding a plain network changes nothing.
    again_model, again = fold_mobilefacenet(folded_model, folded)
    assert again_model is folded_model and again is folded


def _with_stats(params: dict, seed: int = 1) -> dict:
    """``params`` with the GDC's running statistics moved off their start (mean 0, var 1)."""
    rng = np.random.default_rng(seed)
    stats = params["gdc_norm"]
    return {
        **params,
        "gdc_norm": {
            "mean": jnp.asarray(rng.normal(size=stats["mean"].shape), jnp.float32),
            "var": jnp.asarray(rng.uniform(0.2, 3.0, size=stats["var"].shape), jnp.float32),
        },
    }


def test_running_standardize_tracks_batch_statistics_and_ignores_the_loss() -> None:
    layer = RunningStandardize(rate=0.5)
    x = jnp.asarray(np.random.default_rng(0).normal(3.0, 2.0, size=(64, 5)), jnp.float32)
    params = layer.init(jax.random.key(0), x)["params"]
    out = layer.apply({"params": params}, x)
    np.testing.assert_allclose(out, x, rtol=1e-6)  # mean 0, var 1: the identity at first
    # One image is scored alone as it was in its batch (running statistics, not the batch's).
    np.testing.assert_allclose(layer.apply({"params": params}, x[:1]), out[:1], rtol=1e-6)

    def loss(p: dict, w: jax.Array) -> jax.Array:
        return jnp.sum(layer.apply({"params": p}, x) * w)

    w = jnp.ones_like(x)
    grads = jax.grad(loss)(params, w)
    # The gradient is rate * (statistic - batch statistic), whatever the loss weights w.
    np.testing.assert_allclose(grads["mean"], 0.5 * (0.0 - np.mean(x, 0)), rtol=1e-5)
    np.testing.assert_allclose(grads["var"], 0.5 * (1.0 - np.var(x, 0)), rtol=1e-4)
    other = jax.grad(loss)(params, -3.0 * w)
    np.testing.assert_allclose(other["mean"], grads["mean"], rtol=1e-6)
    # Plain SGD with rate 0.5 and step 1 halves the distance to the batch statistics.
    stepped = jax.tree.map(lambda p, g: p - g, params, grads)
    np.testing.assert_allclose(stepped["mean"], 0.5 * np.mean(x, 0), rtol=1e-5)
    np.testing.assert_allclose(stepped["var"], 0.5 * (1.0 + np.var(x, 0)), rtol=1e-4)
    # The input's gradient is the loss's, centred over the batch (batch normalisation's), then
    # scaled: a loss moving every row the same way moves none.
    scale = 1 / np.sqrt(np.asarray(stepped["var"]))
    gx = jax.grad(lambda v: jnp.sum(layer.apply({"params": stepped}, v) * w))(x)
    np.testing.assert_allclose(gx, 0.0, atol=1e-6)
    wr = jnp.asarray(np.random.default_rng(1).normal(size=x.shape), jnp.float32)
    gx = jax.grad(lambda v: jnp.sum(layer.apply({"params": stepped}, v) * wr))(x)
    want = (np.asarray(wr) - np.mean(np.asarray(wr), 0)) * scale
    np.testing.assert_allclose(gx, want, rtol=1e-4, atol=1e-6)


def test_gdc_norm_folds_into_the_gdc() -> None:
    model = build_model("mobilefacenet", **TINY, gdc_norm=True)
    x = _images()
    params = _with_stats(_params(model, x))
    assert set(params["gdc_norm"]) == {"mean", "var"}
    plain = build_model("mobilefacenet", **TINY)
    assert not np.allclose(
        model.apply({"params": params}, x),
        plain.apply({"params": {k: v for k, v in params.items() if k != "gdc_norm"}}, x),
        atol=1e-3,
    )
    folded_model, folded = fold_mobilefacenet(model, params)
    assert not folded_model.gdc_norm and "gdc_norm" not in folded
    np.testing.assert_allclose(
        folded_model.apply({"params": folded}, x), model.apply({"params": params}, x), atol=1e-5
    )


def test_front_then_last_is_the_whole_network() -> None:
    model = build_model("mobilefacenet", **TINY)
    x = _images()
    params = _params(model, x)
    front = build_model("mobilefacenet", **TINY, part="front")
    last = build_model("mobilefacenet", **TINY, part="last")
    features = front.apply({"params": params}, x)
    assert features.shape == (3, 4, 3, 16)
    last_params = jax.jit(last.init)(jax.random.key(1), features[:1])["params"]
    assert set(last_params) == {"tail", "gdc", "embed"}
    np.testing.assert_allclose(
        last.apply({"params": {k: params[k] for k in last_params}}, features),
        model.apply({"params": params}, x),
        atol=1e-6,
    )


def test_bad_options_are_refused() -> None:
    x = _images(n=1)
    with pytest.raises(ValueError, match="one entry per stage"):
        build_model("mobilefacenet", **{**TINY, "repeats": (1,)}).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="part must be one of"):
        build_model("mobilefacenet", **TINY, part="middle").init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=">= 1 block"):
        build_model("mobilefacenet", **{**TINY, "repeats": (1, 0)}).init(jax.random.key(0), x)
