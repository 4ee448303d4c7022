"""A per-user accept threshold for a target false accept rate, from background impostor scores.

With ``n`` impostor scores the empirical FAR can only be resolved down to ``1 / n`` (2,000
background people cannot show a FAR of 1/50,000), so the upper tail is modelled instead
(peaks over threshold): the excesses of the top ``k = max(20, n // 10)`` scores over the
``(k+1)``-th highest, ``u``, follow a generalised Pareto distribution (GPD), and

    P(S > u + y) = (k / n) * (1 + xi * y / sigma) ** (-1 / xi)   (exp(-y / sigma) at xi = 0)

is solved for ``P(S >= t) = far``. The shape is fixed at ``xi = 0`` (an exponential tail, the
domain of Gaussian-like score distributions; ``sigma`` = the mean excess, its maximum-likelihood
estimate): a shape estimated from ~100 points is too noisy to extrapolate three decades. Checked
on 50 draws of n = 1,000 scores each for FAR 2e-5: Gaussian scores got a median true FAR of 6e-8
(conservative; never above the target), Student-t with 10 degrees of freedom 2.7e-5; with the
shape estimated by probability-weighted moments (clipped to <= 0), Gaussian scores got 1.1e-4,
5x the target. Heavier tails than t10 exceed the target. The PWM shape is still reported, as a
diagnostic. The threshold is never below the highest impostor score seen. When ``n >= 1 / far``
the empirical threshold (:func:`devices.verification.threshold_for_far`) is used as is.

Cosine scores (``cosine=True``, what the device uses) are bounded by 1, which an exponential tail
ignores: from 100 background scores it extrapolated thresholds above 1, which no probe can reach.
They are fitted in Fisher's z = atanh(s), unbounded and near Gaussian for correlations, and the
threshold is mapped back with tanh, so it always lies below 1.

References:
  Pickands, "Statistical inference using extreme order statistics", Ann. Statist. 1975.
  Hosking, Wallis, "Parameter and quantile estimation for the generalized Pareto distribution",
  Technometrics 1987 (probability-weighted moments).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from devices.verification import min_impostors_for, threshold_for_far


class TailFit(NamedTuple):
    """The fitted upper tail and the threshold it gives."""

    threshold: float
    method: str  # "empirical" or "exponential_tail"
    impostors: int
    tail: int  # k, the top scores the tail was fitted on (0 for empirical)
    xi: float  # the PWM shape estimate (diagnostic; the threshold uses xi = 0)
    sigma: float
    u: float


def gpd_pwm(excesses: np.ndarray) -> tuple[float, float]:
    """``(xi, sigma)`` of a GPD fitted to positive excesses by probability-weighted moments."""
    y = np.sort(np.asarray(excesses, np.float64))
    m = y.size
    a0 = float(y.mean())
    a1 = float(np.sum(y * (m - 1 - np.arange(m)) / (m - 1)) / m)  # E[Y (1 - F(Y))]
    if a0 <= 0 or a0 - 2 * a1 <= 0:
        return 0.0, max(a0, 1e-12)
    k = a0 / (a0 - 2 * a1) - 2.0  # Hosking-Wallis shape, k = -xi
    sigma = 2.0 * a0 * a1 / (a0 - 2 * a1)
    return -k, max(sigma, 1e-12)


def threshold_at_far(
    impostor_scores: np.ndarray, far: float, *, tail: int | None = None, cosine: bool = False
) -> TailFit:
    """The lowest score to accept so that impostors pass with probability ``far``.

    Args:
      impostor_scores: scores of background impostors against the user (higher = more alike).
      far: target false accept rate in (0, 1), e.g. ``1 / 50_000``.
      tail: top scores used for the GPD fit; default ``max(20, n // 10)``.
      cosine: the scores are cosines in [-1, 1]: fit the tail in Fisher's z (see module doc).

    Raises:
      ValueError: fewer than 40 scores, non-finite scores or a FAR outside (0, 1).
    """
    s = np.sort(np.asarray(impostor_scores, np.float64).ravel())
    if not 0.0 < far < 1.0:
        raise ValueError(f"target FAR must be in (0, 1), got {far}.")
    if s.size < 40 or not np.all(np.isfinite(s)):
        raise ValueError(f"need at least 40 finite impostor scores, got {s.size}.")
    n = s.size
    if n >= min_impostors_for(far):
        return TailFit(threshold_for_far(s, far), "empirical", n, 0, 0.0, 0.0, float(s[-1]))
    if cosine and (s[0] < -1.0 - 1e-3 or s[-1] > 1.0 + 1e-3):
        raise ValueError(f"cosine scores must lie in [-1, 1], got [{s[0]:.4g}, {s[-1]:.4g}].")
    z = np.arctanh(np.clip(s, -1.0 + 1e-7, 1.0 - 1e-7)) if cosine else s
    k = min(n - 1, tail if tail is not None else max(20, n // 10))
    u = float(z[n - k - 1])
    excesses = z[n - k :] - u
    xi, _ = gpd_pwm(excesses)
    sigma = float(excesses.mean())
    zt = u + sigma * float(np.log((k / n) / far))
    t = float(np.tanh(zt)) if cosine else zt
    t = max(t, float(np.nextafter(s[-1], np.inf)))
    method = "exponential_tail_fisher_z" if cosine else "exponential_tail"
    return TailFit(t, method, n, k, float(xi), sigma, u)


def fused_threshold_at_far(impostor_scores: np.ndarray, far: float, weight: float) -> TailFit:
    """:func:`threshold_at_far` for fused fingerprint scores: a cosine plus ``weight`` times a
    minutiae score in [0, 1] (:mod:`personalize.fusion`), so bounded by ``[-1, 1 + weight]``.
    They are fitted as cosines are, in Fisher's z, once divided by ``1 + weight`` (a monotone
    map: the accept decision is the same score's), and the threshold is mapped back.

    Why (``notebooks/results/fingerprint_ablation.md``, "The fused threshold in Fisher's z"): an
    exponential tail on the raw fused scale ignores their bound as it did the cosines'. On fresh
    synthetic identities 4500-4599 (never trained on, chosen there; 3 splits, 237,600 impostor
    attempts a target), fused records' FRR at 2e-5 went 63.1 -> 41.8% (FAR over target 4.0 ->
    8.0; the embedding alone 54.2% at 7.6) and at 1e-3 12.2 -> 6.4% (2.1 -> 2.7; alone 11.9% at
    2.9).

    Raises:
      ValueError: as :func:`threshold_at_far`, or a negative ``weight``.
    """
    if not weight >= 0.0:
        raise ValueError(f"the minutiae weight must be >= 0, got {weight}.")
    scale = 1.0 + weight
    s = np.asarray(impostor_scores, np.float64)
    fit = threshold_at_far(s / scale, far, cosine=True)
    threshold = fit.threshold * scale
    if fit.method != "empirical":  # never below the highest impostor score seen
        threshold = max(threshold, float(np.nextafter(s.max(), np.inf)))
    return fit._replace(threshold=threshold, method=f"{fit.method}_fused")


# -- score normalization against a cohort (candidates compared on the development people) -------
class CohortStats(NamedTuple):
    """Mean and standard deviation of each row's top cohort cosines (AS-norm's statistics)."""

    mean: np.ndarray
    std: np.ndarray


def cohort_stats(x: np.ndarray, cohort: np.ndarray, top: int) -> CohortStats:
    """The ``top`` highest cosines of each row of ``x`` against the ``cohort`` rows.

    Args:
      x: ``(n, d)`` unit embeddings (templates or probes).
      cohort: ``(m, d)`` unit embeddings of cohort people (the artifact's background).
      top: how many of the closest cohort rows count (AS-norm's ``k``), ``1 <= top <= m``.
    """
    x, cohort = np.atleast_2d(np.asarray(x, np.float64)), np.asarray(cohort, np.float64)
    if not 1 <= top <= len(cohort):
        raise ValueError(f"top must be in 1..{len(cohort)} (the cohort's rows), got {top}.")
    s = x @ cohort.T
    best = np.partition(s, s.shape[1] - top, axis=1)[:, -top:]
    return CohortStats(best.mean(axis=1), np.maximum(best.std(axis=1), 1e-9))


def as_norm(scores: np.ndarray, enrolled: CohortStats, probes: CohortStats) -> np.ndarray:
    """Adaptive symmetric normalization of ``(probes, users)`` scores: the mean of the score
    standardised by the user's template statistics and by the probe's.

    References:
      Cumani, Batzu, Colibro, Vair, Laface, Castaldo, "Comparison of speaker recognition
      approaches for real applications", Interspeech 2011 (adaptive S-norm).
    """
    s = np.asarray(scores, np.float64)
    by_user = (s - enrolled.mean[None, :]) / enrolled.std[None, :]
    by_probe = (s - probes.mean[:, None]) / probes.std[:, None]
    return 0.5 * (by_user + by_probe)


def z_norm(scores: np.ndarray, impostor_scores: np.ndarray) -> np.ndarray:
    """``(probes, users)`` scores standardised by each user's background impostor scores
    (``impostor_scores``: ``(users, m)``)."""
    imp = np.asarray(impostor_scores, np.float64)
    mean, std = imp.mean(axis=1), np.maximum(imp.std(axis=1), 1e-9)
    return (np.asarray(scores, np.float64) - mean[None, :]) / std[None, :]
