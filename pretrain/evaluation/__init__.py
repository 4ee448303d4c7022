"""The evaluation protocol: verification (EER, FRR at FAR) and k-shot identification (fixed or
over repeated random enrollment splits)."""

from pretrain.evaluation.baselines import BASELINES, hog_features, lbp_features
from pretrain.evaluation.protocol import (
    FARS,
    SHOTS,
    enroll_probe_split,
    evaluate_features,
    identification_accuracy,
    identify,
    imprint,
    normalize,
    verification_report,
)
from pretrain.evaluation.repeated import (
    SPLITS,
    face_report,
    random_enrollment,
    repeated_identification,
)

__all__ = [
    "BASELINES",
    "FARS",
    "SHOTS",
    "SPLITS",
    "enroll_probe_split",
    "evaluate_features",
    "face_report",
    "hog_features",
    "identification_accuracy",
    "identify",
    "imprint",
    "lbp_features",
    "normalize",
    "random_enrollment",
    "repeated_identification",
    "verification_report",
]
