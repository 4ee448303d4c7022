"""A whole classifier (images -> class scores) as a one-signature LiteRT model.

What runs on the device for a structurally pruned LeNet-5 is its forward pass; this converts the
Flax module with its constant parameters (``jax2tf``, builtins only) into a flatbuffer whose one
signature, ``infer``, takes ``images`` and returns ``scores``, so a narrower network becomes
smaller convolutions in the interpreter, and its latency is measured with
``devices.measure_signature``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from devices.contract import IMAGES, INFER, SCORES
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import jax
    import tensorflow as tf
    from jax.experimental import jax2tf

    constants = jax.tree.map(np.asarray, params)
    fn = jax2tf.convert(lambda x: module.apply({"params": constants}, x), with_gradient=False)
    spec = tf.TensorSpec((1, *input_shape), tf.float32, name=IMAGES)

    @tf.function(autograph=False, input_signature=[spec])
    def infer(images: Any) -> dict[str, Any]:
        return {SCORES: fn(images)}

    holder = tf.Module()
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(holder, tmp, signatures={INFER: infer})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[INFER])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        blob = bytes(converter.convert())
    check_builtins(blob)
    return blob
