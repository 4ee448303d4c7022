"""Enrollment episodes: pools, matching rules, the paired difference's interval."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.evaluation.episodes import enrollment_pools, matching_rules, paired_difference


def test_fixed_and_random_pools() -> None:
    labels = np.repeat([3, 7], 4)
    order = np.array([3, 2, 1, 0, 0, 1, 2, 3])
    pools, probe = enrollment_pools(labels, pool=2, order=order)
    assert pools[3].tolist() == [3, 2] and pools[7].tolist() == [4, 5]
    assert probe.tolist() == [True, True, False, False, False, False, True, True]
    drawn, drawn_probe = enrollment_pools(labels, pool=2, episode=1, order=order)
    again, _ = enrollment_pools(labels, pool=2, episode=1, order=order)
    for identity in (3, 7):
        assert set(drawn[identity]) <= set(np.flatnonzero(labels == identity))
        np.testing.assert_array_equal(drawn[identity], again[identity])
        assert not drawn_probe[drawn[identity]].any()
    assert drawn_probe.sum() == 4


def test_matching_rules_on_separated_classes() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8)
    labels = np.repeat(np.arange(3), 6)
    embeddings = centres[labels] + 0.05 * rng.standard_normal((18, 8))
    rules = matching_rules(embeddings, labels, episodes=3, shots=(1, 3), pool=3)
    assert set(rules) == {"class_mean", "nearest_sample"}
    assert rules["class_mean"]["3"] == [100.0, 100.0, 100.0]
    assert len(rules["nearest_sample"]["1"]) == 3


def test_paired_difference() -> None:
    out = paired_difference([3.0, 5.0, 4.0], [1.0, 2.0, 3.0])
    assert out["per_episode"] == [2.0, 3.0, 1.0] and out["mean"] == pytest.approx(2.0)
    half = 4.302652729911275 * 1.0 / np.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert out["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    with pytest.raises(ValueError, match="paired episodes"):
        paired_difference([1.0], [2.0])
