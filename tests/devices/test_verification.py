"""Verification error rates against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from devices.verification import (
    count_attempts,
    eer,
    frr_at_far,
    min_impostors_for,
    pair_scores,
    roc,
    threshold_for_far,
)


def test_roc_by_hand() -> None:
    # genuine 0.6, 0.8, 0.9; impostor 0.1, 0.5, 0.7. Accept iff score >= t.
    curve = roc(np.array([0.9, 0.6, 0.8]), np.array([0.1, 0.7, 0.5]))
    table = dict(
        zip(curve.thresholds.round(6).tolist(), zip(curve.far, curve.frr, strict=True), strict=True)
    )
    assert table[0.1] == (1.0, 0.0)
    assert table[0.6] == pytest.approx((1 / 3, 0.0))
    assert table[0.7] == pytest.approx((1 / 3, 1 / 3))
    assert table[0.8] == pytest.approx((0.0, 1 / 3))
    assert curve.far[-1] == 0.0 and curve.frr[-1] == 1.0


def test_eer_separable_and_crossing() -> None:
    assert eer(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 0.0
    # One impostor above one genuine out of 4 each: FAR = FRR = 1/4 at t = 0.6.
    assert eer(np.array([0.5, 0.7, 0.8, 0.9]), np.array([0.1, 0.2, 0.3, 0.6])) == pytest.approx(
        0.25
    )
    # Identical distributions: EER 1/2.
    s = np.linspace(0, 1, 101)
    assert eer(s, s) == pytest.approx(0.5, abs=0.01)


def test_threshold_and_frr_at_far_by_hand() -> None:
    impostor = np.arange(100) / 100.0  # 0.00 .. 0.99
    genuine = np.array([0.5, 0.95, 0.985, 0.995])
    t = threshold_for_far(impostor, 0.02)  # two impostors (0.98, 0.99) may pass
    assert 0.97 < t <= 0.98 + 1e-12
    assert np.sum(impostor >= t) == 2
    assert frr_at_far(genuine, impostor, 0.02) == pytest.approx(0.5)  # 0.5, 0.95 rejected
    assert frr_at_far(genuine, impostor, 0.001) is None  # needs 1000 impostors
    with pytest.raises(ValueError, match="need at least 1000"):
        threshold_for_far(impostor, 0.001)
    assert min_impostors_for(1 / 50_000) == 50_000
    # FAR 0.01 on 100 scores: exactly one impostor may be accepted, ties included conservatively.
    tied = np.array([0.3] * 98 + [0.9, 0.9])
    assert np.sum(tied >= threshold_for_far(tied, 0.01)) == 0


def test_pair_scores() -> None:
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    genuine, impostor = pair_scores(x, np.array([7, 7, 8]))
    np.testing.assert_allclose(genuine, [1.0])
    np.testing.assert_allclose(impostor, [0.0, 0.0])


def test_pair_scores_leave_out_two_labels_of_one_owner() -> None:
    # Labels 7 and 9 are one finger in two sets: their pair is neither genuine nor impostor.
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    labels = np.array([7, 7, 8, 9])
    genuine, impostor = pair_scores(x, labels, np.array(["a", "a", "b", "a"]))
    np.testing.assert_allclose(genuine, [1.0])
    np.testing.assert_allclose(impostor, [0.0, 0.0, np.sqrt(0.5)])
    assert pair_scores(x, labels)[1].size == 5
    with pytest.raises(ValueError, match="owners of shape"):
        pair_scores(x, labels, np.array(["a", "b"]))


def test_pair_scores_take_the_best_windows() -> None:
    # Sample 1's second window matches sample 0's first; sample 2 matches nothing.
    x = np.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [4.0, 0.0]], [[-1.0, 0.0], [0.0, -1.0]]])
    genuine, impostor = pair_scores(x, np.array([7, 7, 8]))
    np.testing.assert_allclose(genuine, [1.0])  # first windows alone: 0
    np.testing.assert_allclose(impostor, [0.0, 0.0])
    one = pair_scores(x[:, :1], np.array([7, 7, 8]))
    np.testing.assert_allclose(one[0], pair_scores(x[:, 0], np.array([7, 7, 8]))[0])
    with pytest.raises(ValueError, match="windows"):
        pair_scores(np.zeros((3, 2, 2, 2)), np.array([7, 7, 8]))


def test_bad_scores() -> None:
    with pytest.raises(ValueError, match="NaN"):
        eer(np.array([np.nan]), np.array([0.1]))
    with pytest.raises(ValueError, match="no impostor"):
        roc(np.array([0.5]), np.array([]))


def test_count_attempts_by_hand() -> None:
    # 3 captures x 2 users; user 0 threshold 0.5, user 1 threshold 0.8. Accept iff >= t.
    scores = np.array([[0.9, 0.1], [0.5, 0.85], [0.2, 0.79]])
    genuine = np.array([[True, False], [False, True], [False, False]])
    impostor = np.array([[False, True], [True, False], [True, True]])
    got = count_attempts(scores, np.array([0.5, 0.8]), genuine, impostor)
    # impostors: (1,0)=0.5 accepted (>= 0.5), (0,1)=0.1, (2,0)=0.2, (2,1)=0.79 rejected.
    assert got.impostor_attempts == 4 and got.impostor_accepts == 1 and got.far == 0.25
    assert got.genuine_attempts == 2 and got.genuine_rejects == 0 and got.frr == 0.0


def test_count_attempts_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        count_attempts(np.zeros((3, 2)), np.zeros(3), np.zeros((3, 2), bool), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="no impostor"):
        count_attempts(np.zeros((3, 2)), np.zeros(2), np.ones((3, 2), bool), np.zeros((3, 2), bool))


def test_impostor_counts_by_enrolled_person_and_impostor() -> None:
    from devices.verification import impostor_counts

    # Captures of people 0, 0, 1, 2; users 0 and 1 enrolled; user 0 accepts >= 0.5.
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.6, 0.9], [0.2, 0.8]])
    capture_people = np.array([0, 0, 1, 2])
    users = np.array([0, 1])
    impostor = capture_people[:, None] != users[None, :]
    people, accepts, attempts = impostor_counts(
        scores, np.array([0.5, 0.75]), capture_people, users, impostor
    )
    assert people.tolist() == [0, 1, 2]
    # user 0: person 1's capture (0.6) accepted, person 2's (0.2) not;
    # user 1: person 0's captures 0.1, 0.7 rejected, person 2's 0.8 accepted.
    assert accepts.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert attempts.tolist() == [[0, 1, 1], [2, 0, 1], [0, 0, 0]]


def test_accepting_pairs_rank_the_pairs_with_accepts() -> None:
    from devices.verification import accepting_pairs

    accepts = np.array([[0, 1, 3], [2, 0, 1], [0, 0, 0]])
    # the most accepts first; the two pairs with one accept each in row-major order
    assert accepting_pairs(accepts) == [(0, 2, 3), (1, 0, 2), (0, 1, 1), (1, 2, 1)]
    assert accepting_pairs(np.zeros((3, 3), np.int64)) == []


def test_far_by_group_splits_same_and_other_group_attempts() -> None:
    from devices.verification import far_by_group

    attempts = np.array([[0, 4, 2], [4, 0, 2], [8, 8, 0]])
    accepts = np.array([[0, 1, 2], [0, 0, 0], [0, 4, 0]])
    got = far_by_group(accepts, attempts, ["a", "a", "b"])  # people 0, 1 share sensor a
    assert got["same_group"] == {"attempts": 8, "accepts": 1, "far": 1 / 8}
    assert got["other_group"] == {"attempts": 20, "accepts": 6, "far": 6 / 20}
    alone = far_by_group(accepts, attempts, ["a", "b", "c"])  # no two people share a group
    assert alone["same_group"]["attempts"] == 0 and np.isnan(alone["same_group"]["far"])


def test_far_interval_is_wide_when_one_pair_carries_the_accepts() -> None:
    from devices.verification import far_interval

    p = 40
    attempts = np.full((p, p), 100) * (1 - np.eye(p, dtype=np.int64))
    lookalikes = np.zeros((p, p), np.int64)
    lookalikes[27, 36] = lookalikes[36, 27] = 20  # 40 accepts, all one pair (ORL's s28, s37)
    point = lookalikes.sum() / attempts.sum()
    lo, hi = far_interval(lookalikes, attempts, rounds=500)
    assert lo == 0.0 and hi > 2 * point  # draws without the pair accept no one
    spread = np.full((p, p), 1) * (1 - np.eye(p, dtype=np.int64))  # 1 accept each pair
    lo, hi = far_interval(spread, attempts, rounds=500)
    assert lo == pytest.approx(0.01) and hi == pytest.approx(0.01)
    with pytest.raises(ValueError, match=r"\(p, p\)"):
        far_interval(spread[:1, :1], attempts[:1, :1])
    with pytest.raises(ValueError, match="rounds"):
        far_interval(spread, attempts, rounds=0)
    with pytest.raises(ValueError, match="no impostor attempts"):
        far_interval(spread, np.eye(p, dtype=np.int64))


def test_genuine_pairs_follow_the_order_of_pair_scores() -> None:
    from devices.verification import genuine_pairs, pair_scores

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 4))
    labels = np.array([0, 1, 0, 2, 1, 0, 2])
    genuine, impostor = pair_scores(x, labels)
    i, j = genuine_pairs(labels)
    assert (i < j).all() and (labels[i] == labels[j]).all()
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(genuine, np.sum(unit[i] * unit[j], axis=1), rtol=1e-12)
    assert genuine.size + impostor.size == 7 * 6 // 2 and genuine.size == 3 + 1 + 1
