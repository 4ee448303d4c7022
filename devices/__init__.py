"""pocketfit devices: profiles, estimators and policies; numpy only, readable from anywhere.

This is what the phone imports (with :mod:`personalize`). The server-side calibration and probes,
which need TensorFlow or JAX, are :mod:`devices.server`; nothing here imports them.
"""

from devices.artifact import load_graph, model_file, model_stats, plan_artifact
from devices.contract import SCOPES, ArtifactError
from devices.estimate import Estimate, estimate, inference_energy
from devices.graph import GRAPH_FORMAT, Graph, GraphError, LayerSpec, SignatureSpec
from devices.host import host_info
from devices.kernels import KERNEL_CLASSES, kernel_class
from devices.localiser import ANCHOR_SPEC  # registers the "anchor" crop
from devices.measure import (
    MeasureError,
    Measurement,
    example_inputs,
    measure_signature,
    prefault_libraries,
    reset_peak,
    rss_status,
    trim_heap,
)
from devices.planner import MemoryPlan, plan_scopes, plan_signature, widest_fitting_scope
from devices.policy import Decision, PolicyConfig, Situation, decide
from devices.preprocess import (
    FACE_SPEC,
    FINGERPRINT_SPEC,
    SENSOR_DPI,
    PreprocessError,
    PreprocessSpec,
    preprocess_batch,
    preprocess_image,
    to_sensor_dpi,
)
from devices.profiles import Profile, ProfileError, load_profile, load_profiles, profile_names
from devices.registration import CORE_SPEC  # registers the "core" crop
from devices.routed import RoutedCost, RoutedGraph, routed_cost
from devices.tflite_file import ModelFileError, ModelStats, read_model_stats
from devices.timing import (
    alternating_blocks,
    alternating_medians,
    fresh_process_rounds,
    median_parts,
    over_rounds,
    ratio_over_rounds,
)

__all__ = [
    "ANCHOR_SPEC",
    "CORE_SPEC",
    "FACE_SPEC",
    "FINGERPRINT_SPEC",
    "GRAPH_FORMAT",
    "KERNEL_CLASSES",
    "SCOPES",
    "SENSOR_DPI",
    "ArtifactError",
    "Decision",
    "Estimate",
    "Graph",
    "GraphError",
    "LayerSpec",
    "MeasureError",
    "Measurement",
    "MemoryPlan",
    "ModelFileError",
    "ModelStats",
    "PolicyConfig",
    "PreprocessError",
    "PreprocessSpec",
    "Profile",
    "ProfileError",
    "RoutedCost",
    "RoutedGraph",
    "SignatureSpec",
    "Situation",
    "alternating_blocks",
    "alternating_medians",
    "decide",
    "estimate",
    "example_inputs",
    "fresh_process_rounds",
    "host_info",
    "inference_energy",
    "kernel_class",
    "load_graph",
    "load_profile",
    "load_profiles",
    "measure_signature",
    "median_parts",
    "model_file",
    "model_stats",
    "over_rounds",
    "plan_artifact",
    "plan_scopes",
    "plan_signature",
    "prefault_libraries",
    "preprocess_batch",
    "preprocess_image",
    "profile_names",
    "ratio_over_rounds",
    "read_model_stats",
    "reset_peak",
    "routed_cost",
    "rss_status",
    "to_sensor_dpi",
    "trim_heap",
    "widest_fitting_scope",
]
