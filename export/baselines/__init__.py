"""Baselines pocketfit is measured against, built on the server (they import TensorFlow).

``tflite_official``: the official TensorFlow Lite on-device training recipe over the same backbone,
its float backbone through ``jax2tf`` (:func:`build_official`) or rebuilt natively in Keras with the
trained weights copied in (:func:`build_official_keras` over :func:`keras_backbone`).
"""

from export.baselines.keras_embednet import keras_backbone, keras_embednet
from export.baselines.tflite_official import (
    FlexUnavailable,
    OfficialModel,
    build_official,
    build_official_keras,
    official_gallery,
    one_hot,
    time_official_enrollments,
)

__all__ = [
    "FlexUnavailable",
    "OfficialModel",
    "build_official",
    "build_official_keras",
    "keras_backbone",
    "keras_embednet",
    "official_gallery",
    "one_hot",
    "time_official_enrollments",
]
