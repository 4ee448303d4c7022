"""EmbedNet: unit-norm embeddings, the two implementations agree, folding, front/tail split."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain.models import build_model, count_params
from pretrain.models.embednet import StemConv, fold_standardization

TINY = {"stem_width": 8, "widths": (16, 24, 32), "strides": (2, 1, 2), "embedding_dim": 16}


def _images(n: int = 4, size: int = 32, seed: int = 0) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((n, size, size, 1)), jnp.float32)


def _init(model: nn.Module, x: jax.Array) -> dict:
    """Jitted: an eager init compiles each op of the random initialisers on its own (3x slower)."""
    return jax.jit(model.init)(jax.random.key(0), x[:1])["params"]


@pytest.mark.parametrize(
    ("options", "size"), [({}, 32), ({"standardize": True, "feature_norm": True}, 64)]
)
def test_embeddings_are_unit_norm(options: dict, size: int) -> None:
    model = build_model("embednet", **TINY, **options)
    x = _images(size=size)
    out = model.apply({"params": _init(model, x)}, x)
    assert out.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("options", [{}, {"standardize": True, "feature_norm": True}])
def test_fast_and_native_agree(options: dict) -> None:
    x = _images(n=2, size=20)  # odd spatial sizes appear after the strides
    fast = build_model("embednet", **TINY, **options, impl="fast")
    native = build_model("embednet", **TINY, **options, impl="native")
    params = _init(fast, x)
    # Jitted, as training and export run them (eagerly every op compiles on its own: 2x slower).
    a = jax.jit(fast.apply)({"params": params}, x)
    b = jax.jit(native.apply)({"params": params}, x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Gradients too: the fast implementation is what trains, the native one what is exported.
    ga = jax.jit(jax.grad(lambda p: jnp.sum(fast.apply({"params": p}, x)[:, 0])))(params)
    gb = jax.jit(jax.grad(lambda p: jnp.sum(native.apply({"params": p}, x)[:, 0])))(params)
    for u, v in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)


def test_default_parameter_groups_and_size() -> None:
    model = build_model("embednet")
    # Shapes only: an eager init compiles each of its ops on its own (16 s in the suite).
    x = jax.ShapeDtypeStruct((1, 64, 64, 1), jnp.float32)
    params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    # jax returns pytree dicts with sorted keys, so compare the names, not their order.
    assert set(params) == {"stem", *(f"block{i}" for i in range(1, 9)), "embed"}
    assert count_params(params) == 107_584
    assert set(params["block8"]) == {"depthwise", "pointwise"}


def test_stem_is_flax_conv() -> None:
    """The stem keeps the parameters and the function of Flax's ``Conv`` (older checkpoints)."""
    x = _images()
    conv = nn.Conv(8, (3, 3), strides=(2, 2), padding="SAME")
    params = conv.init(jax.random.key(0), x)["params"]
    np.testing.assert_allclose(
        StemConv(8).apply({"params": params}, x), conv.apply({"params": params}, x), atol=1e-6
    )


@pytest.mark.parametrize("embed_norm", [False, True])
def test_folding_keeps_the_function(embed_norm: bool) -> None:
    x = _images()
    model = build_model(
        "embednet", **TINY, standardize=True, feature_norm=True, embed_norm=embed_norm
    )
    params = _init(model, x)
    if embed_norm:  # running statistics moved off their start (mean 0, var 1)
        rng = np.random.default_rng(1)
        params = {
            **params,
            "embed_norm": {
                "mean": jnp.asarray(rng.normal(size=16), jnp.float32),
                "var": jnp.asarray(rng.uniform(0.2, 3.0, size=16), jnp.float32),
            },
        }
    plain, folded = fold_standardization(model.clone(impl="native"), params)
    assert not plain.standardize and not plain.embed_norm and "embed_norm" not in folded
    np.testing.assert_allclose(
        plain.apply({"params": folded}, x), model.apply({"params": params}, x), atol=1e-5
    )


def test_embed_norm_centres_the_gradient() -> None:
    """A loss pulling every embedding the same way moves none of ``embed``'s inputs."""
    x = _images(n=8)
    model = build_model("embednet", **TINY, feature_norm=True, embed_norm=True, normalize=False)
    params = _init(model, x)
    assert set(params["embed_norm"]) == {"mean", "var"}
    common = jnp.asarray(np.random.default_rng(2).normal(size=16), jnp.float32)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(model.apply({"params": p}, x) @ common)))(params)
    np.testing.assert_allclose(grads["embed"]["kernel"], 0.0, atol=1e-5)
    np.testing.assert_allclose(grads["block3"]["pointwise"]["kernel"], 0.0, atol=1e-5)


def test_front_and_tail_compose_to_the_whole() -> None:
    x = _images()
    model = build_model("embednet", **TINY, feature_norm=True)
    params = _init(model, x)
    front = model.clone(stop_after=2)
    tail = model.clone(start_block=3)
    maps = front.apply({"params": {k: params[k] for k in ("stem", "block1", "block2")}}, x)
    out = tail.apply({"params": {k: params[k] for k in ("block3", "embed")}}, maps)
    np.testing.assert_array_equal(out, model.apply({"params": params}, x))
    with pytest.raises(ValueError, match="stop_after comes before start_block"):
        model.clone(start_block=3, stop_after=2).init(jax.random.key(0), maps)


def test_flip_average_is_the_mean_of_both_views() -> None:
    x = _images()
    model = build_model("embednet", **TINY, feature_norm=True)
    params = _init(model, x)
    flipped = model.clone(flip_average=True)
    # The same parameters: flip averaging adds none.
    assert jax.tree.structure(_init(flipped, x)) == jax.tree.structure(params)
    out = np.asarray(flipped.apply({"params": params}, x))
    a = np.asarray(model.apply({"params": params}, x), np.float64)
    b = np.asarray(model.apply({"params": params}, x[:, :, ::-1]), np.float64)
    want = (a + b) / np.linalg.norm(a + b, axis=-1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    # A mirrored image has the same embedding (up to float rounding of the sum's order).
    mirrored = np.asarray(flipped.apply({"params": params}, x[:, :, ::-1]))
    np.testing.assert_allclose(mirrored, out, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="flip_average / test_views need the whole network"):
        flipped.clone(part="last").init(jax.random.key(0), x)


def test_test_views_are_the_devices_views_in_jax() -> None:
    # the float model with test_views computes what the device computes from the numpy views
    from devices.views import TestViews, average_views, make_views

    x = _images()
    model = build_model("embednet", **TINY, feature_norm=True)
    params = _init(model, x)
    views = TestViews(mirror=True, shift_px=2, zoom=1.1)
    out = np.asarray(model.clone(test_views=views.to_dict()).apply({"params": params}, x))
    every = np.asarray(model.apply({"params": params}, make_views(np.asarray(x), views)))
    np.testing.assert_allclose(out, average_views(every, views.count), rtol=1e-5, atol=1e-6)
    flip = np.asarray(model.clone(flip_average=True).apply({"params": params}, x))
    assert np.max(np.abs(out - flip)) > 1e-3  # the shifts and the zoom count
    with pytest.raises(ValueError, match="test_views need the whole network"):
        model.clone(test_views=views.to_dict(), start_block=1).init(jax.random.key(0), x)


def test_gdc_pool_starts_as_the_mean_and_learns_where() -> None:
    """``pool="gdc"``: one weight per position and channel of the last map, starting at the
    mean (the same function as ``pool="mean"`` with the same other weights); changed weights
    change the embedding; the tail of a cut holds them; an unknown pool is refused."""
    x = _images(size=32)
    mean = build_model("embednet", **TINY, feature_norm=True)
    gdc = mean.clone(pool="gdc")
    params = _init(gdc, x)
    assert params["gdc"].shape == (4, 4, 32)
    plain = {k: v for k, v in params.items() if k != "gdc"}
    np.testing.assert_allclose(gdc.apply({"params": params}, x), mean.apply({"params": plain}, x),
                               atol=1e-6)  # fmt: skip
    bumped = {**params, "gdc": params["gdc"].at[0, 0].multiply(3.0)}
    assert not np.allclose(gdc.apply({"params": bumped}, x), gdc.apply({"params": params}, x))
    tail_params = _init(gdc.clone(start_block=3), gdc.clone(stop_after=2).apply(
        {"params": {k: params[k] for k in ("stem", "block1", "block2")}}, x))  # fmt: skip
    assert set(tail_params) == {"block3", "gdc", "embed"}
    with pytest.raises(ValueError, match="pool must be"):
        _init(mean.clone(pool="max"), x)
