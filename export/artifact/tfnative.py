"""The frozen ``embed`` of a backbone written in TensorFlow ops, so the converter emits a canonical
int8 conv net: CONV_2D / DEPTHWISE_CONV_2D with the bias and ReLU6 fused, a batch axis the
runtime resizes, and no shape arithmetic.

Why not ``jax2tf`` for this one signature: under a symbolic batch (one signature for any batch)
jax2tf's StableHLO broadcasts every bias and every ReLU6 bound to the full feature map with a
runtime shape; the converter keeps those as SHAPE / CONCATENATION / BROADCAST_TO plus separate
ADD / MAXIMUM / MINIMUM, which XNNPACK cannot delegate. Measured on a 32x32x24 int8 depthwise
layer (1 thread): 0.026 ms for the convolution alone, 0.28 ms with the broadcast bias add,
0.84 ms with the broadcast ReLU6 too; the same TF-built layer is a single fused 0.026 ms
DEPTHWISE_CONV_2D. A fixed batch of 1 from jax2tf is canonical too, but its RESHAPE pins the batch
and the device embeds enrollment batches through the same signature.

A builder is chosen by registered model name; models without one (the LeNets: dense layers, no
broadcasts worth the name) keep the jax2tf path. Every builder is checked against the JAX model
by the export tests (float within 1e-5, int8 within the quantization step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from devices.registry import Registry
from export.artifact.split import Backbone
from pretrain.models.embednet import EmbedNet

# images -> {"embeddings": ..., ["features": ...]}; tf imported by the builder, never here.
EmbedFn = Callable[[Any], dict[str, Any]]
Builder = Callable[[Backbone, bool], EmbedFn]
# model -> fn(backbone, with_features) -> (images -> outputs). The steps builders (train*,
# infer, refine) have their own registry in export.artifact.tftrain.
EMBED_BUILDERS: Registry[Builder] = Registry("TensorFlow embed builder")
register_builder = EMBED_BUILDERS.register  # decorator: @register_builder("embednet")


def native_embed(backbone: Backbone, *, with_features: bool) -> EmbedFn | None:
    """The TensorFlow ``embed`` of ``backbone`` (``features`` too when asked), checked against the
    JAX model (:func:`check_against_jax`), or None when its model has no registered builder."""
    builder = EMBED_BUILDERS.get(backbone.name)
    if builder is None:
        return None
    fn: EmbedFn = builder(backbone, with_features)
    check_against_jax(backbone, fn, with_features=with_features)
    return fn


# Options _embednet reproduces (stem_width, stem_kernel and embedding_dim follow from the
# parameter shapes; start_block / stop_after are refused by split_backbone; part and impl are not
# kept).
EMBEDNET_OPTIONS = {
    "stem_width",
    "stem_kernel",
    "widths",
    "strides",
    "embedding_dim",
    "normalize",
    "standardize",
    "feature_norm",
    "pool",
    "start_block",
    "stop_after",
}


# An EmbedNet reparametrisation the builders reproduce only once folded (``split_backbone``
# records it as False; ``standardize`` likewise, checked below with its own message).
FOLDED_OPTIONS = ("embed_norm",)


def embednet_of(backbone: Backbone, what: str) -> EmbedNet:
    """The EmbedNet ``backbone``'s options describe (the model's own defaults for the rest), for
    a TensorFlow builder of ``what``; refuses options a builder would silently ignore.

    Raises:
      ValueError: an option outside ``EMBEDNET_OPTIONS`` (the ``FOLDED_OPTIONS`` only when
        False), or an unfolded weight standardisation.
    """
    folded = {k for k in FOLDED_OPTIONS if k in backbone.options and not backbone.options[k]}
    unknown = set(backbone.options) - EMBEDNET_OPTIONS - folded
    if unknown:
        raise ValueError(
            f"embednet: the TensorFlow {what} does not know option(s) {sorted(unknown)}."
        )
    if backbone.options.get("standardize"):
        raise ValueError(
            "embednet: fold the weight standardisation before export (split_backbone)."
        )
    return EmbedNet(**backbone.options)


def check_against_jax(
    backbone: Backbone, fn: EmbedFn, *, with_features: bool, tolerance: float = 1e-4
) -> float:
    """Runs ``fn`` (eagerly, float) and the JAX backbone on fixed random images; returns the
    largest absolute difference.

    Raises:
      ValueError: the two disagree by more than ``tolerance`` (a builder out of step with the
        model: the artifact would not compute what was trained).
    """
    import jax.numpy as jnp
    import tensorflow as tf

    images = np.random.default_rng(0).normal(size=(2, *backbone.input_shape)).astype(np.float32)
    got, x = fn(tf.constant(images)), jnp.asarray(images)
    want = {"embeddings": backbone.embed()(x)}
    if with_features:
        want["features"] = backbone.front()(x)
    worst = max(float(np.max(np.abs(np.asarray(got[k]) - np.asarray(v)))) for k, v in want.items())
    if not worst <= tolerance:
        raise ValueError(
            f"{backbone.name}: the TensorFlow embed differs from the JAX model by {worst:.3g} "
            f"(> {tolerance}); its builder in export.artifact.tfnative is out of step."
        )
    return worst


@register_builder("embednet")
def _embednet(backbone: Backbone, with_features: bool) -> EmbedFn:
    import tensorflow as tf

    net = embednet_of(backbone, "embed")
    widths, strides = tuple(net.widths), tuple(net.strides)
    feature_norm, normalize = net.feature_norm, net.normalize
    params = {**backbone.front_params, **backbone.last_params}
    const = lambda a: tf.constant(np.asarray(a, np.float32))  # noqa: E731

    def conv(x: Any, layer: dict[str, Any], stride: int) -> Any:
        y = tf.nn.conv2d(x, const(layer["kernel"]), stride, "SAME")
        return tf.nn.relu6(tf.nn.bias_add(y, const(layer["bias"])))

    def depthwise(x: Any, layer: dict[str, Any], stride: int) -> Any:
        kernel = np.asarray(layer["kernel"])  # Flax (3, 3, 1, C) -> TF (3, 3, C, 1)
        kernel = kernel.reshape(kernel.shape[0], kernel.shape[1], kernel.shape[3], 1)
        y = tf.nn.depthwise_conv2d(x, const(kernel), (1, stride, stride, 1), "SAME")
        return tf.nn.relu6(tf.nn.bias_add(y, const(layer["bias"])))

    def block(x: Any, i: int) -> Any:
        p = params[f"block{i + 1}"]
        return conv(depthwise(x, p["depthwise"], strides[i]), p["pointwise"], 1)

    def pool(x: Any) -> Any:
        if net.pool != "gdc":
            return tf.reduce_mean(x, axis=(1, 2))
        # The GDC: one "VALID" depthwise convolution over the whole map, (h, w, c) -> (h, w, c, 1).
        kernel = const(np.asarray(params["gdc"])[..., None])
        y = tf.nn.depthwise_conv2d(x, kernel, (1, 1, 1, 1), "VALID")
        return tf.reshape(y, (-1, y.shape[-1]))

    def run(images: Any) -> dict[str, Any]:
        x = conv(images, params["stem"], 2)
        for i in range(len(widths) - 1):
            x = block(x, i)
        features = x
        x = pool(block(x, len(widths) - 1))
        x = _embedding(x, params["embed"], const, feature_norm=feature_norm, normalize=normalize)
        return {"embeddings": x, **({"features": features} if with_features else {})}

    return run


def _embedding(x: Any, embed: Any, const: Any, *, feature_norm: bool, normalize: bool) -> Any:
    """Both nets' last step on pooled features ``x``: the feature norm over channels (as
    ``pretrain.models.standardize_features``), ``embed``'s affine map, the L2 normalisation
    (x / max(||x||, 1e-12), as ``unit_rows``: L2_NORMALIZATION on the device)."""
    import tensorflow as tf

    if feature_norm:
        x = x - tf.reduce_mean(x, axis=-1, keepdims=True)
        x = x * tf.math.rsqrt(tf.reduce_mean(x * x, axis=-1, keepdims=True) + 1e-6)
    x = tf.matmul(x, const(embed["kernel"])) + const(embed["bias"])
    return tf.math.l2_normalize(x, axis=-1, epsilon=1e-24) if normalize else x


@register_builder("mobilefacenet")
def _mobilefacenet(backbone: Backbone, with_features: bool) -> EmbedFn:
    """MobileFaceNet as folded by ``split_backbone``: plain convolutions, residual ADDs, the
    GDC as a "VALID" depthwise convolution over the whole map (its running standardisation,
    ``gdc_norm``, folded into its kernel and bias)."""
    import tensorflow as tf

    from pretrain.models.mobilefacenet import MobileFaceNet

    net = MobileFaceNet(**backbone.options)
    if net.standardize or net.skip_init or net.gdc_norm or net.embed_norm:
        raise ValueError(
            "mobilefacenet: fold the weight standardisation, residual gains and running statistics "
            "before export (split_backbone)."
        )
    blocks = net._blocks()
    params = {**backbone.front_params, **backbone.last_params}
    const = lambda a: tf.constant(np.asarray(a, np.float32))  # noqa: E731

    def conv(x: Any, layer: dict[str, Any], stride: int, relu: bool = True) -> Any:
        y = tf.nn.bias_add(
            tf.nn.conv2d(x, const(layer["kernel"]), stride, "SAME"), const(layer["bias"])
        )
        return tf.nn.relu6(y) if relu else y

    def depthwise(x: Any, layer: dict[str, Any], stride: int, padding: str = "SAME") -> Any:
        kernel = np.asarray(layer["kernel"])  # Flax (H, W, 1, C) -> TF (H, W, C, 1)
        kernel = kernel.reshape(kernel.shape[0], kernel.shape[1], kernel.shape[3], 1)
        y = tf.nn.depthwise_conv2d(x, const(kernel), (1, stride, stride, 1), padding)
        return tf.nn.bias_add(y, const(layer["bias"]))

    def run(images: Any) -> dict[str, Any]:
        x = conv(images, params["stem"], 2)
        x = tf.nn.relu6(depthwise(x, params["stem_dw"], 1))
        for i, (width, _, stride) in enumerate(blocks):
            p = params[f"block{i + 1}"]
            h = conv(x, p["expand"], 1)
            h = tf.nn.relu6(depthwise(h, p["depthwise"], stride))
            h = conv(h, p["project"], 1, relu=False)
            x = x + h if stride == 1 and x.shape[-1] == width else h
        features = x
        x = depthwise(conv(x, params["tail"], 1), params["gdc"], 1, "VALID")
        x = tf.reshape(x, (-1, x.shape[-1]))
        x = _embedding(
            x, params["embed"], const, feature_norm=net.feature_norm, normalize=net.normalize
        )
        return {"embeddings": x, **({"features": features} if with_features else {})}

    return run
