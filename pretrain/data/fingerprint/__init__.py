"""Synthetic fingerprints after SFinGe (Cappelli, Maio, Maltoni, ICPR 2002)."""

from pretrain.data.fingerprint.frequency import period_map, smooth_noise
from pretrain.data.fingerprint.gallery import save_gallery
from pretrain.data.fingerprint.impressions import Placement, master_coordinates, render
from pretrain.data.fingerprint.orientation import (
    CLASS_FREQUENCIES,
    CLASSES,
    SingularPoints,
    orientation_field,
    sample_class,
    sample_singular_points,
)
from pretrain.data.fingerprint.ridges import gabor_bank, grow_ridges
from pretrain.data.fingerprint.silhouette import Silhouette, sample_silhouette, silhouette_radius
from pretrain.data.fingerprint.synthetic import (
    DPI,
    FingerprintGenerator,
    GeneratorConfig,
    Master,
    generate_impression,
    generate_master,
    synthetic_fingerprints,
)

__all__ = [
    "CLASSES",
    "CLASS_FREQUENCIES",
    "DPI",
    "FingerprintGenerator",
    "GeneratorConfig",
    "Master",
    "Placement",
    "Silhouette",
    "SingularPoints",
    "gabor_bank",
    "generate_impression",
    "generate_master",
    "grow_ridges",
    "master_coordinates",
    "orientation_field",
    "period_map",
    "render",
    "sample_class",
    "sample_silhouette",
    "sample_singular_points",
    "save_gallery",
    "silhouette_radius",
    "smooth_noise",
    "synthetic_fingerprints",
]
