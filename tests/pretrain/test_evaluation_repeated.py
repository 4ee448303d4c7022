"""Identification over repeated random enrollment splits, on galleries whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.evaluation import face_report, random_enrollment, repeated_identification


def test_random_enrollment_takes_k_per_identity_and_probes_the_rest() -> None:
    labels = np.repeat(np.arange(4), [3, 5, 6, 4])
    enroll, probe = random_enrollment(labels, 2, rng=np.random.default_rng(0))
    assert np.bincount(labels[enroll]).tolist() == [2, 2, 2, 2]
    assert sorted(np.concatenate([enroll, probe]).tolist()) == list(range(labels.size))
    with pytest.raises(ValueError, match="3 samples: 3-shot enrollment leaves none"):
        random_enrollment(labels, 3, rng=np.random.default_rng(0))


def test_splits_differ_and_repeat_under_a_seed() -> None:
    labels = np.repeat(np.arange(5), 10)
    a = [random_enrollment(labels, 3, rng=np.random.default_rng([0, i, 3]))[0] for i in range(2)]
    assert not np.array_equal(a[0], a[1])
    features = np.random.default_rng(1).normal(size=(50, 8))
    first = repeated_identification(features, labels, splits=3, seed=7)
    again = repeated_identification(features, labels, splits=3, seed=7)
    assert first == again and first["splits"] == 3 and len(first["per_split"]["5"]) == 3


def test_one_bad_image_costs_its_probe_in_every_split_that_probes_it() -> None:
    # Four people on four axes; one image of person 3 points at person 0. With 1-shot
    # enrollment it is a wrong probe unless it enrolls (then person 3's other probes fail).
    features = np.tile(np.eye(4), (5, 1))
    labels = np.tile(np.arange(4), 5)
    features[3] = [1.0, 0.0, 0.0, 0.0]  # person 3's first image
    report = repeated_identification(features, labels, shots=(1,), splits=20, seed=0)
    per = np.asarray(report["per_split"]["1"])
    # 16 probes: either 15/16 right (bad image probed) or 12/16 (bad image enrolled).
    assert set(np.round(per, 4)) <= {round(100 * 15 / 16, 4), round(100 * 12 / 16, 4)}
    assert report["mean"]["1"] == pytest.approx(per.mean())


def test_face_report_has_the_issue_keys() -> None:
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(6, 16))
    labels = np.repeat(np.arange(6), 10)
    features = centres[labels] + 0.05 * rng.normal(size=(60, 16))
    report = face_report(features, labels, splits=4)
    assert report["identification_pct"] == {"1": 100.0, "3": 100.0, "5": 100.0}
    assert report["identification_pct_fixed"]["5"] == 100.0
    assert report["eer_pct"] == 0.0 and report["identities"] == 6 and report["samples"] == 60
    assert set(report["frr_pct_at_far"]) >= {"1e-3"}


def test_repeated_splits_do_not_offer_the_probes_other_label() -> None:
    # Labels 0 and 2 are one finger in two sets. Label 2's capture [1, 0, 0.1] lies nearer
    # label 0 than its other capture, whichever of the two enrolls: without owners one of
    # label 2's probes is wrong in every split; with them every probe is right.
    features = np.array(
        [[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0], [0.2, 0, 1.0], [1.0, 0, 0.1]]
    )
    labels = np.array([0, 0, 1, 1, 2, 2])
    owners = np.array(["f", "f", "g", "g", "f", "f"])
    plain = face_report(features, labels, shots=(1,), splits=4)
    paired = face_report(features, labels, shots=(1,), splits=4, owners=owners)
    assert plain["identification_pct"] == {"1": pytest.approx(500 / 6)}
    assert paired["identification_pct"] == {"1": 100.0}
    assert paired["impostor_pairs"] == plain["impostor_pairs"] - 4
