"""Threshold for a target FAR: empirical when measurable, a GPD tail fit beyond."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devices.cosine import normalize
from devices.verification import threshold_for_far
from personalize import threshold_at_far
from personalize.threshold import as_norm, cohort_stats, fused_threshold_at_far, gpd_pwm, z_norm


def _gauss_sf(t: float, mu: float, sd: float) -> float:
    return 0.5 * math.erfc((t - mu) / (sd * math.sqrt(2)))


def test_tail_fit_is_conservative_on_gaussian_scores() -> None:
    # 1,000 impostor scores cannot show FAR 2e-5 empirically; on Gaussian scores the fitted
    # threshold must not let more than the target through, nor be absurdly strict.
    mu, sd, far = 0.1, 0.12, 2e-5
    true = []
    for seed in range(20):
        scores = np.random.default_rng(seed).normal(mu, sd, 1000)
        fit = threshold_at_far(scores, far)
        assert fit.method == "exponential_tail" and fit.threshold > scores.max()
        true.append(_gauss_sf(fit.threshold, mu, sd))
    assert max(true) <= far and np.median(true) >= far / 1e4, true


def test_gpd_pwm_recovers_known_parameters() -> None:
    rng = np.random.default_rng(0)
    for xi, sigma in [(-0.2, 1.0), (0.0, 0.5), (0.2, 2.0)]:
        u = rng.random(20_000)
        y = sigma * np.log(1 / u) if xi == 0 else sigma / xi * (u**-xi - 1)
        got_xi, got_sigma = gpd_pwm(y)
        assert abs(got_xi - xi) < 0.05 and abs(got_sigma / sigma - 1) < 0.05


def test_empirical_when_the_far_is_measurable() -> None:
    scores = np.random.default_rng(3).normal(size=5000)
    fit = threshold_at_far(scores, 1e-3)
    assert fit.method == "empirical" and fit.threshold == threshold_for_far(scores, 1e-3)
    assert np.mean(scores >= fit.threshold) <= 1e-3


@pytest.mark.parametrize(
    ("scores", "far", "message"),
    [
        (np.zeros(10), 1e-3, "at least 40"),
        (np.r_[np.zeros(50), np.nan], 1e-3, "finite"),
        (np.zeros(100), 0.0, r"in \(0, 1\)"),
    ],
)
def test_bad_input(scores, far, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        threshold_at_far(scores, far)


def test_cosine_thresholds_stay_reachable() -> None:
    """100 cosine scores close to 1: a tail fitted on the raw scores would cross 1."""
    rng = np.random.default_rng(3)
    scores = np.clip(0.6 + 0.12 * rng.standard_normal(100), -1.0, 0.999)
    raw = threshold_at_far(scores, 2e-5)
    fit = threshold_at_far(scores, 2e-5, cosine=True)
    assert raw.threshold > 1.0  # the failure this guards against
    assert scores.max() < fit.threshold < 1.0
    assert fit.method == "exponential_tail_fisher_z"
    with pytest.raises(ValueError, match="cosine"):
        threshold_at_far(scores * 3, 2e-5, cosine=True)


def test_fused_thresholds_are_fitted_as_scaled_cosines() -> None:
    rng = np.random.default_rng(4)
    cos = np.clip(0.5 + 0.1 * rng.standard_normal(200), -1.0, 1.0)
    minutiae = np.where(rng.random(200) < 0.1, rng.random(200), 0.0)  # chance pairings
    fused = cos + 0.25 * minutiae
    fit = fused_threshold_at_far(fused, 2e-5, 0.25)
    scaled = threshold_at_far(fused / 1.25, 2e-5, cosine=True)
    assert fit.threshold == pytest.approx(1.25 * scaled.threshold, rel=1e-12)
    assert fused.max() < fit.threshold < 1.25  # reachable: below the fused scores' bound
    assert fit.method == "exponential_tail_fisher_z_fused"
    # the raw scale's exponential tail (the fit before) lies far above: the bound is ignored
    assert threshold_at_far(fused, 2e-5).threshold > fit.threshold
    # enough scores for the FAR: the empirical threshold of the fused scores themselves
    many = np.concatenate([fused] * 300)  # 60,000 >= 1 / 2e-5
    empirical = fused_threshold_at_far(many, 2e-5, 0.25)
    assert empirical.method == "empirical_fused"
    assert empirical.threshold == pytest.approx(threshold_at_far(many, 2e-5).threshold)
    with pytest.raises(ValueError, match="weight"):
        fused_threshold_at_far(fused, 2e-5, -0.1)


def test_cohort_stats_are_the_top_cosines() -> None:
    rng = np.random.default_rng(0)
    x, cohort = normalize(rng.normal(size=(4, 8))), normalize(rng.normal(size=(30, 8)))
    stats = cohort_stats(x, cohort, 5)
    top = np.sort(x @ cohort.T, axis=1)[:, -5:]
    np.testing.assert_allclose(stats.mean, top.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.std, top.std(axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="top"):
        cohort_stats(x, cohort, 31)


def test_as_norm_and_z_norm_by_hand() -> None:
    # One probe, two users: (s - mu_user) / sd_user and (s - mu_probe) / sd_probe, averaged.
    user = cohort_stats(np.eye(2), np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), 2)
    probe = type(user)(np.array([0.5]), np.array([0.25]))
    scores = np.array([[0.7, 0.2]])
    got = as_norm(scores, user, probe)
    want = 0.5 * ((scores - user.mean) / user.std + (scores - 0.5) / 0.25)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    imp = np.array([[0.1, 0.3], [0.0, 0.4]])  # (users, background)
    np.testing.assert_allclose(z_norm(scores, imp), [[(0.7 - 0.2) / 0.1, (0.2 - 0.2) / 0.2]])
