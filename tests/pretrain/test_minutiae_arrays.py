"""Minutiae arrays from the extractor and the generator's truth, as the matcher takes them."""

from __future__ import annotations

import numpy as np

from devices.minutiae_match import match_score
from pretrain.data.minutiae import BIFURCATION, ENDING, Minutia, minutiae_array
from pretrain.data.minutiae_maps import impression_minutiae


def test_minutiae_without_a_direction_are_dropped() -> None:
    found = [Minutia(1.0, 2.0, ENDING, 0.5), Minutia(3.0, 4.0, BIFURCATION, float("nan"))]
    np.testing.assert_array_equal(minutiae_array(found), [[1.0, 2.0, 0.5, 0.0]])
    assert minutiae_array([]).shape == (0, 4)


def test_ground_truth_minutiae_tell_fingers_apart() -> None:
    """Two impressions of one generator finger share their placed master minutiae; another
    finger's do not pair."""
    truth = {
        (i, k): minutiae_array(impression_minutiae(i, k, seed=0)[1]) for i in (0, 1) for k in (0, 1)
    }
    assert min(len(t) for t in truth.values()) >= 5
    same = [match_score(truth[(i, 0)], truth[(i, 1)]) for i in (0, 1)]
    other = [match_score(truth[(0, k)], truth[(1, k)]) for k in (0, 1)]
    assert min(same) > max(other) + 0.2
