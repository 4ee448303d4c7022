"""Verification error rates from similarity scores: ROC, EER, FRR at a FAR, the threshold for a FAR.

Numpy only: the server's evaluation and the phone's accept/reject threshold use the same
arithmetic. Scores are similarities (higher = more alike); a comparison is accepted when
``score >= threshold``.

Conventions (ISO/IEC 19795-1 terms): FAR = accepted impostor comparisons / impostor comparisons,
FRR = rejected genuine comparisons / genuine comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from devices.cosine import normalize


class Roc(NamedTuple):
    """FAR and FRR at each candidate threshold (ascending thresholds)."""

    thresholds: np.ndarray
    far: np.ndarray
    frr: np.ndarray


def _scores(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"no {what} scores.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} scores contain NaN or infinity.")
    return array


def roc(genuine: np.ndarray, impostor: np.ndarray) -> Roc:
    """FAR and FRR at every distinct score used as a threshold, plus one above the maximum."""
    gen, imp = np.sort(_scores(genuine, "genuine")), np.sort(_scores(impostor, "impostor"))
    thresholds = np.unique(np.concatenate([gen, imp]))
    thresholds = np.append(thresholds, np.nextafter(thresholds[-1], np.inf))
    # accept iff score >= t: accepted impostors = those not strictly below t.
    far = 1.0 - np.searchsorted(imp, thresholds, side="left") / imp.size
    frr = np.searchsorted(gen, thresholds, side="left") / gen.size
    return Roc(thresholds, far, frr)


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Equal error rate (0..1): where FAR and FRR cross, interpolated linearly between thresholds."""
    curve = roc(genuine, impostor)
    diff = curve.far - curve.frr  # decreasing from >= 0 to <= 0 as the threshold rises
    i = int(np.argmax(diff <= 0))
    if i == 0:
        return float((curve.far[0] + curve.frr[0]) / 2)
    d0, d1 = diff[i - 1], diff[i]
    w = d0 / (d0 - d1) if d0 != d1 else 0.5
    far = curve.far[i - 1] + w * (curve.far[i] - curve.far[i - 1])
    frr = curve.frr[i - 1] + w * (curve.frr[i] - curve.frr[i - 1])
    return float((far + frr) / 2)


def min_impostors_for(far: float) -> int:
    """Impostor comparisons needed before a FAR of ``far`` can be measured at all (``1 / far``)."""
    if not 0.0 < far < 1.0:
        raise ValueError(f"target FAR must be in (0, 1), got {far}.")
    return int(np.ceil(1.0 / far - 1e-9))


def threshold_for_far(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold whose FAR on ``impostor`` is at most ``far``.

    Args:
      impostor: impostor similarity scores (e.g. the owner's template against background people).
      far: target false accept rate in (0, 1).

    Returns:
      A threshold ``t``: at most ``floor(far * n)`` of the ``n`` impostor scores are ``>= t``.

    Raises:
      ValueError: fewer than ``1 / far`` impostor scores: the FAR cannot be measured, so no
        threshold can honestly claim it.
    """
    imp = np.sort(_scores(impostor, "impostor"))
    need = min_impostors_for(far)
    if imp.size < need:
        raise ValueError(
            f"not enough impostor scores for FAR {far:g}: have {imp.size}, need at least {need}."
        )
    allowed = int(np.floor(far * imp.size + 1e-9))  # impostors that may be accepted
    # Accept strictly above the (allowed+1)-th highest impostor score.
    return float(np.nextafter(imp[imp.size - allowed - 1], np.inf))


def frr_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float | None:
    """FRR (0..1) at the threshold :func:`threshold_for_far` gives, or None when the impostor
    set is too small to measure ``far`` ("not enough impostor pairs")."""
    imp = _scores(impostor, "impostor")
    if imp.size < min_impostors_for(far):
        return None
    t = threshold_for_far(imp, far)
    gen = _scores(genuine, "genuine")
    return float(np.mean(gen < t))


def pair_scores(
    embeddings: np.ndarray, labels: np.ndarray, owners: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of every unordered pair: ``(genuine, impostor)``.

    Args:
      embeddings: ``(n, d)``; normalised here, so any scale works. Or ``(n, w, d)``: each
        sample's windows (a print's registration hypotheses), a pair scoring the best cosine
        over the two samples' windows.
      labels: ``(n,)`` identity of each row.
      owners: ``(n,)`` whose each row is, where one owner holds several labels (one finger
        captured in two sets): a pair of two labels of one owner is neither genuine nor
        impostor, and is left out.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim not in (2, 3) or labels.shape != (x.shape[0],):
        raise ValueError(
            f"need (n, d) or (n, windows, d) embeddings and (n,) labels, got {x.shape} and "
            f"{labels.shape}."
        )
    if owners is not None and np.shape(owners) != labels.shape:
        raise ValueError(f"owners of shape {np.shape(owners)}: expected {labels.shape}.")
    x = normalize(x)
    if x.ndim == 2:
        sim = x @ x.T
    else:
        windows = range(x.shape[1])
        sim = np.max([x[:, a] @ x[:, b].T for a in windows for b in windows], axis=0)
    i, j, same = _unordered_pairs(labels)
    other = ~same
    if owners is not None:
        owner = np.asarray(owners)
        other &= owner[i] != owner[j]
    return sim[i, j][same], sim[i, j][other]


def _unordered_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair of rows ``(i, j)``, ``i < j``, and whether it shares a label."""
    labels = np.asarray(labels)
    i, j = np.triu_indices(labels.shape[0], k=1)
    return i, j, labels[i] == labels[j]


def genuine_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``(i, j)``, ``i < j``, of every genuine pair, in :func:`pair_scores`' order of
    its genuine scores."""
    i, j, same = _unordered_pairs(labels)
    return i[same], j[same]


class Attempts(NamedTuple):
    """Accept/reject counts of verification attempts at per-user thresholds."""

    far: float
    frr: float
    impostor_attempts: int
    impostor_accepts: int
    genuine_attempts: int
    genuine_rejects: int


def count_attempts(
    scores: np.ndarray, thresholds: np.ndarray, genuine: np.ndarray, impostor: np.ndarray
) -> Attempts:
    """FAR and FRR of a score matrix against each user's threshold.

    Args:
      scores: ``(captures, users)`` similarities.
      thresholds: ``(users,)``; a capture is accepted for a user when ``score >= threshold``.
      genuine: ``(captures, users)`` bool, the attempts that are the user's own probes.
      impostor: ``(captures, users)`` bool, the attempts by other people.
    """
    s = np.asarray(scores, np.float64)
    t = np.asarray(thresholds, np.float64)
    if s.ndim != 2 or t.shape != (s.shape[1],) or not genuine.shape == impostor.shape == s.shape:
        raise ValueError(
            f"need (captures, users) scores and masks and (users,) thresholds, got {s.shape}, "
            f"{t.shape}, {genuine.shape}, {impostor.shape}."
        )
    accept = s >= t[None, :]
    n_imp, n_gen = int(impostor.sum()), int(genuine.sum())
    if n_imp == 0:
        raise ValueError("no impostor attempts.")
    acc, rej = int(accept[impostor].sum()), int((~accept[genuine]).sum())
    frr = rej / n_gen if n_gen else float("nan")
    return Attempts(acc / n_imp, frr, n_imp, acc, n_gen, rej)


def impostor_counts(
    scores: np.ndarray,
    thresholds: np.ndarray,
    capture_people: np.ndarray,
    users: np.ndarray,
    impostor: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Impostor attempts and accepts of a score matrix, by (user, impostor person).

    Args:
      scores, thresholds, impostor: as :func:`count_attempts`.
      capture_people: ``(captures,)`` who gave each capture.
      users: ``(users,)`` who each enrolled user is (the same labels).

    Returns:
      ``(people, accepts, attempts)``: the sorted labels of users and captures, and ``(p, p)``
      counts, row = the enrolled person, column = the impostor (zero on the diagonal).
    """
    s = np.asarray(scores, np.float64)
    accept = (s >= np.asarray(thresholds, np.float64)[None, :]) & impostor
    people = np.unique(np.concatenate([np.asarray(capture_people), np.asarray(users)]))
    rows = np.searchsorted(people, np.asarray(users))
    cols = np.searchsorted(people, np.asarray(capture_people))
    accepts = np.zeros((people.size, people.size), np.int64)
    attempts = np.zeros_like(accepts)
    for u, row in enumerate(rows):
        np.add.at(accepts[row], cols, accept[:, u])
        np.add.at(attempts[row], cols, impostor[:, u])
    return people, accepts, attempts


def accepting_pairs(accepts: np.ndarray) -> list[tuple[int, int, int]]:
    """``(row, column, accepts)`` of every cell of :func:`impostor_counts`' ``accepts`` (row =
    the enrolled person, column = the impostor) with an accepted attempt, the most accepts
    first, ties in row-major order: whether a few lookalikes make a FAR."""
    rows, cols = np.nonzero(accepts)
    counts = np.asarray(accepts)[rows, cols]
    order = np.argsort(-counts, kind="stable")
    return [(int(rows[k]), int(cols[k]), int(counts[k])) for k in order]


def far_by_group(
    accepts: np.ndarray, attempts: np.ndarray, groups: Sequence[str]
) -> dict[str, dict[str, float]]:
    """:func:`impostor_counts`' counts split by whether the impostor comes from the enrolled
    person's group (``groups[k]`` names person ``k``'s: the sensor set a print came from) or
    another: ``{"same_group" | "other_group": {"attempts", "accepts", "far"}}`` (``far`` NaN
    with no attempts). On a phone an impostor meets the owner's own sensor: the same group."""
    g = np.asarray(groups)
    same = g[:, None] == g[None, :]
    out = {}
    for name, cells in (("same_group", same), ("other_group", ~same)):
        tried, took = int(np.asarray(attempts)[cells].sum()), int(np.asarray(accepts)[cells].sum())
        out[name] = {"attempts": tried, "accepts": took, "far": took / tried if tried else math.nan}
    return out


def draw_people(rng: np.random.Generator, n: int) -> np.ndarray:
    """A bootstrap draw of ``n`` of ``n`` people (indices) with replacement, at least two of
    them distinct: a draw of one person has no impostor comparison, and is drawn again."""
    while True:
        drawn = np.asarray(rng.integers(0, n, size=n))
        if np.unique(drawn).size >= 2:
            return drawn


def bootstrap_interval(values: np.ndarray, level: float) -> list[float]:
    """The percentile interval ``[low, high]`` holding ``level`` of bootstrap ``values``."""
    tail = 100 * (1 - level) / 2
    return [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def far_interval(
    accepts: np.ndarray,
    attempts: np.ndarray,
    *,
    rounds: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> list[float]:
    """A bootstrap interval of the FAR over people (the sampled unit: attempts of one pair of
    people are not independent), from :func:`impostor_counts`' ``(p, p)`` counts: each draw
    takes ``p`` people with replacement and sums the counts between draws of different people.

    Returns:
      ``[low, high]`` FAR (0..1) at ``level``.
    """
    a, n = np.asarray(accepts, np.float64), np.asarray(attempts, np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != n.shape or a.shape[0] < 2:
        raise ValueError(f"need (p, p) accepts and attempts, p >= 2; got {a.shape}, {n.shape}.")
    if rounds < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need rounds >= 1 and level in (0, 1), got {rounds} and {level}.")
    p = a.shape[0]
    if not (n * (1 - np.eye(p))).sum() > 0:
        raise ValueError("no impostor attempts between different people.")
    rng = np.random.default_rng(seed)
    values: list[float] = []
    while len(values) < rounds:
        drawn = draw_people(rng, p)
        cells = np.ix_(drawn, drawn)
        other = drawn[:, None] != drawn[None, :]
        tried = float((n[cells] * other).sum())
        if tried > 0:  # people drawn with no attempt between them: drawn again
            values.append(float((a[cells] * other).sum()) / tried)
    return bootstrap_interval(np.asarray(values), level)
