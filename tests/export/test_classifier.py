"""Structurally pruned networks export as narrower LiteRT convolutions with JAX's outputs.

Tolerance: float32 LiteRT against float32 JAX, the same network: 1e-4 of the output scale
(different kernels and summation order, no quantization); the int8 embed: cosine > 0.95 to the
float embedding (8-bit weights and activations of a random network, a few steps per layer).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import pretrain
import pretrain.compression as pc
from export.artifact import classifier_tflite, embedder_tflite
from pretrain.models.embednet import EmbedNet


def test_shrunk_lenet5_exports_smaller_convolutions_with_the_same_outputs() -> None:
    from ai_edge_litert.interpreter import Interpreter

    module = pretrain.build_model("lenet5")
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.1, s.shape), s.dtype), shapes)
    structure = pc.l1_structure(params, {"conv1": 6, "conv2": 11, "fc1": 40})
    narrow, small = pc.shrink_module(module, params, structure)
    blob = classifier_tflite(narrow, small, (28, 28, 1))

    interp = Interpreter(model_content=blob, num_threads=1)
    interp.allocate_tensors()
    weights = sorted(
        tuple(int(d) for d in t["shape"])
        for t in interp.get_tensor_details()
        if len(t["shape"]) == 4 and t["shape"][1] == 5 and t["shape"][2] == 5
    )
    # TFLite stores a convolution's filter as (out, kh, kw, in); conv1, with one input channel,
    # becomes a depthwise convolution, (1, kh, kw, out)
    assert weights == [(1, 5, 5, 6), (11, 5, 5, 6)]
    runner = interp.get_signature_runner("infer")
    x = rng.random((3, 28, 28, 1), np.float32)
    got = np.concatenate([runner(images=x[i : i + 1])["scores"] for i in range(3)])
    want = np.asarray(narrow.apply({"params": small}, x))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.max(np.abs(want)))


def test_narrow_embednet_exports_an_int8_embed_signature_close_to_jax() -> None:
    from ai_edge_litert.interpreter import Interpreter

    module = EmbedNet(
        stem_width=12, widths=(12, 16), strides=(2, 2), embedding_dim=8, impl="native"
    )
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 32, 32, 1)))["params"]
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.3, s.shape), s.dtype), shapes)
    # (4 and 4 channels here build a model XNNPACK refuses to prepare: a delegate limit, not
    # the export's)
    structure = pc.l1_separable(params, {"stem": 8, "block1/pointwise": 8})
    narrow, small = pc.shrink_separable(module, params, structure, pc.separable_chain(2))
    images = rng.standard_normal((24, 32, 32, 1)).astype(np.float32)
    blob = embedder_tflite(narrow, small, (32, 32, 1), list(images[:16]))

    interp = Interpreter(model_content=blob, num_threads=1)
    runner = interp.get_signature_runner("embed")
    probe = images[16:]
    got = np.concatenate([runner(images=probe[i : i + 1])["embeddings"] for i in range(8)])
    want = np.asarray(narrow.apply({"params": small}, probe))
    assert any(t["dtype"] == np.int8 for t in interp.get_tensor_details())  # int8 kernels
    # int8 weights and activations: a unit embedding within a few quantization steps, not 1e-4
    cosine = np.sum(got * want, -1) / np.linalg.norm(got, axis=-1)
    assert cosine.min() > 0.95
