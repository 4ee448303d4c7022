"""The EmbedNet training signatures built from TensorFlow ops: builtins only, no shape
arithmetic, and in the LiteRT interpreter the JAX steps' trajectory (loss and weights)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from devices.preprocess import FACE_SPEC
from export.artifact.convert import build_tflite, subgraph_ops, tensor_name
from export.artifact.head import HeadConfig, imprint
from export.artifact.scopes import infer_fn, initial_variables, refine_fn, train_fn, trained
from export.artifact.split import split_backbone
from export.artifact.tftrain import Steps, check_against_jax, native_steps, steps_builder

# A strided last block with feature standardisation: every branch of the written-out backward.
TINY = {
    "stem_width": 8,
    "widths": (16, 24, 32),
    "strides": (2, 1, 2),
    "embedding_dim": 16,
    "feature_norm": True,
}
SCOPES = ("head", "head_biases", "last_block")
CLASSES = 4
# What a symbolic-batch jax2tf step left behind: runtime shapes and broadcasts.
SHAPE_MATH = {"SHAPE", "BROADCAST_TO", "BROADCAST_ARGS", "CONCATENATION", "GATHER", "FILL"}
SIGNATURES = ("train", "train_head_biases", "train_last_block", "refine", "infer")


@pytest.fixture(scope="module")
def models(tmp_path_factory, save_embednet) -> dict:
    tmp = tmp_path_factory.mktemp("train_native")
    saved = save_embednet(tmp / "model", TINY, info={"preprocess": FACE_SPEC.to_dict()}, seed=2)
    backbone = split_backbone(saved)
    head = HeadConfig(backbone.embedding_dim, CLASSES)
    images = np.random.default_rng(0).normal(size=(16, 64, 64, 1)).astype(np.float32)
    labels = (np.arange(8) % 3).astype(np.int32)  # slot 3 stays empty
    embeddings = np.asarray(backbone.embed()(jnp.asarray(images[:8])))
    initial = initial_variables(backbone, imprint(embeddings, labels, CLASSES), SCOPES)
    blob = build_tflite(backbone, head, SCOPES, initial, int8=True, calibration=[images])
    return {
        "backbone": backbone,
        "head": head,
        "images": images[:8],
        "labels": labels,
        "initial": initial,
        "blob": blob,
    }


def _interpreter(
    models: dict, scope: str
) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """An interpreter holding exactly known float starting values (the artifact stores them
    int8), the head imprinted as on the device; inputs for the steps.

    The inputs are random, not the tiny untrained backbone's: that maps every image to nearly
    one embedding (pairwise cosine ~1), a problem so ill-conditioned that a 1-ulp change of the
    start moves JAX's own 50-step trajectory by 5e-6."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=models["blob"])
    rng = np.random.default_rng(1)
    shape = (len(models["labels"]), *models["backbone"].features_shape)
    features = rng.uniform(0.0, 3.0, size=shape).astype(np.float32)
    refined = it.get_signature_runner("refine")(features=features)["embeddings"]
    out = {"features": features, "embeddings": rng.normal(size=refined.shape).astype(np.float32)}
    start = {k: np.asarray(v) for k, v in models["initial"].items()}
    source = out["embeddings"] if scope == "head" else refined
    start["head/kernel"] = imprint(source, models["labels"], CLASSES)
    it.get_signature_runner("set_weights")(**{tensor_name(k): v for k, v in start.items()})
    return it, start, out


@pytest.mark.parametrize("signature", SIGNATURES)
def test_steps_have_no_shape_arithmetic(models, signature: str) -> None:
    ops = {op for op, _ in subgraph_ops(models["blob"], signature)}
    assert not ops & SHAPE_MATH, sorted(ops)


def test_lenets_keep_the_jax2tf_steps() -> None:
    assert steps_builder("embednet") is not None
    assert steps_builder("lenet300") is None


@pytest.mark.parametrize(
    ("scope", "steps", "lr"),
    [("head", 50, 0.1), ("head_biases", 20, 0.1), ("last_block", 20, 0.01)],
)
def test_train_follows_the_jax_step(
    models, steps_follow_jax, scope: str, steps: int, lr: float
) -> None:
    backbone, head = models["backbone"], models["head"]
    it, start, out = _interpreter(models, scope)
    data = "embeddings" if scope == "head" else "features"
    signature = "train" if scope == "head" else f"train_{scope}"
    step = jax.jit(train_fn(backbone, head, scope))
    values = {k: jnp.asarray(v) for k, v in start.items()}
    inputs = {data: out[data], "labels": models["labels"]}
    tensors = {name: tensor_name(name) for name in values}
    losses = steps_follow_jax(
        it,
        signature,
        step,
        values,
        tensors,
        inputs,
        steps=steps,
        lr=np.float32(lr),
        weight_decay=np.float32(1e-3),
    )
    assert losses[-1] < losses[0]
    got = it.get_signature_runner("get_weights")(unused=np.int32(0))
    moved = {n for n in values if not np.array_equal(got[tensor_name(n)], start[n])}
    assert moved == set(trained(backbone, scope))


def test_refine_and_infer_are_the_jax_functions(models) -> None:
    it, start, out = _interpreter(models, "last_block")
    features = out["features"]
    values = {k: jnp.asarray(v) for k, v in start.items()}
    refined = it.get_signature_runner("refine")(features=features)["embeddings"]
    np.testing.assert_allclose(refined, refine_fn(models["backbone"])(values, features), atol=1e-5)
    scores = it.get_signature_runner("infer")(embeddings=refined)["scores"]
    np.testing.assert_allclose(scores, infer_fn(models["head"])(values, refined), atol=1e-4)
    assert np.all(scores[:, -1] == 0)  # the empty slot scores 0


def test_a_step_out_of_step_with_jax_is_refused(models) -> None:
    backbone, head = models["backbone"], models["head"]
    steps = native_steps(backbone, head, SCOPES)
    assert steps is not None
    assert check_against_jax(backbone, head, SCOPES, steps) <= 1e-4
    train = steps.train["last_block"]

    def off(*args):
        new, loss = train(*args)
        return {**new, "head/kernel": new["head/kernel"] * 1.001}, loss

    with pytest.raises(ValueError, match="out of step"):
        check_against_jax(
            backbone,
            head,
            SCOPES,
            Steps({**steps.train, "last_block": off}, steps.infer, steps.refine),
        )


def test_a_folded_embed_norm_backbone_builds_natively(tmp_path, save_embednet) -> None:
    """The face backbone's options (weight standardisation and ``embed_norm``, folded by
    ``split_backbone`` and recorded as False) build the native steps and embed, both checked
    against JAX; an unfolded ``embed_norm`` is refused."""
    from export.artifact.tfnative import check_against_jax as check_embed
    from export.artifact.tfnative import native_embed

    options = {**TINY, "standardize": True, "embed_norm": True}
    saved = save_embednet(tmp_path / "m", options, info={"preprocess": FACE_SPEC.to_dict()})
    dim = saved.params["embed_norm"]["mean"].shape[-1]
    rng = np.random.default_rng(4)  # running statistics off their start: the fold does work
    stats = {
        "mean": jnp.asarray(rng.normal(size=dim), jnp.float32),
        "var": jnp.asarray(rng.uniform(0.5, 2.0, size=dim), jnp.float32),
    }
    backbone = split_backbone(saved._replace(params={**saved.params, "embed_norm": stats}))
    assert backbone.options["embed_norm"] is False and not backbone.options["standardize"]
    head = HeadConfig(backbone.embedding_dim, CLASSES)
    assert native_steps(backbone, head, SCOPES) is not None  # checked against JAX inside
    fn = native_embed(backbone, with_features=True)
    assert fn is not None and check_embed(backbone, fn, with_features=True) <= 1e-4
    unfolded = backbone._replace(options={**backbone.options, "embed_norm": True})
    with pytest.raises(ValueError, match="does not know option"):
        native_embed(unfolded, with_features=False)


def test_a_gdc_backbone_builds_natively_and_trains_its_pool(tmp_path, save_embednet) -> None:
    """``pool="gdc"`` (a learned weighting of the last map, set off the mean here so that it
    matters): the native embed and steps match JAX (checked inside, the last block's step
    included), the last block's step trains the GDC weights without decay as JAX's does, and
    the Keras rebuild computes the same embedding."""
    from export.artifact.tfnative import check_against_jax as check_embed
    from export.artifact.tfnative import native_embed
    from export.baselines.keras_embednet import keras_backbone

    options = {**TINY, "standardize": True, "pool": "gdc"}
    saved = save_embednet(tmp_path / "m", options, info={"preprocess": FACE_SPEC.to_dict()})
    gdc = saved.params["gdc"]
    assert gdc.shape == (8, 8, 32) and np.allclose(gdc, 1 / 64)  # starts as the mean
    rng = np.random.default_rng(5)
    weights = jnp.asarray(rng.uniform(0.0, 2.0 / 64, size=gdc.shape), jnp.float32)
    backbone = split_backbone(saved._replace(params={**saved.params, "gdc": weights}))
    assert "gdc" in backbone.last_params
    head = HeadConfig(backbone.embedding_dim, CLASSES)
    assert native_steps(backbone, head, SCOPES) is not None
    assert "last/gdc" in trained(backbone, "last_block")
    assert "last/gdc" not in trained(backbone, "head_biases")
    fn = native_embed(backbone, with_features=True)
    assert fn is not None and check_embed(backbone, fn, with_features=True) <= 1e-4
    images = rng.normal(size=(3, 64, 64, 1)).astype(np.float32)
    keras_out = keras_backbone(backbone)(images).numpy()
    np.testing.assert_allclose(keras_out, backbone.embed()(jnp.asarray(images)), atol=1e-5)
    mean = backbone._replace(options={**backbone.options, "pool": "mean"})
    assert not np.allclose(mean.embed()(jnp.asarray(images)), keras_out, atol=1e-3)
