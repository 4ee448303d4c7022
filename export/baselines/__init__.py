"""Baselines pocketfit is measured against, built on the server (they import TensorFlow).

``tflite_official``: the official TensorFlow Lite on-device training recipe over the same backbone.
"""

from export.baselines.tflite_official import (
    FlexUnavailable,
    OfficialModel,
    build_official,
    one_hot,
)

__all__ = ["FlexUnavailable", "OfficialModel", "build_official", "one_hot"]
