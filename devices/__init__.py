"""pocketfit devices: profiles, estimators and policies; numpy only, readable from anywhere."""

from devices.host import host_info
from devices.preprocess import (
    FACE_SPEC,
    FINGERPRINT_SPEC,
    PreprocessError,
    PreprocessSpec,
    preprocess_batch,
    preprocess_image,
)

__all__ = [
    "FACE_SPEC",
    "FINGERPRINT_SPEC",
    "PreprocessError",
    "PreprocessSpec",
    "host_info",
    "preprocess_batch",
    "preprocess_image",
]
