"""Test-time variants of a face backbone, scored on the LFW dev people (and ORL, reported).

Each variant is a way to turn a trained backbone into the vectors (or scores) a device would
compare, without retraining: the embedding as trained, flip averaging (the image and its mirror),
the pooled features before the embedding's projection, whitening fitted on a role that is
neither dev nor evaluation, and cohort score normalisation against the background people an
artifact ships. The dev people choose; ORL is only reported.

References:
  Hasnat et al., "von Mises-Fisher mixture model-based deep learning: application to face
  verification", 2017 (flip-averaged embeddings are a common test-time choice).
  Matejka et al., "Analysis of score normalization in multilingual speaker recognition",
  Interspeech 2017 (adaptive symmetric score normalisation, AS-norm).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import numpy as np

from devices.cosine import normalize
from devices.verification import eer, frr_at_far
from pretrain.data import ArrayDataset
from pretrain.embedding.suites import embed, within_identity_order
from pretrain.evaluation.protocol import FARS
from pretrain.evaluation.repeated import face_report
from pretrain.models.embednet import one_view

# Whitening's ridge: this fraction of the mean eigenvalue is added to every eigenvalue.
WHITEN_RIDGE = 1e-3
# AS-norm: each side's score statistics over its most similar cohort members.
COHORT_TOP = 200


class Whitener(NamedTuple):
    """``x -> (x - mean) @ transform``, fitted on one set of vectors."""

    mean: np.ndarray
    transform: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) @ self.transform


def fit_whitener(vectors: np.ndarray, *, ridge: float = WHITEN_RIDGE) -> Whitener:
    """PCA whitening of ``vectors`` (rows), eigenvalues ridged by ``ridge`` x their mean."""
    x = normalize(np.asarray(vectors, np.float64))
    mean = x.mean(axis=0)
    cov = np.cov((x - mean).T)
    values, vecs = np.linalg.eigh(cov + ridge * np.trace(cov) / len(cov) * np.eye(len(cov)))
    return Whitener(mean, vecs / np.sqrt(values))


def pooled_features(module: nn.Module, params: Any, images: np.ndarray) -> np.ndarray:
    """The pooled, feature-normalised vector the embedding layer projects (EmbedNet)."""
    blocks = len(module.widths)
    maps = embed(one_view(module, stop_after=blocks), params, images)
    x = maps.mean(axis=(1, 2))
    x = x - x.mean(axis=-1, keepdims=True)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6)


def embeddings(module: nn.Module, params: Any, images: np.ndarray, *, flip: bool) -> np.ndarray:
    """The model's embeddings of ``images``, flip-averaged (by the model itself) when ``flip``."""
    return embed(one_view(module, flip_average=flip), params, images)


def as_norm_pairs(
    features: np.ndarray, labels: np.ndarray, cohort: np.ndarray, *, top: int = COHORT_TOP
) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor scores of every unordered pair after AS-norm against ``cohort``.

    ``s'(a, b) = ((s - mu_a) / sd_a + (s - mu_b) / sd_b) / 2``, with ``mu_a, sd_a`` the mean and
    spread of ``a``'s cosines to its ``top`` most similar cohort members.
    """
    x, c = normalize(np.asarray(features, np.float64)), normalize(np.asarray(cohort, np.float64))
    top = min(top, len(c))
    nearest = np.sort(x @ c.T, axis=1)[:, -top:]
    mu, sd = nearest.mean(axis=1), nearest.std(axis=1)
    sim = x @ x.T
    s = 0.5 * ((sim - mu[:, None]) / sd[:, None] + (sim - mu[None, :]) / sd[None, :])
    i, j = np.triu_indices(len(x), k=1)
    same = np.asarray(labels)[i] == np.asarray(labels)[j]
    return s[i, j][same], s[i, j][~same]


def pair_figures(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
    """EER and FRR at each FAR (percent) of precomputed pair scores."""
    frr = {}
    for name, far in FARS.items():
        value = frr_at_far(genuine, impostor, far)
        frr[name] = None if value is None else 100.0 * value
    return {"eer_pct": 100.0 * eer(genuine, impostor), "frr_pct_at_far": frr}


VARIANTS = (
    "embedding",
    "embedding_flip",
    "pooled",
    "pooled_flip",
    "flip_whitened_background",
    "flip_whitened_train",
    "flip_as_norm_background",
)


def score_variants(
    module: nn.Module,
    params: Any,
    sets: Mapping[str, ArrayDataset],
    *,
    background: ArrayDataset,
    train: ArrayDataset,
    splits: int = 10,
    progress: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Every variant of :data:`VARIANTS` on every set: ``{variant: {set: face report}}``.

    Args:
      module, params: the backbone (EmbedNet).
      sets: the sets scored (``{"dev": ..., "orl": ...}``).
      background: the background role (fits whitening; the AS-norm cohort).
      train: training people's images (fits the other whitening).
      splits: random enrollment splits of the identification figures.
    """

    def vectors(kind: str, flip: bool) -> Callable[[np.ndarray], np.ndarray]:
        if kind == "pooled":
            plain = lambda x: pooled_features(module, params, x)  # noqa: E731
            return lambda x: (plain(x) + plain(x[:, :, ::-1])) / 2 if flip else plain(x)
        return lambda x: embeddings(module, params, x, flip=flip)

    out: dict[str, dict[str, Any]] = {}
    flip_vec = vectors("embedding", True)
    flipped = {name: flip_vec(data.images) for name, data in sets.items()}
    cohort = flip_vec(background.images)
    whiteners = {"background": fit_whitener(cohort), "train": fit_whitener(flip_vec(train.images))}
    for variant in VARIANTS:
        progress(f"variant {variant}")
        out[variant] = {}
        for name, data in sets.items():
            order = within_identity_order(data.labels)
            if variant in ("embedding", "pooled", "pooled_flip"):
                kind = "pooled" if variant.startswith("pooled") else "embedding"
                feats = vectors(kind, variant.endswith("flip"))(data.images)
            elif variant.startswith("flip_whitened_"):
                feats = whiteners[variant.removeprefix("flip_whitened_")](flipped[name])
            else:
                feats = flipped[name]
            report = face_report(feats, data.labels, order=order, splits=splits)
            if variant == "flip_as_norm_background":
                # Scores change, identification (nearest template) is the flipped embedding's.
                report.update(pair_figures(*as_norm_pairs(feats, data.labels, cohort)))
            out[variant][name] = report
    return out
