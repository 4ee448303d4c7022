"""Enrollment episodes: random enroll/probe splits, matching rules over them, paired statistics.

A fixed split of a small evaluation set (100 face probes) measures one draw; the same comparison
over several random splits, paired split by split, says how far a difference is from noise.
Numpy (and scipy's Student t) only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from devices.cosine import normalize


def enrollment_pools(
    labels: np.ndarray, *, pool: int, episode: int = 0, order: np.ndarray | None = None
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Per identity, the indices of its enrollment pool (k-shot enrolls the first k), and the
    probe mask (the rest of its captures).

    Episode 0 is the fixed split: the first ``pool`` captures in ``order`` (default the dataset
    order). Episode ``e > 0`` draws each identity's pool at random with seed ``e``.
    """
    labels = np.asarray(labels)
    order = np.arange(len(labels)) if order is None else np.asarray(order)
    pools, probe = {}, np.zeros(len(labels), bool)
    rng = np.random.default_rng(episode)
    for identity in np.unique(labels):
        idx = np.flatnonzero(labels == identity)
        idx = rng.permutation(idx) if episode else idx[np.argsort(order[idx], kind="stable")]
        pools[int(identity)] = idx[:pool]
        probe[idx[pool:]] = True
    return pools, probe


def matching_rules(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    episodes: int,
    shots: Sequence[int],
    pool: int,
    order: np.ndarray | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Closed-set identification (percent) on episodes ``1..episodes`` by two rules over cosine
    similarities: to each person's mean embedding (``class_mean``: what imprinting stores) and
    the best to any one of their enrollment embeddings (``nearest_sample``: templates).

    Returns:
      ``{rule: {str(k): [percent per episode]}}``.
    """
    e, labels = normalize(embeddings), np.asarray(labels)
    out: dict[str, dict[str, list[float]]] = {"class_mean": {}, "nearest_sample": {}}
    for episode in range(1, episodes + 1):
        pools, probe = enrollment_pools(labels, pool=pool, episode=episode, order=order)
        ids = np.asarray(sorted(pools))
        for k in shots:
            means = normalize(np.stack([e[pools[i][:k]].mean(axis=0) for i in ids]))
            nearest = np.stack([(e[probe] @ e[pools[i][:k]].T).max(axis=1) for i in ids], axis=1)
            for rule, scores in (("class_mean", e[probe] @ means.T), ("nearest_sample", nearest)):
                hit = ids[np.argmax(scores, axis=1)] == labels[probe]
                out[rule].setdefault(str(k), []).append(float(100 * hit.mean()))
    return out


def paired_difference(ours: Sequence[float], theirs: Sequence[float]) -> dict[str, Any]:
    """Mean of the per-episode differences ``ours - theirs`` and its 95% confidence interval
    (Student t over the episodes).

    Raises:
      ValueError: unequal lengths, or fewer than 2 episodes.
    """
    if len(ours) != len(theirs) or len(ours) < 2:
        raise ValueError(f"need >= 2 paired episodes, got {len(ours)} and {len(theirs)} values.")
    d = np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)
    half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
    mean = float(d.mean())
    return {"mean": mean, "ci95": [mean - half, mean + half], "per_episode": d.tolist()}
