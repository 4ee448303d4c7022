"""The synthetic fingerprint generator: determinism, the SFinGe model's parts, realism vs FVC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pretrain.data import aligned_correlation, measure, read_fvc, summarise
from pretrain.data.fingerprint import (
    CLASS_FREQUENCIES,
    CLASSES,
    FingerprintGenerator,
    GeneratorConfig,
    generate_impression,
    generate_master,
    grow_ridges,
    orientation_field,
    sample_class,
    sample_silhouette,
    sample_singular_points,
    synthetic_fingerprints,
)
from pretrain.data.fingerprint.creases import FIELDS as CREASE_FIELDS
from pretrain.data.fingerprint.creases import crease_map
from pretrain.data.fvc import SENSOR_SETS


def test_same_seed_gives_the_same_bytes() -> None:
    a = generate_impression(3, 1, seed=7)
    b = generate_impression(3, 1, seed=7)
    assert a.dtype == np.uint8 and a.shape == GeneratorConfig().impression_shape
    assert a.tobytes() == b.tobytes()
    assert (
        generate_master(3, seed=7).ridges.tobytes() == generate_master(3, seed=7).ridges.tobytes()
    )
    assert a.tobytes() != generate_impression(3, 1, seed=8).tobytes()
    assert a.tobytes() != generate_impression(3, 2, seed=7).tobytes()


def test_an_identity_alone_equals_the_same_identity_in_a_batch() -> None:
    images, owners = FingerprintGenerator(seed=7).impressions([2, 3, 4], 2)
    assert owners.tolist() == [2, 2, 3, 3, 4, 4]
    alone = generate_impression(3, 1, seed=7)
    assert images[3].tobytes() == alone.tobytes()


def test_class_sampler_has_the_natural_frequencies() -> None:
    rng = np.random.default_rng(0)
    draws = [sample_class(rng) for _ in range(20000)]
    freq = [draws.count(c) / len(draws) for c in CLASSES]
    np.testing.assert_allclose(freq, CLASS_FREQUENCIES, atol=0.01)


def winding(theta_at, x: float, y: float, radius: float = 3.0) -> float:
    """Total turn of the orientation field around a small circle, in half-turns."""
    phi = np.linspace(0, 2 * np.pi, 129)
    theta = theta_at(y + radius * np.sin(phi), x + radius * np.cos(phi))
    step = np.mod(np.diff(theta) + np.pi / 2, np.pi) - np.pi / 2
    return float(step.sum() / np.pi)


@pytest.mark.parametrize("fp_class", CLASSES)
def test_orientation_field_turns_around_the_singular_points(fp_class: str) -> None:
    rng = np.random.default_rng(5)
    sil = sample_silhouette(rng, (384, 320))
    points = sample_singular_points(rng, fp_class, sil)

    def theta_at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return orientation_field(points, rows, cols)

    for x, y in points.cores:
        assert winding(theta_at, x, y) == pytest.approx(1.0, abs=1e-6)
    for x, y in points.deltas:
        assert winding(theta_at, x, y) == pytest.approx(-1.0, abs=1e-6)
    # Away from the singular points the field turns by nothing.
    assert winding(theta_at, 30.0, 30.0) == pytest.approx(0.0, abs=1e-6)
    assert len(points.cores) == {"arch": 0, "tented_arch": 1, "whorl": 2}.get(fp_class, 1)


def test_ridges_grow_from_one_seed_at_the_tuned_period() -> None:
    shape = (96, 96)
    seeds = np.zeros(shape, np.float32)
    seeds[48, 48] = 4.0
    field = grow_ridges(np.zeros(shape), np.full(shape, 5.0), seeds, iterations=14)
    assert np.mean(np.abs(field) > 0.5) > 0.5  # the pattern spread from a single seed
    spectrum = np.abs(np.fft.fft(field[:, 48] - field[:, 48].mean()))
    assert int(np.argmax(spectrum[: shape[0] // 2])) == round(shape[0] / 5.0)  # horizontal ridges


def test_dataset_shapes_and_labels() -> None:
    data = synthetic_fingerprints([5, 9], 2, seed=1)
    assert data.images.shape == (4, 128, 128, 1) and data.images.dtype == np.float32
    assert data.labels.tolist() == [0, 0, 1, 1]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of growth_step"):
        GeneratorConfig(master_shape=(385, 320))
    with pytest.raises(ValueError, match=">= 0"):
        generate_master(-1, seed=0)


def test_measured_period_follows_the_model() -> None:
    gen = FingerprintGenerator(seed=3)
    for identity in range(3):
        master = gen.master(identity)
        stats = measure(gen.impression(identity, 0))
        assert stats.period_px == pytest.approx(float(np.median(master.period)), rel=0.15)


def test_impressions_of_one_master_are_more_alike_than_two_masters() -> None:
    gen = FingerprintGenerator(seed=11)
    ids = range(4)
    prints = {(i, k): gen.impression(i, k) for i in ids for k in range(3)}
    genuine = [aligned_correlation(prints[i, 0], prints[i, k]) for i in ids for k in (1, 2)]
    impostor = [aligned_correlation(prints[i, 0], prints[j, 1]) for i in ids for j in ids if i != j]
    assert np.mean(genuine) > np.mean(impostor) + 0.1
    assert min(genuine) > np.median(impostor)


@pytest.mark.data
def test_period_and_coherence_within_the_real_fvc_ranges(data_root: Path) -> None:
    real = []
    for name in SENSOR_SETS:
        if not (data_root / "fvc" / name).is_dir():
            pytest.skip(f"FVC set {name} not found under {data_root / 'fvc'}.")
        images = read_fvc(name, data_root).images[::2]  # 4 impressions of each finger
        real.append(summarise([measure(im) for im in images]))
    gen = FingerprintGenerator(seed=0)
    images, _ = gen.impressions(range(8), 2)
    synthetic = [measure(im) for im in images]
    summary = summarise(synthetic)
    for key in ("period_px", "coherence"):
        low = min(s[key]["p10"] for s in real)
        high = max(s[key]["p90"] for s in real)
        assert low <= summary[key]["median"] <= high, (key, low, summary[key], high)
        inside = np.mean([low <= getattr(s, key) <= high for s in synthetic])
        # p10-p90 holds 80% of each real set; ask the same of most synthetic prints.
        assert inside >= 0.7, (key, inside)


def test_placement_spread_is_a_generator_setting() -> None:
    from pretrain.data.fingerprint.impressions import sample_placement

    rng = np.random.default_rng(0)
    narrow = np.array([sample_placement(rng, (256, 256)).shift for _ in range(2000)])
    wide = np.array(
        [sample_placement(rng, (320, 320), shift_sd=46, shift_max=120).shift for _ in range(2000)]
    )
    assert np.abs(narrow).max() <= 40 and np.std(narrow) < 16
    assert np.abs(wide).max() <= 120 and 40 < np.std(wide) < 47
    config = GeneratorConfig.from_dict({"impression_shape": [320, 320], "shift_sd": 46})
    assert config.impression_shape == (320, 320) and config.shift_sd == 46
    assert generate_impression(1, 0, seed=0, config=config).shape == (320, 320)
    # the default settings draw the same prints as before the setting existed
    same = GeneratorConfig(shift_sd=16.0, shift_max=40.0)
    np.testing.assert_array_equal(
        generate_impression(1, 2, seed=0, config=same), generate_impression(1, 2, seed=0)
    )
    with pytest.raises(ValueError, match=r"unknown generator option.*shift_mean"):
        GeneratorConfig.from_dict({"shift_mean": 3})
    with pytest.raises(ValueError, match="shift_sd and shift_max"):
        GeneratorConfig(shift_sd=-1.0)


def test_partial_contact_is_a_generator_setting() -> None:
    # The default settings draw the same prints as before the setting existed.
    same = GeneratorConfig(partial_prob=0.3, partial_reach=(40.0, 120.0))
    np.testing.assert_array_equal(
        generate_impression(3, 1, seed=0, config=same), generate_impression(3, 1, seed=0)
    )
    # Every impression half lifted (the edge through the window centre) shows less print than
    # none lifted: fewer pixels in the print's foreground.
    config = GeneratorConfig.from_dict({"partial_prob": 1.0, "partial_reach": [0, 0]})
    assert config.partial_reach == (0, 0)  # a tuple, from the JSON list
    never = GeneratorConfig(partial_prob=0.0)
    lifted = [measure(generate_impression(i, 0, seed=0, config=config)) for i in range(4)]
    whole = [measure(generate_impression(i, 0, seed=0, config=never)) for i in range(4)]
    shown = np.mean([m.foreground_fraction for m in lifted])
    full = np.mean([m.foreground_fraction for m in whole])
    assert shown < 0.8 * full, (shown, full)
    with pytest.raises(ValueError, match="partial_prob"):
        GeneratorConfig(partial_prob=1.5)
    with pytest.raises(ValueError, match="partial_reach"):
        GeneratorConfig(partial_reach=(80.0, 10.0))


def test_orientation_noise_bends_the_flow_and_keeps_the_singular_points() -> None:
    plain = generate_master(5, seed=0)
    # The default settings draw the same masters as before the setting existed.
    same = generate_master(5, seed=0, config=GeneratorConfig(orientation_noise=0.0))
    np.testing.assert_array_equal(same.ridges, plain.ridges)
    bent = generate_master(5, seed=0, config=GeneratorConfig(orientation_noise=0.5))
    turn = bent.theta - plain.theta
    # A smooth turn of about the asked spread (one random field; its knots are few), the same
    # singular points and period map, and other ridges grown along the turned flow.
    assert 0.25 < float(turn.std()) < 0.75, float(turn.std())
    assert float(np.abs(np.diff(turn, axis=1)).max()) < 0.2  # per 2 px cell
    np.testing.assert_array_equal(bent.points.cores, plain.points.cores)
    np.testing.assert_array_equal(bent.period, plain.period)
    assert not np.allclose(bent.ridges, plain.ridges)
    assert GeneratorConfig.from_dict({"orientation_noise": 0.3}).orientation_noise == 0.3
    with pytest.raises(ValueError, match="orientation_noise"):
        GeneratorConfig(orientation_noise=-0.1)


def test_orientation_noise_share_bends_that_share_of_the_masters() -> None:
    bent = GeneratorConfig(orientation_noise=0.5)
    half = GeneratorConfig(orientation_noise=0.5, orientation_noise_share=0.5)
    kinds = []
    for identity in range(12):
        mixed = generate_master(identity, seed=0, config=half).theta
        # Each master is drawn either as the bent generator's or as the plain one's, exactly.
        if np.array_equal(mixed, generate_master(identity, seed=0, config=bent).theta):
            kinds.append("bent")
        else:
            np.testing.assert_array_equal(mixed, generate_master(identity, seed=0).theta)
            kinds.append("plain")
    assert 2 <= kinds.count("bent") <= 10, kinds  # 12 fair draws
    none = GeneratorConfig(orientation_noise=0.5, orientation_noise_share=0.0)
    np.testing.assert_array_equal(
        generate_master(3, seed=0, config=none).ridges, generate_master(3, seed=0).ridges
    )
    with pytest.raises(ValueError, match="orientation_noise_share"):
        GeneratorConfig(orientation_noise_share=1.5)


def test_flow_twins_share_the_flow_and_differ_in_ridge_detail() -> None:
    twins = GeneratorConfig(twin_share=1.0)
    for even in (0, 2):
        a = generate_master(even, seed=0, config=twins)
        b = generate_master(even + 1, seed=0, config=twins)
        # The even identity is the plain generator's; its partner takes its flow and period.
        np.testing.assert_array_equal(a.ridges, generate_master(even, seed=0).ridges)
        np.testing.assert_array_equal(a.theta, b.theta)
        np.testing.assert_array_equal(a.period, b.period)
        assert a.silhouette == b.silhouette and a.centre == b.centre
        # Grown from other seeds: the ridges are another pattern on the same flow.
        corr = np.corrcoef(a.ridges.ravel(), b.ridges.ravel())[0, 1]
        assert abs(corr) < 0.5, corr
    half = GeneratorConfig(twin_share=0.5)
    kinds = [
        np.array_equal(
            generate_master(k + 1, seed=0, config=half).theta,
            generate_master(k, seed=0, config=half).theta,
        )
        for k in range(0, 24, 2)
    ]
    assert 2 <= sum(kinds) <= 10, kinds  # 12 fair draws
    none = GeneratorConfig(twin_share=0.0)
    np.testing.assert_array_equal(
        generate_master(3, seed=0, config=none).ridges, generate_master(3, seed=0).ridges
    )
    with pytest.raises(ValueError, match="twin_share"):
        GeneratorConfig(twin_share=-0.5)


def test_period_range_sets_the_ridge_period() -> None:
    # The default settings draw the same masters as before the setting existed.
    same = GeneratorConfig(period_range=(8.2, 10.8))
    np.testing.assert_array_equal(
        generate_master(2, seed=0, config=same).ridges, generate_master(2, seed=0).ridges
    )
    wide = GeneratorConfig.from_dict({"period_range": [12.0, 12.0]})
    assert wide.period_range == (12.0, 12.0)
    # The local periods vary around the drawn mean (noise, wider above the core and below the
    # delta); the measured period of an impression follows it.
    period = generate_master(2, seed=0, config=wide).period
    assert 11.5 < float(np.median(period)) < 13.5, float(np.median(period))
    narrow = measure(generate_impression(2, 0, seed=0, config=GeneratorConfig(period_range=(8, 8))))
    broad = measure(generate_impression(2, 0, seed=0, config=wide))
    assert broad.period_px > narrow.period_px + 2, (narrow.period_px, broad.period_px)
    for bad in ((5.0, 9.0), (10.0, 9.0), (9.0, 15.0)):
        with pytest.raises(ValueError, match="period_range"):
            GeneratorConfig(period_range=bad)


def test_finger_scale_draws_larger_fingertips() -> None:
    # Scale 1 draws the masters of before the setting existed.
    np.testing.assert_array_equal(
        generate_master(4, seed=0, config=GeneratorConfig(finger_scale=1.0)).ridges,
        generate_master(4, seed=0).ridges,
    )
    base = generate_master(4, seed=0).silhouette
    large = GeneratorConfig.from_dict(
        {"finger_scale": 1.25, "master_shape": [512, 432], "impression_shape": [448, 448]}
    )
    sil = generate_master(4, seed=0, config=large).silhouette
    # The same draws, every length scaled.
    for name in ("a1", "a2", "b1", "b2", "c"):
        assert getattr(sil, name) == pytest.approx(1.25 * getattr(base, name)), name
    # A larger finger covers more of a large impression.
    small = GeneratorConfig(master_shape=(512, 432), impression_shape=(448, 448))
    fg_small = measure(generate_impression(4, 0, seed=0, config=small)).foreground_px
    fg_large = measure(generate_impression(4, 0, seed=0, config=large)).foreground_px
    assert fg_large > 1.15 * fg_small, (fg_small, fg_large)
    for bad in (0.4, 2.5):
        with pytest.raises(ValueError, match="finger_scale"):
            GeneratorConfig(finger_scale=bad)


def test_creases_are_white_lines_of_the_finger() -> None:
    # No creases draws the prints of before the setting existed; creases draw nothing else.
    plain = generate_impression(5, 1, seed=0)
    np.testing.assert_array_equal(
        generate_impression(5, 1, seed=0, config=GeneratorConfig(creases=0.0)), plain
    )
    creased = GeneratorConfig.from_dict({"creases": 6.0})
    master = generate_master(5, seed=0, config=creased)
    assert master.creases.shape[1] == len(CREASE_FIELDS) and len(master.creases) > 0
    np.testing.assert_array_equal(master.ridges, generate_master(5, seed=0).ridges)
    # A crease only takes ink away: the print gets lighter along lines, nowhere darker.
    image = generate_impression(5, 1, seed=0, config=creased)
    diff = image.astype(int) - plain.astype(int)
    assert diff.min() >= -1 and (diff > 20).mean() > 0.002, (diff.min(), (diff > 20).mean())
    # The same creases in every impression: the master's, not the acquisition's.
    again = generate_master(5, seed=0, config=creased).creases
    np.testing.assert_array_equal(again, master.creases)
    assert not np.array_equal(generate_master(6, seed=0, config=creased).creases, again)
    with pytest.raises(ValueError, match="creases"):
        GeneratorConfig(creases=-1.0)


def test_crease_map_follows_the_line_and_opens_under_light_pressure() -> None:
    # One straight horizontal crease through (100, 50), 80 px long, half-width 2, full depth.
    crease = np.array([[100.0, 50.0, 0.0, 80.0, 2.0, 0.0, 1.0]])
    rows, cols = np.mgrid[0:100, 0:200].astype(np.float32)
    firm = crease_map(crease, rows, cols, pressure=1.02)
    light = crease_map(crease, rows, cols, pressure=0.78)
    assert firm[50, 100] == pytest.approx(1.0)
    assert firm[50, 175] == 0.0 and firm[20, 100] == 0.0  # past its end; far across it
    assert light.sum() > 1.3 * firm.sum()
    # A bend moves the middle line across the crease at its ends, not at its centre.
    bent = crease_map(crease + np.array([0, 0, 0, 0, 0, 10.0, 0]), rows, cols, pressure=1.0)
    assert bent[50, 100] == pytest.approx(1.0)
    assert bent[56, 130] > 0.5 > bent[50, 130]  # offset 10 * (30 / 40)^2 = 5.6 px
