"""The minutiae matcher: rigid alignment by Hough voting, one-to-one pairing, the overlap."""

from __future__ import annotations

import numpy as np
import pytest

from devices.minutiae_match import MAX_TURN, MinutiaeMatchError, alignments, match_score


def _random_print(rng: np.random.Generator, n: int = 30, size: float = 300.0) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    return np.column_stack([xy, rng.uniform(-np.pi, np.pi, n), rng.integers(0, 2, n)])


def _moved(m: np.ndarray, turn: float, dx: float, dy: float) -> np.ndarray:
    c, s = np.cos(turn), np.sin(turn)
    x = c * m[:, 0] - s * m[:, 1] + dx
    y = s * m[:, 0] + c * m[:, 1] + dy
    return np.column_stack([x, y, (m[:, 2] + turn + np.pi) % (2 * np.pi) - np.pi, m[:, 3]])


def test_a_print_turned_and_shifted_matches_itself_fully() -> None:
    a = _random_print(np.random.default_rng(0))
    b = _moved(a, np.radians(20), 30.0, -15.0)
    assert match_score(a, b) == 1.0
    turn, dx, dy = alignments(a, b)[0]
    # the turn averages the neighbouring bins' votes too (a few chance pairs among them)
    assert turn == pytest.approx(np.radians(20), abs=np.radians(1.5))
    assert (dx, dy) == pytest.approx((30.0, -15.0), abs=1.0)
    # ... a part of it (a partial print) too: the smaller print's minutiae all pair
    assert match_score(a[:12], b) == 1.0


def test_jitter_within_the_tolerances_still_pairs() -> None:
    rng = np.random.default_rng(1)
    a = _random_print(rng)
    b = _moved(a, np.radians(-10), -20.0, 40.0)
    b[:, :2] += rng.normal(0, 2.0, (len(b), 2))  # distortion of a couple of pixels
    b[:, 2] += rng.normal(0, np.radians(5), len(b))
    assert match_score(a, b) >= 0.9


def test_unrelated_prints_pair_few_minutiae() -> None:
    rng = np.random.default_rng(2)
    scores = [match_score(_random_print(rng), _random_print(rng)) for _ in range(10)]
    assert max(scores) < 0.4  # chance pairs of one Hough bin, far from a genuine 1.0


def test_a_turn_beyond_the_limit_is_not_tried() -> None:
    a = _random_print(np.random.default_rng(3))
    b = _moved(a, MAX_TURN + np.radians(40), 0.0, 0.0)
    assert match_score(a, b) < 0.4


def test_bad_and_tiny_inputs() -> None:
    a = _random_print(np.random.default_rng(4))
    assert match_score(a[:1], a) == 0.0 and match_score(a, np.zeros((0, 4))) == 0.0
    for bad in (a[:, :3], np.full((3, 4), np.nan), a[0]):
        with pytest.raises(MinutiaeMatchError, match=r"\(n, 4\) finite rows"):
            match_score(bad, a)


def _partial(a: np.ndarray, keep_left_of: float) -> tuple[np.ndarray, np.ndarray]:
    """A print moved into a 600 x 600 frame, its minutiae left of ``keep_left_of`` only, and
    its readable mask (that part of the frame)."""
    b = _moved(a, np.radians(15), 150.0, 120.0)
    mask = np.zeros((600, 600), bool)
    mask[:, : int(keep_left_of)] = True
    return b[b[:, 0] < keep_left_of], mask


def test_over_the_overlap_a_partial_print_scores_as_its_overlap_allows() -> None:
    a = _random_print(np.random.default_rng(5))
    full = np.ones((600, 600), bool)
    b, mask_b = _partial(a, 300.0)
    assert 8 <= len(b) < len(a)
    # every minutia either print could show of the other is paired: the whole score
    assert match_score(a, b, full, mask_b) == pytest.approx(1.0)
    assert match_score(b, a, mask_b, full) == pytest.approx(1.0)
    # told that b's whole frame was readable, a's minutiae carried outside b's part count
    # against the pair (the mapping is checked both ways)
    assert match_score(a, b, full, full) == pytest.approx(len(b) / len(a))
    assert match_score(b, a, full, full) == pytest.approx(len(b) / len(a))


def test_over_the_overlap_unrelated_prints_stay_low() -> None:
    rng = np.random.default_rng(6)
    full = np.ones((600, 600), bool)
    scores = [match_score(_random_print(rng), _random_print(rng), full, full) for _ in range(10)]
    assert max(scores) < 0.2


def test_masks_come_in_pairs_and_two_dimensional() -> None:
    a = _random_print(np.random.default_rng(7))
    with pytest.raises(MinutiaeMatchError, match="both prints' masks"):
        match_score(a, a, np.ones((9, 9), bool), None)
    with pytest.raises(MinutiaeMatchError, match="2-D"):
        match_score(a, a, np.ones(9, bool), np.ones((9, 9), bool))
