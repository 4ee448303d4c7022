"""Identity embeddings: contrastive and margin-softmax tasks, identity datasets, evaluation suites.

Importing this package registers the tasks ``"contrastive"`` and ``"margin_softmax"`` (with
:mod:`pretrain.train.tasks`), the datasets ``"synthetic_fingerprints"``, ``"orl_faces"`` and ``"lfw_yale_b"`` (with
:mod:`pretrain.train.datasets`) and the evaluation suites ``"face"``, ``"faces"`` and ``"fingerprint"``.
``import pretrain`` imports it.
"""

from pretrain.embedding.augment import (
    CONTRASTIVE_FACE_AUGMENT,
    FACE_AUGMENT,
    Augment,
    augment_batch,
    make_augment,
)
from pretrain.embedding.cache import cache_dir, cached
from pretrain.embedding.data import (
    IdentityRanges,
    epochs_for_steps,
    face_options,
    face_spec,
    fingerprint_spec,
    identity_ranges,
    orl_splits,
    orl_subjects,
    print_options,
    print_ranges,
    print_spec,
    synthetic_fingerprint_splits,
    synthetic_prints,
    synthetic_test_set,
    synthetic_val_set,
)
from pretrain.embedding.face_data import (
    FaceRoles,
    RoleOptions,
    face_input_spec,
    framed_faces,
    lfw_dev_set,
    lfw_role_set,
    lfw_roles,
    lfw_yale_splits,
    roles_for,
)
from pretrain.embedding.face_suite import (
    checkpoint_model_params,
    faces_suite,
    orl_faces,
    score_set,
)
from pretrain.embedding.face_variants import VARIANTS, score_variants
from pretrain.embedding.losses import (
    cosine_logits,
    l2_normalize,
    margin_logits,
    margin_softmax_loss,
    nt_xent,
)
from pretrain.embedding.suites import (
    embed,
    face_suite,
    fingerprint_suite,
    fvc_sensor_sets,
    register_suite,
    run_suite,
    score,
    suite_names,
    synthetic_report,
)
from pretrain.embedding.tasks import Contrastive, MarginSoftmax

__all__ = [
    "CONTRASTIVE_FACE_AUGMENT",
    "FACE_AUGMENT",
    "VARIANTS",
    "Augment",
    "Contrastive",
    "FaceRoles",
    "IdentityRanges",
    "MarginSoftmax",
    "RoleOptions",
    "augment_batch",
    "cache_dir",
    "cached",
    "checkpoint_model_params",
    "cosine_logits",
    "embed",
    "epochs_for_steps",
    "face_input_spec",
    "face_options",
    "face_spec",
    "face_suite",
    "faces_suite",
    "fingerprint_spec",
    "fingerprint_suite",
    "framed_faces",
    "fvc_sensor_sets",
    "identity_ranges",
    "l2_normalize",
    "lfw_dev_set",
    "lfw_role_set",
    "lfw_roles",
    "lfw_yale_splits",
    "make_augment",
    "margin_logits",
    "margin_softmax_loss",
    "nt_xent",
    "orl_faces",
    "orl_splits",
    "orl_subjects",
    "print_options",
    "print_ranges",
    "print_spec",
    "register_suite",
    "roles_for",
    "run_suite",
    "score",
    "score_set",
    "score_variants",
    "suite_names",
    "synthetic_fingerprint_splits",
    "synthetic_prints",
    "synthetic_report",
    "synthetic_test_set",
    "synthetic_val_set",
]
