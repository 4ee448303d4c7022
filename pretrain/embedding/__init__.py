"""Identity embeddings: contrastive and margin-softmax tasks, identity datasets, evaluation suites.

Importing this package registers the tasks ``"contrastive"`` and ``"margin_softmax"`` (with
:mod:`pretrain.train.tasks`), the datasets ``"synthetic_fingerprints"`` and ``"orl_faces"`` (with
:mod:`pretrain.train.datasets`) and the evaluation suites ``"face"`` and ``"fingerprint"``.
``import pretrain`` imports it.
"""

from pretrain.embedding.augment import Augment, augment_batch, make_augment
from pretrain.embedding.cache import cache_dir, cached
from pretrain.embedding.data import (
    IdentityRanges,
    epochs_for_steps,
    face_options,
    face_spec,
    identity_ranges,
    orl_splits,
    orl_subjects,
    synthetic_fingerprint_splits,
    synthetic_prints,
    synthetic_test_set,
)
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
)
from pretrain.embedding.tasks import Contrastive, MarginSoftmax

__all__ = [
    "Augment",
    "Contrastive",
    "IdentityRanges",
    "MarginSoftmax",
    "augment_batch",
    "cache_dir",
    "cached",
    "cosine_logits",
    "embed",
    "epochs_for_steps",
    "face_options",
    "face_spec",
    "face_suite",
    "fingerprint_suite",
    "fvc_sensor_sets",
    "identity_ranges",
    "l2_normalize",
    "make_augment",
    "margin_logits",
    "margin_softmax_loss",
    "nt_xent",
    "orl_splits",
    "orl_subjects",
    "register_suite",
    "run_suite",
    "score",
    "suite_names",
    "synthetic_fingerprint_splits",
    "synthetic_prints",
    "synthetic_test_set",
]
