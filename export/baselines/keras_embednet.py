"""EmbedNet rebuilt natively in Keras, with the weights of a trained Flax EmbedNet copied in.

What a user of the official TFLite on-device training guide holds: a Keras model (the guide starts
from ``tf.keras.applications``), not a JAX function converted by ``jax2tf``. Same layers as
:class:`pretrain.models.embednet.EmbedNet` (``standardize`` folded, ``impl`` irrelevant): a 3x3
strided stem, depthwise-separable blocks with ReLU6, global average pooling, the optional
``feature_norm``, a Dense embedding and the L2 norm. Kernels are copied as they are (HWIO), except
the depthwise ones: Flax keeps ``(3, 3, 1, C)``, Keras ``(3, 3, C, 1)``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

FEATURE_EPS = 1e-6  # EmbedNet's feature_norm
NORM_EPS = 1e-12  # EmbedNet's L2 norm floor


def _layers() -> tuple[Any, Any]:
    """The ``FeatureNorm`` and ``L2Normalize`` layer classes, built on first use (TensorFlow is heavy)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    class FeatureNorm(keras.layers.Layer):
        """Standardise a feature vector over its channels (no parameters)."""

        def call(self, x: Any) -> Any:
            x = x - keras.ops.mean(x, axis=-1, keepdims=True)
            return x * keras.ops.rsqrt(keras.ops.mean(x * x, axis=-1, keepdims=True) + FEATURE_EPS)

    class L2Normalize(keras.layers.Layer):
        """``x / max(||x||, 1e-12)`` along the last axis."""

        def call(self, x: Any) -> Any:
            norm = keras.ops.sqrt(keras.ops.sum(x * x, axis=-1, keepdims=True))
            return x / keras.ops.maximum(norm, NORM_EPS)

    return FeatureNorm, L2Normalize


def keras_embednet(
    options: dict[str, Any], params: dict[str, Any], input_shape: tuple[int, ...]
) -> Any:
    """A Keras ``Model`` computing EmbedNet ``options`` with Flax ``params``.

    Args:
      options: the EmbedNet's model options (``stem_width``, ``widths``, ``strides``,
        ``embedding_dim``, ``normalize``, ``feature_norm``); ``standardize`` and ``embed_norm``
        must be folded (:func:`pretrain.models.embednet.fold_standardization`, which
        ``split_backbone`` does).
      params: the whole network's parameters (``stem``, ``block1`` .. ``blockN``, ``embed``).
      input_shape: one image's shape, ``(h, w, c)``.

    Raises:
      ValueError: options this rebuild does not cover, or parameters that do not fit them.
    """
    import keras

    if any(options.get(k) for k in ("standardize", "embed_norm", "flip_average", "test_views")):
        raise ValueError(
            "keras_embednet: fold standardisation and embed_norm first (split_backbone); "
            "flip_average and test_views are not rebuilt."
        )
    if (
        options.get("start_block")
        or options.get("stop_after")
        or options.get("part", "all") != "all"
    ):
        raise ValueError("keras_embednet: rebuilds the whole network only (no part or cut).")
    FeatureNorm, L2Normalize = _layers()
    widths, strides = tuple(options["widths"]), tuple(options["strides"])
    stem_width = int(options.get("stem_width", 24))
    dim = int(options.get("embedding_dim", 128))
    relu6 = lambda name: keras.layers.ReLU(6.0, name=name)  # noqa: E731
    inputs = keras.Input(shape=tuple(input_shape), name="x")
    stem_kernel = int(options.get("stem_kernel", 3))
    x = keras.layers.Conv2D(stem_width, stem_kernel, strides=2, padding="same", name="stem")(inputs)
    x = relu6("stem_relu6")(x)
    for i, (width, stride) in enumerate(zip(widths, strides, strict=True), start=1):
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", name=f"block{i}_dw")(x)
        x = relu6(f"block{i}_dw_relu6")(x)
        x = keras.layers.Conv2D(width, 1, name=f"block{i}_pw")(x)
        x = relu6(f"block{i}_pw_relu6")(x)
    if options.get("pool", "mean") == "gdc":  # a "VALID" depthwise conv over the whole map
        h, w = (int(d) for d in np.shape(params["gdc"])[:2])
        x = keras.layers.DepthwiseConv2D((h, w), padding="valid", use_bias=False, name="gdc")(x)
        x = keras.layers.Flatten(name="pool")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if options.get("feature_norm"):
        x = FeatureNorm(name="feature_norm")(x)
    x = keras.layers.Dense(dim, name="embed")(x)
    if options.get("normalize", True):
        x = L2Normalize(name="l2")(x)
    model = keras.Model(inputs, x, name="embednet")
    copy_weights(model, params, blocks=len(widths))
    return model


def copy_weights(model: Any, params: dict[str, Any], *, blocks: int) -> None:
    """Sets the Keras layers' weights from the Flax parameter tree (shapes checked)."""

    def put(layer: str, kernel: Any, bias: Any) -> None:
        target = model.get_layer(layer)
        values = [np.asarray(kernel, np.float32), np.asarray(bias, np.float32)]
        shapes = [tuple(w.shape) for w in target.get_weights()]
        if shapes != [v.shape for v in values]:
            raise ValueError(
                f"keras_embednet: layer {layer} holds {shapes}, the Flax parameters "
                f"{[v.shape for v in values]}; options and parameters disagree."
            )
        target.set_weights(values)

    put("stem", params["stem"]["kernel"], params["stem"]["bias"])
    for i in range(1, blocks + 1):
        block = params[f"block{i}"]
        depthwise = np.transpose(np.asarray(block["depthwise"]["kernel"]), (0, 1, 3, 2))
        put(f"block{i}_dw", depthwise, block["depthwise"]["bias"])
        put(f"block{i}_pw", block["pointwise"]["kernel"], block["pointwise"]["bias"])
    put("embed", params["embed"]["kernel"], params["embed"]["bias"])
    if "gdc" in params:  # (h, w, c) -> Keras depthwise (h, w, c, 1), no bias
        target = model.get_layer("gdc")
        kernel = np.asarray(params["gdc"], np.float32)[..., None]
        if [tuple(w.shape) for w in target.get_weights()] != [kernel.shape]:
            raise ValueError(f"keras_embednet: layer gdc does not take a {kernel.shape} kernel.")
        target.set_weights([kernel])


def keras_backbone(backbone: Any) -> Any:
    """The Keras rebuild of an exported backbone (``export.artifact.split.Backbone``)."""
    params = {**backbone.front_params, **backbone.last_params}
    return keras_embednet(dict(backbone.options), params, tuple(backbone.input_shape))
