"""A whole network's forward pass as a one-signature LiteRT model (classifier or embedder).

What runs on the device for a structurally pruned network is its forward pass; this converts the
Flax module with its constant parameters (``jax2tf``, builtins only) into a flatbuffer with one
signature: ``infer`` (``images`` -> ``scores``, float: :func:`classifier_tflite`) or ``embed``
(``images`` -> ``embeddings``, full-integer int8 as the artifact's ``embed``:
:func:`embedder_tflite`), so a narrower network becomes smaller convolutions in the interpreter.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from devices.contract import EMBED, EMBEDDINGS, IMAGES, INFER, SCORES
from export.artifact.convert import check_builtins


def classifier_tflite(module: Any, params: Any, input_shape: Sequence[int]) -> bytes:
    """``module.apply({"params": params}, images)`` as a float LiteRT model, batch 1.

    Args:
      module: a Flax module mapping ``(1, *input_shape)`` images to scores.
      params: its parameters (constants in the file).
      input_shape: one example's shape, e.g. ``(28, 28, 1)``.

    Returns:
      The ``.tflite`` bytes; signature ``infer``: ``images`` -> ``scores``.
    """
    return forward_tflite(module, params, input_shape, signature=INFER, output=SCORES)


def embedder_tflite(
    module: Any, params: Any, input_shape: Sequence[int], calibration: Iterable[np.ndarray]
) -> bytes:
    """An embedding network as a full-integer int8 LiteRT model, batch 1 (signature ``embed``:
    ``images`` -> ``embeddings``), calibrated on ``calibration`` (single images, float32)."""
    return forward_tflite(
        module, params, input_shape, signature=EMBED, output=EMBEDDINGS, calibration=calibration
    )


def forward_tflite(
    module: Any,
    params: Any,
    input_shape: Sequence[int],
    *,
    signature: str,
    output: str,
    calibration: Iterable[np.ndarray] | None = None,
) -> bytes:
    """``module.apply({"params": params}, images)`` as a LiteRT model with one signature.

    Args:
      module: a Flax module of ``(1, *input_shape)`` images.
      params: its parameters (constants in the file).
      input_shape: one example's shape.
      signature: the signature's name.
      output: its output tensor's name.
      calibration: images for full-integer int8 quantization (None: float32).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import jax
    import tensorflow as tf
    from jax.experimental import jax2tf

    constants = jax.tree.map(np.asarray, params)
    fn = jax2tf.convert(lambda x: module.apply({"params": constants}, x), with_gradient=False)
    spec = tf.TensorSpec((1, *input_shape), tf.float32, name=IMAGES)

    @tf.function(autograph=False, input_signature=[spec])
    def forward(images: Any) -> dict[str, Any]:
        return {output: fn(images)}

    holder = tf.Module()
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(holder, tmp, signatures={signature: forward})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[signature])
        if calibration is None:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        else:
            images = [np.asarray(x, np.float32).reshape(1, *input_shape) for x in calibration]
            if not images:
                raise ValueError("int8 conversion needs calibration images, got none.")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ((signature, {IMAGES: x}) for x in images)
            # as the artifact's embed: int8 kernels, float builtins where none exists
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        blob = bytes(converter.convert())
    check_builtins(blob)
    return blob
