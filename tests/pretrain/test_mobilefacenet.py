"""MobileFaceNet: unit-norm embeddings, the two implementations agree, folding, the export cut."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain.models import MobileFaceNet, build_model
from pretrain.models.mobilefacenet import fold_mobilefacenet

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
    params = model.init(jax.random.key(0), x[:1])["params"]
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
    params = model.init(jax.random.key(0), x[:1])["params"]
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
    np.testing.assert_allclose(
        fast.apply({"params": params}, x), native.apply({"params": params}, x), atol=1e-5
    )
    ga = jax.grad(lambda p: jnp.sum(fast.apply({"params": p}, x)[:, 0]))(params)
    gb = jax.grad(lambda p: jnp.sum(native.apply({"params": p}, x)[:, 0]))(params)
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


def test_front_then_last_is_the_whole_network() -> None:
    model = build_model("mobilefacenet", **TINY)
    x = _images()
    params = _params(model, x)
    front = build_model("mobilefacenet", **TINY, part="front")
    last = build_model("mobilefacenet", **TINY, part="last")
    features = front.apply({"params": params}, x)
    assert features.shape == (3, 4, 3, 16)
    last_params = last.init(jax.random.key(1), features[:1])["params"]
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
