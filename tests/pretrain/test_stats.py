"""Print statistics: ridge period, coherence, foreground, singular points, class rules, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pretrain.__main__ import main
from pretrain.data import DataError, measure, summarise
from pretrain.data.stats import orientation_and_coherence, ridge_periods
from pretrain.data.stats_report import source_stats
from pretrain.data.stats_singular import classify, poincare, singular_points


def stripes(period: float, angle_deg: float, shape=(256, 256), noise: float = 0.0) -> np.ndarray:
    """Sinusoidal ridges of ``period`` px running at ``angle_deg`` (image axes), uint8."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    a = np.radians(angle_deg)
    phase = 2 * np.pi * (-x * np.sin(a) + y * np.cos(a)) / period
    image = 128 + 90 * np.cos(phase) + noise * np.random.default_rng(0).standard_normal(shape)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("period", [6.0, 9.0, 12.0])
@pytest.mark.parametrize("angle", [0.0, 30.0, 100.0])
def test_period_and_orientation_of_clean_stripes(period: float, angle: float) -> None:
    image = stripes(period, angle)
    periods = ridge_periods(image, np.ones((16, 16), bool))
    assert np.median(periods) == pytest.approx(period, rel=0.04)
    theta, coherence = orientation_and_coherence(image)
    inner = theta[2:-2, 2:-2]
    error = np.abs(np.mod(inner - np.radians(angle) + np.pi / 2, np.pi) - np.pi / 2)
    assert np.degrees(error.max()) < 3.0
    assert coherence[2:-2, 2:-2].min() > 0.9


def test_noise_has_low_coherence_and_no_foreground_on_flat() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (256, 256)).astype(np.uint8)
    _, coherence = orientation_and_coherence(noise)
    assert coherence.mean() < 0.3
    flat = np.full((256, 256), 200, np.uint8)
    flat[:, :128] = stripes(9.0, 0.0)[:, :128]
    stats = measure(flat)
    assert stats.foreground_fraction == pytest.approx(0.5, abs=0.07)
    assert stats.period_px == pytest.approx(9.0, rel=0.05)
    assert sum(stats.histogram) == pytest.approx(1.0)


def analytic(cores, deltas, shape=(40, 40)) -> np.ndarray:
    """Zero-pole orientation on a block grid (image axes), singular points in grid units."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    theta = np.zeros(shape)
    for cx, cy in cores:
        theta += 0.5 * np.arctan2(-(y - cy), x - cx)
    for dx, dy in deltas:
        theta -= 0.5 * np.arctan2(-(y - dy), x - dx)
    return np.mod(-theta, np.pi)


def test_poincare_index_finds_cores_and_deltas() -> None:
    index = poincare(analytic([(10.5, 12.5)], [(25.5, 30.5)]))
    assert index[12, 10] == 1 and index[30, 25] == -1
    assert np.count_nonzero(index) == 2


@pytest.mark.parametrize(
    ("cores", "deltas", "expected"),
    [
        ([], [], "arch"),
        ([(20.5, 12.5)], [(20.5, 26.5)], "tented_arch"),
        ([(18.5, 12.5)], [(30.5, 26.5)], "left_loop"),
        ([(22.5, 12.5)], [(9.5, 26.5)], "right_loop"),
        ([(17.5, 15.5), (22.5, 18.5)], [(8.5, 30.5), (32.5, 30.5)], "whorl"),
    ],
)
def test_class_rules_on_model_fields(cores, deltas, expected: str) -> None:
    theta = analytic(cores, deltas)
    found_cores, found_deltas = singular_points(theta, np.ones(theta.shape, bool), 8)
    assert len(found_cores) == len(cores) and len(found_deltas) == len(deltas)
    assert classify(found_cores, found_deltas, theta, 8) == expected


def test_loop_side_without_a_delta_comes_from_the_core_axis() -> None:
    theta = analytic([(18.5, 12.5)], [(30.5, 26.5)])
    cores, _ = singular_points(theta, np.ones(theta.shape, bool), 8)
    assert classify(cores, [], theta, 8) == "left_loop"


def test_summary_reports_true_mix_and_accuracy() -> None:
    images = [stripes(8.0, 10.0), stripes(10.0, 80.0, noise=20.0)]
    summary = summarise([measure(im) for im in images], ["arch", "whorl"])
    assert summary["images"] == 2
    assert (
        summary["period_px"]["p10"] <= summary["period_px"]["median"] <= summary["period_px"]["p90"]
    )
    assert summary["class_mix_true"]["whorl"] == 0.5
    assert 0.0 <= summary["class_estimate_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="no images"):
        summarise([])


def test_cli_unknown_source_is_a_clean_error(capsys) -> None:
    code = main(["data", "stats", "--source", "bogus"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: unknown source 'bogus'") and "Traceback" not in err


def test_cli_missing_fvc_set_names_the_setting(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("POCKETFIT_DATA", str(tmp_path))
    code = main(["data", "stats", "--source", "fvc/2000_DB1_B"])
    err = capsys.readouterr().err
    assert code == 2 and "POCKETFIT_DATA" in err and "fvc" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["stats", "--source", "orl", "--limit", "-3"], "argument --limit: must be >= 1, got -3"),
        (["stats", "--source", "orl", "--limit", "0"], "argument --limit: must be >= 1, got 0"),
        (["faces", "--out", "f.png", "--per-set", "0"], "argument --per-set: must be >= 1"),
        (["gallery", "--out", "g.png", "--identities", "0"], "argument --identities: must be >="),
        (["gallery", "--out", "{tmp}"], "{tmp} is a directory; give an image file path"),
        (["gallery", "--out", "{tmp}/g"], "give an image file path ending in .png"),
        (["stats", "--source", "orl", "--plot", "{tmp}"], "is a directory; give an image file"),
    ],
)
def test_cli_refuses_bad_counts_and_paths_in_one_line(
    argv: list[str], says: str, tmp_path: Path, capsys
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["data", *(a.format(tmp=tmp_path) for a in argv)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and says.format(tmp=tmp_path) in err and "Traceback" not in err


def test_a_negative_limit_is_refused_by_the_library_too() -> None:
    with pytest.raises(DataError, match="limit must be >= 1"):
        source_stats("orl", limit=-3)


def test_cli_gallery_and_synthetic_stats(tmp_path: Path, capsys) -> None:
    out = tmp_path / "g.png"
    assert (
        main(["data", "gallery", "--out", str(out), "--identities", "2", "--impressions", "1"]) == 0
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot, table = tmp_path / "s.png", tmp_path / "s.json"
    args = ["data", "stats", "--source", "synthetic", "--identities", "2", "--impressions", "2"]
    assert main([*args, "--plot", str(plot), "--json", str(table)]) == 0
    printed = capsys.readouterr().out
    assert "ridge period (px)" in printed and plot.is_file() and table.is_file()


def test_cli_synthetic_stats_take_generator_settings(tmp_path: Path, capsys) -> None:
    args = ["data", "stats", "--source", "synthetic", "--identities", "2", "--impressions", "1"]
    table = tmp_path / "s.json"
    options = '{"impression_shape": [192, 192], "partial_prob": 1.0}'
    assert main([*args, "--generator", options, "--json", str(table)]) == 0
    recorded = json.loads(table.read_text())["synthetic"]["generator"]
    assert recorded["impression_shape"] == [192, 192] and recorded["partial_prob"] == 1.0
    capsys.readouterr()
    for bad, says in (("{not json", "not JSON"), ("[1]", "JSON object"), ('{"x": 1}', "unknown")):
        assert main([*args, "--generator", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and says in err and "Traceback" not in err


def test_cli_pairs_name_their_registration(tmp_path: Path) -> None:
    args = ["data", "stats", "--source", "synthetic", "--identities", "2", "--impressions", "2"]
    table = tmp_path / "s.json"
    for registration in ("anchor", "core"):
        assert main([*args, "--pairs", "--registration", registration, "--json", str(table)]) == 0
        stats = json.loads(table.read_text())["synthetic"]
        assert stats["registration"] == registration and stats["pairs"] == 2


def test_registered_core_depth_falls_when_the_print_is_cut_near_its_core() -> None:
    from devices.registration import estimate_pose
    from pretrain.data.fingerprint import FingerprintGenerator

    image = FingerprintGenerator(seed=2).impression(0, 0)
    whole = measure(image)
    assert whole.core_strength > 500 and whole.core_edge_px >= 48
    pose = estimate_pose(image)
    cut = np.ascontiguousarray(image[:, max(0, pose.col - 20) :])  # the core 20 px from the frame
    near = measure(cut)
    assert near.core_edge_px < whole.core_edge_px and near.core_edge_px <= 32
    summary = summarise([whole, near])
    assert summary["core_edge_px"]["median"] == pytest.approx(
        (whole.core_edge_px + near.core_edge_px) / 2
    )


def test_flow_statistics_need_one_core() -> None:
    flat = measure(stripes(9.0, 30.0))
    assert np.isnan(flat.loop_axis_deg) and np.isnan(flat.steep_below_core)
    summary = summarise([flat, flat])
    assert np.isnan(summary["steep_below_core"]["median"])


def test_fitted_loops_run_steeper_below_their_core_than_zero_pole_ones() -> None:
    from pretrain.data.fingerprint import GeneratorConfig, generate_master

    def steep(flow: str) -> float:
        values = []
        for identity in range(24):
            master = generate_master(identity, seed=0, config=GeneratorConfig(flow=flow))
            if master.points.fp_class in ("left_loop", "right_loop"):
                stats = measure(master.image())
                assert 0 <= stats.loop_axis_deg < 360 or np.isnan(stats.loop_axis_deg)
                values.append(stats.steep_below_core)
        return float(np.nanmedian(values))

    # Measured 0.16 and 0.26 (the sensor sets' prints: about 0.5).
    assert steep("sfinge") > steep("zero_pole") + 0.05


def test_a_loops_delta_is_measured_where_the_generator_put_it() -> None:
    from pretrain.data.fingerprint import GeneratorConfig, generate_master

    assert np.isnan(measure(stripes(9.0, 30.0)).delta_distance_px)
    checked = 0
    for identity in range(24):
        master = generate_master(identity, seed=0, config=GeneratorConfig(flow="sfinge"))
        points = master.points
        if points.fp_class not in ("left_loop", "right_loop"):
            continue
        stats = measure(master.image())
        if np.isnan(stats.delta_distance_px):  # the delta off the finger, or a core missed
            continue
        dx, dy = points.deltas[0] - points.cores[0]
        assert stats.delta_distance_px == pytest.approx(np.hypot(dx, dy), abs=24)
        assert stats.delta_angle_deg == pytest.approx(np.degrees(np.arctan2(dy, abs(dx))), abs=15)
        checked += 1
    assert checked >= 3
