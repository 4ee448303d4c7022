"""The evaluation protocol: verification (EER, FRR at FAR) and k-shot identification."""

from pretrain.evaluation.baselines import BASELINES, hog_features, lbp_features
from pretrain.evaluation.fvc_protocol import (
    FvcProtocolError,
    MakeScorer,
    cosine_scorer,
    default_prepare,
    evaluate_fvc,
    features_scorer,
    fnmr_at_fmr,
    fvc_pairs,
    impression_numbers,
    scores_report,
    set_report,
)
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
    "FvcProtocolError",
    "MakeScorer",
    "SHOTS",
    "cosine_scorer",
    "default_prepare",
    "enroll_probe_split",
    "evaluate_features",
    "evaluate_fvc",
    "features_scorer",
    "fnmr_at_fmr",
    "fvc_pairs",
    "hog_features",
    "identification_accuracy",
    "identify",
    "impression_numbers",
    "imprint",
    "lbp_features",
    "normalize",
    "scores_report",
    "set_report",
    "verification_report",
]
