"""Identification over repeated random enrollment splits, and the face report built from it.

One fixed enrollment split measures a 5-shot accuracy on 100-200 probes, where one probe is
0.5-1 point; the mean over several random splits (each person enrolls k random images, the rest
of that person's images are probes) is the figure to compare models by, with its spread across
splits beside it.

References:
  Qi, Brown, Lowe, "Low-shot learning with imprinted weights", CVPR 2018 (imprinting).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pretrain.evaluation.protocol import (
    SHOTS,
    identification_accuracy,
    identify,
    imprint,
    offered,
    owner_of_labels,
    verification_report,
)

SPLITS = 10


def random_enrollment(
    labels: np.ndarray, shots: int, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per identity, ``shots`` random samples enroll and all the others are probes.

    Returns:
      ``(enroll, probe)`` index arrays.

    Raises:
      ValueError: an identity has no sample left to probe (its count and ``shots`` named).
    """
    labels = np.asarray(labels)
    enroll, probe = [], []
    for identity in np.unique(labels):
        idx = np.flatnonzero(labels == identity)
        if idx.size <= shots:
            raise ValueError(
                f"identity {identity!r} has {idx.size} samples: {shots}-shot enrollment leaves "
                f"none to probe; use people with more than {shots} samples."
            )
        idx = rng.permutation(idx)
        enroll.append(idx[:shots])
        probe.append(idx[shots:])
    return np.concatenate(enroll), np.concatenate(probe)


def repeated_identification(
    features: np.ndarray,
    labels: np.ndarray,
    shots: Sequence[int] = SHOTS,
    *,
    splits: int = SPLITS,
    seed: int = 0,
    owners: np.ndarray | None = None,
) -> dict[str, Any]:
    """k-shot identification by imprinting, over ``splits`` random enrollment splits.

    Split ``i`` of every k draws from ``np.random.default_rng([seed, i])``, so a model compared
    with another under the same seed sees the same enrollments. ``owners``: see
    :func:`pretrain.evaluation.identification_accuracy`.

    Returns:
      ``{"mean": {k: pct}, "std": {k: pct}, "per_split": {k: [pct, ...]}, "splits": n}``.
    """
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}.")
    labels = np.asarray(labels)
    owner_of = None if owners is None else owner_of_labels(labels, owners)
    per_split: dict[str, list[float]] = {str(k): [] for k in shots}
    for i in range(splits):
        for k in shots:
            rng = np.random.default_rng([seed, i, k])
            enroll, probe = random_enrollment(labels, k, rng=rng)
            classes, templates = imprint(features[enroll], labels[enroll])
            allowed = offered(labels[probe], classes, owner_of)
            hits = identify(templates, classes, features[probe], allowed) == labels[probe]
            per_split[str(k)].append(float(100.0 * np.mean(hits)))
    return {
        "mean": {k: float(np.mean(v)) for k, v in per_split.items()},
        "std": {k: float(np.std(v)) for k, v in per_split.items()},
        "per_split": per_split,
        "splits": splits,
    }


def face_report(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    order: np.ndarray | None = None,
    shots: Sequence[int] = SHOTS,
    splits: int = SPLITS,
    seed: int = 0,
    owners: np.ndarray | None = None,
) -> dict[str, Any]:
    """The issue-14 figures of one face set: random-split and fixed-split identification and
    verification over all pairs.

    Args:
      features: ``(n, d)`` embeddings (or any feature vectors).
      labels: ``(n,)`` identities.
      order: rank of each sample within its identity; the fixed split enrolls the first
        ``max(shots)`` (ORL: images 1-5 enroll, 6-10 probe).
      shots, splits, seed, owners: see :func:`repeated_identification`.

    Returns:
      ``identification_pct`` (mean over the random splits), ``identification_pct_std``,
      ``identification_pct_fixed``, ``eer_pct``, ``frr_pct_at_far`` and the pair counts.
    """
    repeated = repeated_identification(
        features, labels, shots, splits=splits, seed=seed, owners=owners
    )
    fixed = identification_accuracy(features, labels, shots, order=order, owners=owners)
    return {
        "identification_pct": repeated["mean"],
        "identification_pct_std": repeated["std"],
        "identification_splits": repeated["splits"],
        "identification_pct_fixed": fixed,
        **verification_report(features, labels, owners),
        "identities": int(np.unique(labels).size),
        "samples": int(np.asarray(labels).size),
    }
