"""The artifact contract: what ``export`` writes and the device reads, named once.

An artifact directory (format ``pocketfit-artifact/1``) holds ``model.tflite`` (every device
operation as a named signature), ``background.npy`` (and, with a scope wider than ``head``,
``background_features.xz``), optionally ``backbone.pfb`` (the OTA bundle), ``manifest.json`` and
``manifest.sig`` (signer key id + Ed25519 signature of the manifest).

Trainable values are *variables* named like pytree paths (``head/kernel``,
``last/<layer>/.../<leaf>``); the signatures' inputs and outputs cannot hold ``/``, so the model
file names each variable's tensor with :func:`tensor_name` (``head/kernel`` -> ``head__kernel``).

Standard library only: ``export`` (server) writes with it, ``personalize`` and ``devices``
(device) read with it, so it lives in the leaf package every side may import.
"""

from __future__ import annotations

FORMAT = "pocketfit-artifact/1"

# Files of an artifact directory.
MODEL = "model.tflite"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
BACKGROUND = "background.npy"
# The frozen front's features of the same background people, which the wider scopes need (their
# negatives and their threshold go through the trained last block): a codebook and XZ-compressed
# codes (devices.coded_features); artifacts written before it hold them as a plain float16 .npy.
BACKGROUND_FEATURES = "background_features.xz"
BACKGROUND_FEATURES_NPY = "background_features.npy"
BACKGROUND_MINUTIAE = "background_minutiae.npz"  # the background's prints (fingerprint fusion)
OTA = "backbone.pfb"

# Training scopes, narrow to wide (TinyTL: train what is cheap in memory).
SCOPES = ("head", "head_biases", "last_block")
NO_TRAINING = "none"  # the scope of an imprinting-only enrollment

# Variables and their tensors.
HEAD_VARIABLE = "head/kernel"
LAST_PREFIX = "last/"
_SEP, _TENSOR_SEP = "/", "__"

# Signatures.
EMBED, INFER, REFINE = "embed", "infer", "refine"
GET_WEIGHTS, SET_WEIGHTS = "get_weights", "set_weights"
# Their argument and output names.
IMAGES, EMBEDDINGS, FEATURES = "images", "embeddings", "features"
LABELS, LR, WEIGHT_DECAY = "labels", "lr", "weight_decay"
LOSS, SCORES, UNUSED, COUNT = "loss", "scores", "unused", "count"


class ArtifactError(ValueError):
    """An artifact that cannot be written, loaded or planned; the message names the file and why."""


def tensor_name(variable: str) -> str:
    """The signature-safe tensor name of a variable (``head/kernel`` -> ``head__kernel``)."""
    return variable.replace(_SEP, _TENSOR_SEP)


HEAD_TENSOR = tensor_name(HEAD_VARIABLE)


def train_signature(scope: str) -> str:
    """The name of ``scope``'s SGD step signature (``train``, ``train_head_biases``, ...)."""
    return "train" if scope == "head" else f"train_{scope}"


def train_input(scope: str) -> str:
    """What ``scope``'s step reads: cached ``embeddings`` (head) or the front's ``features``."""
    return EMBEDDINGS if scope == "head" else FEATURES


def trains_last_block(scope: str) -> bool:
    """Whether ``scope`` trains (part of) the last block, so scoring goes through ``refine``."""
    return scope not in ("head", NO_TRAINING)
