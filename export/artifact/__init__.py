"""LiteRT artifacts: a trained backbone -> a signed directory the phone downloads (server side).

``split_backbone`` cuts a saved model into a frozen front and a trainable last block;
``build_artifact`` converts it (int8 ``embed``, float training signatures; ``build_tflite``),
measures the background, plans memory per device profile and signs the manifest;
``export_model`` is the whole ``python -m export build`` path (sources, whitening, OTA bundle).
``compress_backbone`` is the embedding backbones' Deep Compression for the air. What the files
and names of an artifact are is :mod:`devices.contract`.

Needs JAX (and TensorFlow while converting); the device reads artifacts with :mod:`personalize`.
"""

from export.artifact.build import (
    build_artifact,
    embed_batches,
    make_manifest,
    sign_manifest,
    signed_manifest,
    write_artifact,
)
from export.artifact.classifier import classifier_tflite, embedder_tflite
from export.artifact.convert import (
    ConversionError,
    Signature,
    build_tflite,
    check_builtins,
    contract,
    op_names,
    size_breakdown,
    subgraph_ops,
)
from export.artifact.head import HeadConfig, imprint
from export.artifact.layers import artifact_graph
from export.artifact.ota import (
    EMBEDNET,
    OtaRecipe,
    OtaResult,
    compress_backbone,
    load_ota,
    recipe_for,
    save_ota,
)
from export.artifact.pipeline import (
    calibrate_to_sensor,
    check_bundle,
    export_model,
    fit_whitening,
    signing_key,
)
from export.artifact.scopes import check_scopes, initial_variables, train_fn, trained
from export.artifact.sensor import SensorCalibrationError, sensor_projection
from export.artifact.sources import Sources, data_sources, register_source, source_names
from export.artifact.split import DATASET_SPECS, Backbone, SplitError, split_backbone
from export.artifact.tfnative import native_embed, register_builder
from export.artifact.tftrain import Steps, native_steps, register_steps
from export.artifact.whiten import WhiteningError, can_whiten, fold_whitening, whitener

__all__ = [
    "DATASET_SPECS",
    "EMBEDNET",
    "Backbone",
    "ConversionError",
    "HeadConfig",
    "OtaRecipe",
    "OtaResult",
    "SensorCalibrationError",
    "Signature",
    "Sources",
    "SplitError",
    "Steps",
    "WhiteningError",
    "artifact_graph",
    "build_artifact",
    "build_tflite",
    "calibrate_to_sensor",
    "can_whiten",
    "check_builtins",
    "check_bundle",
    "check_scopes",
    "classifier_tflite",
    "compress_backbone",
    "contract",
    "data_sources",
    "embed_batches",
    "embedder_tflite",
    "export_model",
    "fit_whitening",
    "fold_whitening",
    "imprint",
    "initial_variables",
    "load_ota",
    "make_manifest",
    "native_embed",
    "native_steps",
    "op_names",
    "recipe_for",
    "register_builder",
    "register_source",
    "register_steps",
    "save_ota",
    "sensor_projection",
    "sign_manifest",
    "signed_manifest",
    "signing_key",
    "size_breakdown",
    "source_names",
    "split_backbone",
    "subgraph_ops",
    "train_fn",
    "trained",
    "whitener",
    "write_artifact",
]
