"""The evaluation protocol: verification (EER, FRR at FAR) and k-shot identification."""

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

__all__ = [
    "BASELINES",
    "FARS",
    "SHOTS",
    "enroll_probe_split",
    "evaluate_features",
    "hog_features",
    "identification_accuracy",
    "identify",
    "imprint",
    "lbp_features",
    "normalize",
    "verification_report",
]
