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


def identify(templates: np.ndarray, classes: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The class of the most cosine-similar template for each query (``(n, d)``, or ``(n, w,
    d)`` windows: each query's best window)."""
    q = normalize(np.asarray(queries, np.float64))
    sims = q @ templates.T if q.ndim == 2 else np.einsum("nwd,cd->nwc", q, templates).max(axis=1)
    return classes[np.argmax(sims, axis=1)]


def identification_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    shots: Sequence[int] = SHOTS,
    *,
    order: np.ndarray | None = None,
) -> dict[str, float]:
    """k-shot identification accuracy (percent) by imprinting, for each k in ``shots``.

    Each identity enrolls its first k samples (see :func:`enroll_probe_split`, pool = max k); the
    probe set is the same for every k. ``features`` ``(n, w, d)`` are windows: the templates are
    imprinted from the first windows and a probe scores its best window (as the device does).
    """
    labels = np.asarray(labels)
    first = features if features.ndim == 2 else features[:, 0]
    enroll, probe = enroll_probe_split(labels, pool=max(shots), order=order)
    out = {}
    for k in shots:
        chosen = np.concatenate([enroll[labels[enroll] == c][:k] for c in np.unique(labels)])
        classes, templates = imprint(first[chosen], labels[chosen])
        predicted = identify(templates, classes, features[probe])
        out[str(k)] = float(100.0 * np.mean(predicted == labels[probe]))
    return out


def verification_report(features: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """EER and FRR at each FAR of :data:`FARS`, in percent, over all pairs.

    A FAR the impostor pairs are too few to measure is reported as None, with the count needed.
    """
    genuine, impostor = pair_scores(features, labels)
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
) -> dict[str, Any]:
    """Verification report plus k-shot identification, for any feature vectors."""
    return {
        **verification_report(features, labels),
        "identification_pct": identification_accuracy(features, labels, shots, order=order),
    }
