"""The evaluation protocol on toy galleries whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.evaluation import (
    enroll_probe_split,
    evaluate_features,
    hog_features,
    identification_accuracy,
    imprint,
    lbp_features,
)


def test_enroll_probe_split_follows_order() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    order = np.array([3, 1, 2, 2, 1, 3])
    enroll, probe = enroll_probe_split(labels, pool=2, order=order)
    assert enroll.tolist() == [1, 2, 4, 3]
    assert probe.tolist() == [0, 5]
    with pytest.raises(ValueError, match="none left to probe"):
        enroll_probe_split(labels, pool=3)


def test_imprint_is_normalised_mean() -> None:
    classes, templates = imprint(
        np.array([[2.0, 0.0], [0.0, 5.0], [0.0, 1.0]]), np.array([4, 4, 9])
    )
    assert classes.tolist() == [4, 9]
    np.testing.assert_allclose(templates, [[np.sqrt(0.5), np.sqrt(0.5)], [0.0, 1.0]])


def test_identification_toy_gallery() -> None:
    # Three people on three axes; person 2's probe points at person 0: 2 of 3 probes right.
    axes = np.eye(3)
    features = np.concatenate([axes, axes, np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0.1, 0]])])
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    acc = identification_accuracy(features, labels, shots=(1, 2))
    assert acc == {"1": pytest.approx(200 / 3), "2": pytest.approx(200 / 3)}


def test_identification_by_the_probes_best_window() -> None:
    # Enrolled from first windows; person 2's probe is right only by its second window.
    axes = np.eye(3)
    first = np.concatenate([axes, np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0.1, 0]])])
    second = np.concatenate([axes, np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])])
    labels = np.array([0, 1, 2, 0, 1, 2])
    one = identification_accuracy(first, labels, shots=(1,))
    both = identification_accuracy(np.stack([first, second], axis=1), labels, shots=(1,))
    assert one == {"1": pytest.approx(200 / 3)} and both == {"1": 100.0}


def test_identification_does_not_offer_the_probes_other_label() -> None:
    # Labels 0 and 2 are one owner (one finger in two sets). Label 2's probe lies nearer label
    # 0's template: without owners it is a wrong answer; with them label 0 is not offered, and
    # the probe goes to its own label. Label 1's probe, nearer label 0, stays wrong.
    enroll = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    probes = np.array([[1.0, 0, 0], [1.0, 0.2, 0], [1.0, 0, 0.5]])
    features, labels = np.concatenate([enroll, probes]), np.array([0, 1, 2, 0, 1, 2])
    owners = np.array(["f", "g", "f", "f", "g", "f"])
    plain = identification_accuracy(features, labels, shots=(1,))
    paired = identification_accuracy(features, labels, shots=(1,), owners=owners)
    assert plain == {"1": pytest.approx(100 / 3)} and paired == {"1": pytest.approx(200 / 3)}
    report = evaluate_features(features, labels, shots=(1,), owners=owners)
    assert report["impostor_pairs"] == 15 - 3 - 4  # 3 genuine, 4 pairs of labels 0 and 2
    with pytest.raises(ValueError, match="two owners"):
        identification_accuracy(features, labels, shots=(1,), owners=np.array(list("fgffgg")))


def test_report_keys_and_small_sets() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 8)
    features = np.eye(10)[labels] + 0.05 * rng.standard_normal((80, 10))
    report = evaluate_features(features, labels)
    assert report["eer_pct"] == 0.0
    assert report["identification_pct"] == {"1": 100.0, "3": 100.0, "5": 100.0}
    assert report["genuine_pairs"] == 10 * 28 and report["impostor_pairs"] == 80 * 79 // 2 - 280
    assert report["frr_pct_at_far"]["1e-2"] == 0.0
    assert report["frr_pct_at_far"]["2e-5"] is None
    assert "not enough impostor pairs" in report["frr_not_measured"]["2e-5"]


@pytest.mark.parametrize("features", [hog_features, lbp_features])
def test_baselines_shapes_and_discrimination(features) -> None:
    rng = np.random.default_rng(1)
    base = rng.random((2, 32, 32))
    images = np.concatenate([base + 0.02 * rng.standard_normal((4, 2, 32, 32))]).reshape(
        8, 32, 32, 1
    )
    f = features(images)
    assert f.shape[0] == 8 and f.ndim == 2 and np.all(np.isfinite(f))
    labels = np.tile([0, 1], 4)
    assert identification_accuracy(f, labels, shots=(1,), order=None)["1"] == 100.0
