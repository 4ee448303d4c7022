"""MobileFaceNet through export: the cut folds its reparametrisations, the TensorFlow ``embed``
is the JAX model, and the int8 artifact runs it as a canonical conv net."""

from __future__ import annotations

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain
from devices.preprocess import PreprocessSpec
from export.artifact.convert import build_tflite, subgraph_ops
from export.artifact.head import HeadConfig
from export.artifact.scopes import initial_variables
from export.artifact.split import split_backbone
from export.artifact.tfnative import native_embed

TINY = {
    "stem_width": 8,
    "widths": (8, 16),
    "expansions": (2, 2),
    "repeats": (2, 2),
    "strides": (2, 2),
    "tail_width": 32,
    "embedding_dim": 16,
}
SPEC = PreprocessSpec(modality="face", input_size=(28, 24), crop="none")
SCOPES = ("head", "last_block")


def _save(folder, options: dict) -> pretrain.SavedModel:
    module = pretrain.build_model("mobilefacenet", **options)
    params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 28, 24, 1)))["params"]
    # Residual gains off zero, so folding them into the projections is exercised.
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: v + 0.7 if path[-1].key == "gain" else v, params
    )
    if "gdc_norm" in params:  # running statistics off their start, so their fold is exercised
        rng = np.random.default_rng(3)
        shape = params["gdc_norm"]["mean"].shape
        params["gdc_norm"] = {
            "mean": jnp.asarray(rng.normal(0.0, 2.0, size=shape), jnp.float32),
            "var": jnp.asarray(rng.uniform(0.3, 4.0, size=shape), jnp.float32),
        }
    pretrain.save_model(
        folder,
        model="mobilefacenet",
        model_options=options,
        params=params,
        info={"preprocess": SPEC.to_dict()},
    )
    return pretrain.load_model(folder)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("mfn") / "model", TINY)


def test_split_folds_the_default_reparametrisations(saved) -> None:
    backbone = split_backbone(saved)
    # Both are on by default (absent from the saved options): the cut still folds them.
    assert backbone.options["standardize"] is False and backbone.options["skip_init"] is False
    assert set(backbone.last_params) == {"tail", "gdc", "embed"}
    assert backbone.features_shape == (4, 3, 16)
    x = jax.random.normal(jax.random.key(2), (3, 28, 24, 1))
    want = saved.module.apply({"params": saved.params}, x)
    np.testing.assert_allclose(backbone.embed()(x), want, atol=1e-5)


def test_gdc_statistics_fold_and_the_tensorflow_embed_agrees(tmp_path) -> None:
    saved = _save(tmp_path / "model", {**TINY, "gdc_norm": True})
    backbone = split_backbone(saved)
    assert backbone.options["gdc_norm"] is False
    assert set(backbone.last_params) == {"tail", "gdc", "embed"}
    x = jax.random.normal(jax.random.key(2), (3, 28, 24, 1))
    want = saved.module.apply({"params": saved.params}, x)
    np.testing.assert_allclose(backbone.embed()(x), want, atol=1e-5)
    fn = native_embed(backbone, with_features=False)  # within 1e-4 of the JAX model inside
    assert fn is not None
    import tensorflow as tf

    got = fn(tf.constant(np.asarray(x)))["embeddings"]
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)


def test_tensorflow_embed_is_the_jax_model_and_converts_canonically(saved) -> None:
    backbone = split_backbone(saved)
    assert native_embed(backbone, with_features=True) is not None  # checked against JAX inside
    head = HeadConfig(backbone.embedding_dim, 4)
    initial = initial_variables(backbone, np.zeros((16, 4), np.float32), SCOPES)
    images = np.random.default_rng(0).normal(size=(32, 28, 24, 1)).astype(np.float32)
    blob = build_tflite(
        backbone, head, SCOPES, initial, int8=True, calibration=[images[:16], images[16:]]
    )
    counts = Counter(name for name, _ in subgraph_ops(blob, "embed"))
    blocks = 4  # TINY["repeats"] (2, 2)
    # stem + 2 per block + tail; stem_dw + 1 per block + the GDC; 2 residual ADDs and the
    # feature standardisation's epsilon
    assert counts["CONV_2D"] == 2 + 2 * blocks, counts
    assert counts["DEPTHWISE_CONV_2D"] == 2 + blocks, counts
    assert counts["ADD"] == 2 + 1, counts
    assert counts["QUANTIZE"] == 1 and counts["DEQUANTIZE"] == 2, counts
    assert not {"BROADCAST_TO", "SHAPE", "GATHER", "CONCATENATION"} & set(counts), counts

    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=blob).get_signature_runner("embed")
    got = runner(images=images[:8])["embeddings"]
    want = np.asarray(backbone.embed()(jnp.asarray(images[:8])))
    cosine = np.sum(got * want, axis=-1) / np.linalg.norm(got, axis=-1)
    assert np.min(cosine) > 0.9, cosine  # int8 of a random tiny net: same direction, not equal
