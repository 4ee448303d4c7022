"""The evaluation protocol every later result reports with.

Verification: every genuine pair and every impostor pair across people -> EER and FRR at fixed
FARs. Identification: k-shot enrollment by imprinting (class mean of normalised embeddings),
cosine nearest class. Features may come from a network or from a traditional baseline; the same
code scores both, on the same splits.

References:
  Qi, Brown, Lowe, "Low-shot learning with imprinted weights", CVPR 2018 (imprinting).
  ISO/IEC 19795-1 (biometric performance testing: FAR, FRR, EER).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from devices.cosine import imprint as cosine_imprint
from devices.cosine import normalize as normalize
from devices.verification import eer, frr_at_far, min_impostors_for, pair_scores

FARS = {"1e-2": 1e-2, "1e-3": 1e-3, "2e-5": 1 / 50_000}
SHOTS = (1, 3, 5)


def enroll_probe_split(
    labels: np.ndarray, *, pool: int = 5, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per identity, the first ``pool`` samples (in ``order``) may enroll; the rest are probes.

    Args:
      labels: ``(n,)`` identity of each sample.
      pool: enrollment pool size per identity (k-shot enrollment uses the first k of it).
      order: ``(n,)`` rank of each sample within its identity (e.g. the impression number);
        the dataset order when omitted.

    Returns:
      ``(enroll, probe)`` index arrays; ``enroll`` is sorted so the first k of each identity are
      its k earliest samples.

    Raises:
      ValueError: an identity has no probe left after its pool.
    """
    labels = np.asarray(labels)
    order = np.arange(labels.size) if order is None else np.asarray(order)
    enroll, probe = [], []
    for identity in np.unique(labels):
        idx = np.flatnonzero(labels == identity)
        idx = idx[np.argsort(order[idx], kind="stable")]
        if idx.size <= pool:
            raise ValueError(f"identity {identity!r} has {idx.size} samples: none left to probe.")
        enroll.append(idx[:pool])
        probe.append(idx[pool:])
    return np.concatenate(enroll), np.concatenate(probe)


def imprint(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class templates: the normalised mean of each class's normalised embeddings.

    Returns:
      ``(classes, templates)`` with ``templates[i]`` the unit vector of ``classes[i]``.
    """
    return cosine_imprint(embeddings, labels)


def identify(
    templates: np.ndarray,
    classes: np.ndarray,
    queries: np.ndarray,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """The class of the most cosine-similar template for each query (``(n, d)``, or ``(n, w,
    d)`` windows: each query's best window); ``allowed`` ``(n, classes)``, when given, says
    which classes each query may be given."""
    q = normalize(np.asarray(queries, np.float64))
    sims = q @ templates.T if q.ndim == 2 else np.einsum("nwd,cd->nwc", q, templates).max(axis=1)
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    return classes[np.argmax(sims, axis=1)]


def owner_of_labels(labels: np.ndarray, owners: np.ndarray) -> dict[Any, Any]:
    """``{label: owner}``; raises ValueError when a label has rows of two owners."""
    mapping: dict[Any, Any] = {}
    for label, owner in zip(np.asarray(labels).tolist(), np.asarray(owners).tolist(), strict=True):
        if mapping.setdefault(label, owner) != owner:
            raise ValueError(f"label {label!r} has two owners: {mapping[label]!r} and {owner!r}.")
    return mapping


def offered(
    probe_labels: np.ndarray, classes: np.ndarray, owner_of: dict[Any, Any] | None
) -> np.ndarray | None:
    """``(probes, classes)``: which classes a probe may be given, for :func:`identify` (every
    class but the other labels of the probe's own owner), or None without owners."""
    if owner_of is None:
        return None
    mine = np.asarray([owner_of[c] for c in np.asarray(probe_labels).tolist()])
    theirs = np.asarray([owner_of[c] for c in np.asarray(classes).tolist()])
    return (mine[:, None] != theirs[None, :]) | (np.asarray(probe_labels)[:, None] == classes)


def identification_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    shots: Sequence[int] = SHOTS,
    *,
    order: np.ndarray | None = None,
    owners: np.ndarray | None = None,
) -> dict[str, float]:
    """k-shot identification accuracy (percent) by imprinting, for each k in ``shots``.

    Each identity enrolls its first k samples (see :func:`enroll_probe_split`, pool = max k); the
    probe set is the same for every k. ``features`` ``(n, w, d)`` are windows: the templates are
    imprinted from the first windows and a probe scores its best window (as the device does).
    ``owners`` ``(n,)``, where one owner holds several labels (one finger in two sets): a probe
    is not offered the other labels of its own owner (neither right nor wrong to pick).
    """
    labels = np.asarray(labels)
    first = features if features.ndim == 2 else features[:, 0]
    enroll, probe = enroll_probe_split(labels, pool=max(shots), order=order)
    owner_of = None if owners is None else owner_of_labels(labels, owners)
    out = {}
    for k in shots:
        chosen = np.concatenate([enroll[labels[enroll] == c][:k] for c in np.unique(labels)])
        classes, templates = imprint(first[chosen], labels[chosen])
        allowed = offered(labels[probe], classes, owner_of)
        predicted = identify(templates, classes, features[probe], allowed)
        out[str(k)] = float(100.0 * np.mean(predicted == labels[probe]))
    return out


def verification_report(
    features: np.ndarray, labels: np.ndarray, owners: np.ndarray | None = None
) -> dict[str, Any]:
    """EER and FRR at each FAR of :data:`FARS`, in percent, over all pairs (``owners``: see
    :func:`devices.verification.pair_scores`).

    A FAR the impostor pairs are too few to measure is reported as None, with the count needed.
    """
    return scores_report(*pair_scores(features, labels, owners))


def scores_report(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
    """:func:`verification_report` of pair scores already computed: ``(genuine, impostor)`` as
    :func:`devices.verification.pair_scores` gives them."""
    frr, missing = {}, {}
    for name, far in FARS.items():
        value = frr_at_far(genuine, impostor, far)
        frr[name] = None if value is None else 100.0 * value
        if value is None:
            missing[name] = f"not enough impostor pairs: {impostor.size} < {min_impostors_for(far)}"
    report: dict[str, Any] = {
        "eer_pct": 100.0 * eer(genuine, impostor),
        "frr_pct_at_far": frr,
        "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size),
    }
    if missing:
        report["frr_not_measured"] = missing
    return report


def evaluate_features(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    shots: Sequence[int] = SHOTS,
    order: np.ndarray | None = None,
    owners: np.ndarray | None = None,
) -> dict[str, Any]:
    """Verification report plus k-shot identification, for any feature vectors (``owners``:
    where one owner holds several labels, see :func:`identification_accuracy`)."""
    return {
        **verification_report(features, labels, owners),
        "identification_pct": identification_accuracy(
            features, labels, shots, order=order, owners=owners
        ),
    }
