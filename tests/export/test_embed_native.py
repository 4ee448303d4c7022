"""The EmbedNet ``embed`` signature: a canonical int8 conv net (fused bias + ReLU6, no shape
arithmetic), the JAX function exactly in float, any batch, no tensor names."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from devices.preprocess import FACE_SPEC
from export.artifact.convert import build_tflite, size_breakdown, subgraph_ops, tensor_name
from export.artifact.flatbuffer import quantize_per_channel
from export.artifact.head import HeadConfig
from export.artifact.layers import artifact_graph
from export.artifact.scopes import initial_variables
from export.artifact.split import split_backbone
from export.artifact.tfnative import check_against_jax, native_embed

TINY = {
    "stem_width": 8,
    "widths": (16, 24, 32),
    "strides": (2, 1, 2),
    "embedding_dim": 16,
    "feature_norm": True,
}
SCOPES = ("head", "last_block")
# What a polymorphic-batch jax2tf embed left behind (broadcast biases, unfused ReLU6, shape math).
NOT_CANONICAL = {
    "SHAPE",
    "SLICE",
    "CAST",
    "BROADCAST_TO",
    "CONCATENATION",
    "MAXIMUM",
    "MINIMUM",
    "GATHER",
    "UNSORTED_SEGMENT_PROD",
    "RESHAPE",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory, save_embednet) -> dict:
    tmp = tmp_path_factory.mktemp("native")
    saved = save_embednet(tmp / "model", TINY, info={"preprocess": FACE_SPEC.to_dict()}, seed=1)
    backbone = split_backbone(saved)
    head = HeadConfig(backbone.embedding_dim, 4)
    initial = initial_variables(backbone, np.zeros((16, 4), np.float32), SCOPES)
    images = np.random.default_rng(0).normal(size=(48, 64, 64, 1)).astype(np.float32)
    blobs = {
        int8: build_tflite(
            backbone,
            head,
            SCOPES,
            initial,
            int8=int8,
            calibration=[images[i : i + 16] for i in range(0, 48, 16)],
        )
        for int8 in (False, True)
    }
    return {"backbone": backbone, "head": head, "images": images, "initial": initial, **blobs}


def _embed(blob: bytes, images: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=blob).get_signature_runner("embed")(images=images)


def test_float_embed_is_the_jax_model(models) -> None:
    x = models["images"][:8]
    got = _embed(models[False], x)
    np.testing.assert_allclose(got["embeddings"], models["backbone"].embed()(x), atol=2e-5)
    np.testing.assert_allclose(got["features"], models["backbone"].front()(x), atol=2e-5)


@pytest.mark.parametrize("int8", [False, True])
def test_embed_is_a_canonical_conv_net(models, int8: bool) -> None:
    ops = subgraph_ops(models[int8], "embed")
    counts = Counter(name for name, _ in ops)
    blocks = len(TINY["widths"])
    assert counts["CONV_2D"] == 1 + blocks and counts["DEPTHWISE_CONV_2D"] == blocks, counts
    assert not NOT_CANONICAL & set(counts), counts
    # Every convolution carries its bias and ReLU6: nothing else touches the feature maps.
    assert {act for name, act in ops if name.endswith("CONV_2D")} == {"RELU6"}
    assert counts["L2_NORMALIZATION"] == 1 and counts["FULLY_CONNECTED"] == 1
    if int8:  # full-integer inside: float only at the edges (images in; embeddings, features out)
        assert counts["QUANTIZE"] == 1 and counts["DEQUANTIZE"] == 2, counts


def test_embed_serves_any_batch(models) -> None:
    x = models["images"][:7]
    batch = _embed(models[True], x)
    one = [_embed(models[True], x[i : i + 1]) for i in range(len(x))]
    for name in ("embeddings", "features"):
        np.testing.assert_array_equal(batch[name], np.concatenate([o[name] for o in one]))


def test_no_tensor_names_and_the_graph_lists_every_embed_kernel(models) -> None:
    assert size_breakdown(models[True])["tensor_names"] == 0
    from export.artifact.convert import contract

    backbone, head = models["backbone"], models["head"]
    shapes = {n: v.shape for n, v in initial_variables(backbone, np.zeros((16, 4)), SCOPES).items()}
    sigs = contract(backbone, head, SCOPES, shapes)
    graph = artifact_graph(backbone, head, SCOPES, sigs, name="t", embed_bits=8, train_batch=5)
    kinds = Counter(layer.op for layer in graph.layers)
    counts = Counter(name for name, _ in subgraph_ops(models[True], "embed"))
    assert (
        kinds["conv"] == counts["CONV_2D"]
        and kinds["depthwise_conv"] == counts["DEPTHWISE_CONV_2D"]
    )
    assert kinds["pool"] == 1 and graph.embedding_layer == "backbone/l2_normalize"
    assert graph.features_layer == f"backbone/block{len(TINY['widths']) - 1}/pointwise"


def test_int8_artifact_stores_the_starting_kernels_int8(models) -> None:
    from ai_edge_litert.interpreter import Interpreter

    got = {
        int8: Interpreter(model_content=models[int8]).get_signature_runner("get_weights")(
            unused=np.int32(0)
        )
        for int8 in (False, True)
    }
    packed = 0
    for name, value in models["initial"].items():
        v = np.asarray(value)
        np.testing.assert_array_equal(got[False][tensor_name(name)], v)  # float: untouched
        g = got[True][tensor_name(name)]
        if v.ndim >= 2 and v.size >= 256 and v.any():
            q, scales = quantize_per_channel(v)
            np.testing.assert_allclose(g, q * scales, rtol=1e-6, atol=0)
            assert np.abs(g - v).max() <= 0.5 * scales.max() * (1 + 1e-5)
            packed += v.size
        else:
            np.testing.assert_array_equal(g, v)
    assert packed > 0
    floats = [size_breakdown(models[int8])["constants"].get("float32", 0) for int8 in (False, True)]
    assert floats[1] <= floats[0] - 4 * packed  # every packed kernel left the float32 bytes


def test_a_builder_out_of_step_with_the_model_is_refused(models) -> None:
    backbone = models["backbone"]
    fn = native_embed(backbone, with_features=True)
    assert fn is not None
    assert check_against_jax(backbone, fn, with_features=True) <= 1e-4
    off = lambda x: {k: v * 1.01 for k, v in fn(x).items()}  # noqa: E731
    with pytest.raises(ValueError, match="out of step"):
        check_against_jax(backbone, off, with_features=True)
    renamed = backbone._replace(options={**backbone.options, "pooling": "max"})
    with pytest.raises(ValueError, match="does not know option"):
        native_embed(renamed, with_features=False)
