"""The bootstrap over fingers: intervals that hold the figure, pairs that are paired, draws of a
finger that never pair it with itself."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.evaluation import set_scores
from pretrain.evaluation.fvc_bootstrap import SetScores, mean_eer_interval
from pretrain.evaluation.fvc_protocol import fvc_pairs, mean_eer, scores_report

SETS = ("2000_DB1_B", "2000_DB2_B")


def _made_up(seed: int, gap: float) -> SetScores:
    """A B set's scores (10 fingers x 8 impressions): genuine ~ N(gap, 1), impostor ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    fingers = np.repeat(np.arange(101, 111), 8)
    pairs = fvc_pairs(fingers, np.tile(np.arange(1, 9), 10))
    return SetScores(
        genuine=rng.normal(gap, 1.0, len(pairs.genuine)),
        genuine_fingers=fingers[pairs.genuine[:, 0]],
        impostor=rng.normal(0.0, 1.0, len(pairs.impostor)),
        impostor_fingers=fingers[pairs.impostor],
    )


def test_the_interval_holds_the_figure_and_shrinks_to_nothing_when_nothing_overlaps() -> None:
    noisy = {name: _made_up(k, gap=1.5) for k, name in enumerate(SETS)}
    figure = mean_eer({n: scores_report(s.genuine, s.impostor) for n, s in noisy.items()}, SETS)
    out = mean_eer_interval({"m": noisy}, names=SETS, rounds=400)
    lo, hi = out["mean_eer_pct"]["m"]["ci_pct"]
    assert lo < figure < hi and hi - lo > 3.0  # 45 impostors a set: points, not decimals
    assert out["sets"] == list(SETS) and out["rounds"] == 400 and out["difference_pct"] == {}
    apart = {name: _made_up(k, gap=50.0) for k, name in enumerate(SETS)}
    assert mean_eer_interval({"m": apart}, names=SETS, rounds=50)["mean_eer_pct"]["m"][
        "ci_pct"
    ] == [0.0, 0.0]


def test_differences_are_paired() -> None:
    a = {name: _made_up(k, gap=1.5) for k, name in enumerate(SETS)}
    worse = {n: s._replace(genuine=s.genuine - 0.3) for n, s in a.items()}
    out = mean_eer_interval({"a": a, "same": a, "worse": worse}, names=SETS, rounds=300)
    assert out["difference_pct"]["same"] == {"vs": "a", "ci_pct": [0.0, 0.0], "sd_pct": 0.0}
    # Lower genuine scores never lower an EER on the same fingers: paired, no draw favours the
    # worse matcher, though each one's own interval overlaps the other's.
    lo, hi = out["difference_pct"]["worse"]["ci_pct"]
    assert 0.0 <= lo < hi
    assert out["mean_eer_pct"]["worse"]["ci_pct"][0] < out["mean_eer_pct"]["a"]["ci_pct"][1]


def test_a_finger_drawn_twice_is_never_its_own_impostor() -> None:
    # Two fingers; impostor pair (1, 2) scores above every genuine score. A draw of finger 1
    # twice has no impostor pair and must not read the matrix's empty diagonal.
    scores = SetScores(
        genuine=np.array([0.5, 0.6]),
        genuine_fingers=np.array([1, 2]),
        impostor=np.array([0.9]),
        impostor_fingers=np.array([[1, 2]]),
    )
    out = mean_eer_interval({"m": {"2000_DB1_B": scores}}, rounds=200)
    lo, hi = out["mean_eer_pct"]["m"]["ci_pct"]
    assert 0.0 <= lo <= hi <= 100.0 and np.isfinite([lo, hi]).all()


def test_set_scores_carry_their_fingers() -> None:
    fingers = np.array([7, 7, 3, 3])
    scores = set_scores(lambda i, j: (i + j).astype(float), fingers, np.array([1, 2, 1, 2]))
    assert scores.genuine_fingers.tolist() == [3, 7] and scores.genuine.tolist() == [5.0, 1.0]
    assert scores.impostor_fingers.tolist() == [[3, 7]] and scores.impostor.tolist() == [2.0]


def test_refusals() -> None:
    one = {"2000_DB1_B": _made_up(0, 1.0)}
    with pytest.raises(ValueError, match="no matchers"):
        mean_eer_interval({})
    with pytest.raises(ValueError, match="none of the sets"):
        mean_eer_interval({"m": one}, names=("2002_DB2_B",))
    with pytest.raises(ValueError, match="rounds"):
        mean_eer_interval({"m": one}, rounds=0)
    fewer = {"2000_DB1_B": SetScores(np.ones(2), np.array([1, 2]), np.zeros(1), np.array([[1, 2]]))}
    with pytest.raises(ValueError, match="other fingers"):
        mean_eer_interval({"m": one, "n": fewer})
