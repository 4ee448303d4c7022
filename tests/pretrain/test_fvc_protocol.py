"""The FVC protocol on made-up score sets whose EER and FNMR are worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.registration import CORE_SPEC
from pretrain.evaluation import (
    FvcProtocolError,
    cosine_scorer,
    evaluate_fvc,
    features_scorer,
    fnmr_at_fmr,
    fvc_pairs,
    lbp_features,
    matchers_protocol,
    max_cosine_scorer,
    protocol_figures,
    scores_report,
    set_report,
    views_scorer,
)


def test_pairs_of_a_b_set() -> None:
    fingers = np.repeat(np.arange(101, 111), 8)
    impressions = np.tile(np.arange(1, 9), 10)
    pairs = fvc_pairs(fingers, impressions)
    assert pairs.genuine.shape == (280, 2) and pairs.impostor.shape == (45, 2)
    assert np.all(fingers[pairs.genuine[:, 0]] == fingers[pairs.genuine[:, 1]])
    assert np.all(impressions[pairs.genuine[:, 0]] < impressions[pairs.genuine[:, 1]])
    assert np.all(impressions[pairs.impostor] == 1)
    assert np.all(fingers[pairs.impostor[:, 0]] < fingers[pairs.impostor[:, 1]])


def test_pairs_follow_impression_numbers_not_file_order() -> None:
    fingers = np.array([7, 7, 7, 3, 3])
    impressions = np.array([3, 1, 2, 2, 1])
    pairs = fvc_pairs(fingers, impressions)
    # Finger 3 first (sorted): (1st, 2nd) = samples (4, 3); finger 7: samples 1, 2, 0.
    assert pairs.genuine.tolist() == [[4, 3], [1, 2], [1, 0], [2, 0]]
    assert pairs.impostor.tolist() == [[4, 1]]


@pytest.mark.parametrize(
    ("fingers", "impressions", "match"),
    [
        ([1, 1, 2, 2], [1, 1, 1, 2], "repeats an impression"),
        ([1, 2, 2], [1, 1, 2], "no genuine pair"),
        ([1, 1], [1, 2], "at least 2 fingers"),
        ([1, 1], [1], "need \\(n,\\)"),
    ],
)
def test_pairs_reject_what_the_protocol_cannot_score(fingers, impressions, match) -> None:
    with pytest.raises(FvcProtocolError, match=match):
        fvc_pairs(np.array(fingers), np.array(impressions))


def test_eer_and_fnmr_worked_by_hand() -> None:
    # Thresholds 0.6 -> FAR 1/4 (0.7 passes), FRR 0; 0.7 -> FAR 1/4, FRR 1/4 (0.6 fails): the
    # curves meet at 25%. With 4 impostors no false match is allowed at FMR 1%: the threshold
    # lies above 0.7 and rejects the genuine 0.6, FNMR 25%.
    report = scores_report(np.array([0.6, 0.8, 0.9, 1.0]), np.array([0.1, 0.2, 0.3, 0.7]))
    assert report == {
        "eer_pct": 25.0,
        "fnmr_at_fmr1_pct": 25.0,
        "genuine_pairs": 4,
        "impostor_pairs": 4,
    }


def test_eer_interpolates_between_thresholds() -> None:
    # t = 0.5: FAR 1 (both impostors pass), FRR 0; t = 0.7: FAR 1/2, FRR 1/2 (genuine 0.5 fails).
    genuine, impostor = np.array([0.5, 0.9]), np.array([0.5, 0.7])
    assert scores_report(genuine, impostor)["eer_pct"] == 50.0
    # Perfect separation: EER 0, FNMR 0.
    report = scores_report(np.array([0.8, 0.9]), np.array([0.1, 0.2, 0.3]))
    assert report["eer_pct"] == 0.0 and report["fnmr_at_fmr1_pct"] == 0.0


def test_fnmr_allows_one_percent_of_many_impostors() -> None:
    impostor = np.arange(200) / 200  # 0 .. 0.995: 2 of 200 (1%) may be accepted
    genuine = np.array([0.5, 0.985, 0.99, 0.999])
    # Threshold just above 0.985 (the third highest impostor): 0.5 and 0.985 rejected.
    assert fnmr_at_fmr(genuine, impostor) == 0.5
    # One accepted: threshold just above the impostor 0.99, so the genuine 0.99 fails too.
    assert fnmr_at_fmr(genuine, impostor, 0.005) == 0.75
    assert fnmr_at_fmr(genuine, impostor, 0.02) == 0.25  # four: threshold above 0.975


def test_scores_must_be_finite_and_present() -> None:
    with pytest.raises(FvcProtocolError, match="NaN"):
        scores_report(np.array([0.5, np.nan]), np.array([0.1]))
    with pytest.raises(FvcProtocolError, match="no impostor"):
        scores_report(np.array([0.5]), np.array([]))
    with pytest.raises(FvcProtocolError, match="fmr must be"):
        fnmr_at_fmr(np.array([0.5]), np.array([0.1]), 1.5)


def test_set_report_scores_the_protocol_pairs() -> None:
    fingers = np.repeat(np.arange(10), 8)
    impressions = np.tile(np.arange(1, 9), 10)
    features = np.eye(10)[fingers]
    # Impression 8 of finger 0 looks like finger 1: 7 of finger 0's 28 genuine pairs score 0.
    features[7] = np.eye(10)[1]
    report = set_report(cosine_scorer(features), fingers, impressions)
    assert report["genuine_pairs"] == 280 and report["impostor_pairs"] == 45
    # Impostors (first impressions) all score 0; genuines 273 x 1.0, 7 x 0.0.
    # Threshold above 0 rejects the 7: FNMR 7/280 = 2.5%; EER: at t = 0 FAR 1, FRR 0;
    # at t = 1 FAR 0, FRR 7/280: FAR - FRR goes from 1 to -1/40 and crosses zero at w = 40/41
    # of the way, where FAR = FRR = 1/41.
    assert report["fnmr_at_fmr1_pct"] == pytest.approx(2.5, abs=1e-12)
    assert report["eer_pct"] == pytest.approx(100 / 41, abs=1e-9)


def test_real_set_through_a_baseline(data_root: Path) -> None:
    if not (data_root / "fvc" / "2000_DB1_B").is_dir():
        pytest.skip(f"FVC set 2000_DB1_B not found under {data_root / 'fvc'}.")
    report = evaluate_fvc(
        features_scorer(lbp_features), sets=["2000_DB1_B"], root=data_root, progress=False
    )
    one = report["sets"]["2000_DB1_B"]
    assert (one["genuine_pairs"], one["impostor_pairs"]) == (280, 45)
    assert 0.0 <= one["eer_pct"] < 50.0  # better than chance on real prints
    assert report["mean_eer_pct"] == one["eer_pct"] and report["mean_over"] == ["2000_DB1_B"]


def test_views_score_the_best_template_view_against_the_probe() -> None:
    # Sample 0 has views e0 (plain) and e1 (shifted); sample 1's plain view is e1.
    features = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [1.0, 0.0]]])
    scorer = max_cosine_scorer(features)
    np.testing.assert_allclose(scorer(np.array([0, 1]), np.array([1, 0])), [1.0, 1.0])
    # Only the template's views count: sample 1 against sample 1's plain view, e1 vs e1.
    samples = np.arange(2 * 2 * 3, dtype=np.float64).reshape(2, 2, 3)
    make = views_scorer(lambda flat: flat * np.array([1.0, 0.0, 0.0]) + np.array([0, 1.0, 0]))
    assert make(samples)(np.array([0]), np.array([1])).shape == (1,)
    with pytest.raises(FvcProtocolError, match="views, d"):
        max_cosine_scorer(np.zeros((3, 4)))


def test_protocol_figures_keep_the_result_keys() -> None:
    one = {"eer_pct": 1.0, "fnmr_at_fmr1_pct": 2.0, "genuine_pairs": 280, "impostor_pairs": 45}
    report = {"sets": {"2000_DB1_B": one}, "mean_eer_pct": 1.0, "mean_fnmr_at_fmr1_pct": 2.0}
    assert protocol_figures(report) == {
        "fvc_protocol": {"2000_DB1_B": {"eer_pct": 1.0, "fnmr_at_fmr1_pct": 2.0}},
        "fvc_protocol_mean_eer_pct": 1.0,
        "fvc_protocol_mean_fnmr_at_fmr1_pct": 2.0,
    }


def test_matchers_protocol_scores_the_model_and_each_baseline(data_root: Path) -> None:
    if not (data_root / "fvc" / "2000_DB1_B").is_dir():
        pytest.skip(f"FVC set 2000_DB1_B not found under {data_root / 'fvc'}.")
    seen = []

    def model(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape)
        return lbp_features(x)

    out = matchers_protocol(
        model,
        spec=CORE_SPEC,
        baselines={"lbp": lbp_features},
        sets=["2000_DB1_B"],
        root=data_root,
    )
    assert seen == [(80, *CORE_SPEC.shape)]  # the model reads its own spec's inputs
    assert set(out) == {
        "fvc_protocol",
        "fvc_protocol_mean_eer_pct",
        "fvc_protocol_mean_fnmr_at_fmr1_pct",
        "fvc_protocol_mean_eer_ci95_pct",
        "baselines",
    }
    lo, hi = out["fvc_protocol_mean_eer_ci95_pct"]
    assert lo <= out["fvc_protocol_mean_eer_pct"] <= hi and lo < hi  # 10 fingers: not exact
    lbp = dict(out["baselines"]["lbp"])
    assert "fvc_protocol_mean_eer_ci95_pct" in lbp
    lbp.pop("fvc_protocol_mean_eer_ci95_pct")
    direct = evaluate_fvc(
        features_scorer(lbp_features), sets=["2000_DB1_B"], root=data_root, progress=False
    )
    # The baseline on the foreground window is exactly evaluate_fvc's default.
    assert lbp == protocol_figures(direct)
    assert set(out["fvc_protocol"]) == {"2000_DB1_B"}


def test_every_view_scores_the_best_window_of_both_prints() -> None:
    # Probe 1's second window (e0) is what matches template 0's first (e0); its first does not.
    features = np.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [3.0, 0.0]]])
    i, j = np.array([0]), np.array([1])
    np.testing.assert_allclose(max_cosine_scorer(features)(i, j), [0.0])  # probe's view 0 only
    np.testing.assert_allclose(max_cosine_scorer(features, every_view=True)(i, j), [1.0])
    np.testing.assert_allclose(max_cosine_scorer(features, every_view=True)(j, i), [1.0])


def test_a_spec_with_a_second_window_is_prepared_and_scored_by_views() -> None:
    from devices.localiser import ANCHOR_SPEC, ANCHOR_VIEWS_SPEC
    from pretrain.data.fingerprint import generate_impression
    from pretrain.evaluation import spec_prepare, spec_scorer

    prints = [generate_impression(k, 0, seed=0) for k in range(3)]
    assert spec_prepare(ANCHOR_SPEC)(prints).shape == (3, *ANCHOR_SPEC.shape)
    views = spec_prepare(ANCHOR_VIEWS_SPEC)(prints)
    assert views.shape == (3, 2, *ANCHOR_SPEC.shape)
    np.testing.assert_array_equal(views[:, 0], spec_prepare(ANCHOR_SPEC)(prints))
    flat = lambda x: x.reshape(len(x), -1)[:, :50]  # noqa: E731
    same = spec_scorer(flat, ANCHOR_VIEWS_SPEC)(views)(np.arange(3), np.arange(3))
    np.testing.assert_allclose(same, 1.0, atol=1e-9)
