"""Loop and whorl flows fitted to prints: the table, the generator's ``flow`` setting, the fit."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.data.fingerprint import GeneratorConfig, SingularPoints, generate_master
from pretrain.data.fingerprint.flow import ENDS, fitted_flow, load_table, mirrored, periodic
from pretrain.data.fingerprint.orientation import orientation_field
from pretrain.data.flowfit import Fit, fit_print, fit_table, plausible

SFINGE = GeneratorConfig(flow="sfinge")
LOOPS = ("left_loop", "right_loop")
FITTED = (*LOOPS, "whorl")


def test_the_table_holds_left_loops_and_whorls_with_the_deltas_below() -> None:
    table = load_table()
    n, m = len(table.loop_offset), len(table.whorl_cores)
    assert table.loop_core.shape == table.loop_delta.shape == (n, len(ENDS))
    assert table.whorl_corrections.shape == (m, 4, len(ENDS))
    assert n >= 10 and m >= 5
    # Every row passed the fit's plausibility check: a loop's delta to the lower right of its
    # core, a whorl's below its cores, one on each side; a whorl's upper core first.
    assert (table.loop_offset > 0).all()
    assert (table.whorl_deltas[:, :, 1] > 0).all()
    assert (table.whorl_deltas[:, 0, 0] < 0).all() and (table.whorl_deltas[:, 1, 0] > 0).all()
    assert (table.whorl_cores[:, 0, 1] <= table.whorl_cores[:, 1, 1]).all()
    assert not table.loop_core.flags.writeable


def test_periodic_extends_by_whole_turns() -> None:
    values = ENDS + load_table().loop_core[0]
    angles = np.linspace(-np.pi, np.pi, 7)
    np.testing.assert_allclose(
        periodic(values, angles + 2 * np.pi), periodic(values, angles) + 2 * np.pi
    )
    np.testing.assert_allclose(periodic(values, ENDS), values)


def test_mirrored_corrections_draw_the_mirror_image() -> None:
    table = load_table()
    left = SingularPoints(
        "left_loop",
        np.array([[150.0, 160.0]]),
        np.array([[150.0, 160.0]]) + table.loop_offset[0],
        np.stack([ENDS + table.loop_core[0], ENDS + table.loop_delta[0]]),
    )
    width = 320.0
    right = SingularPoints(
        "right_loop",
        np.array([[width - 150.0, 160.0]]),
        np.array([[width - 150.0 - table.loop_offset[0][0], 160.0 + table.loop_offset[0][1]]]),
        np.stack([mirrored(left.corrections[0]), mirrored(left.corrections[1])]),
    )
    rows, cols = np.mgrid[10:380:23, 5:315:19].astype(float)
    theta_left = orientation_field(left, rows, cols)
    theta_right = orientation_field(right, rows, width - cols)
    # Orientation pi - theta is the mirror of theta; compare as doubled angles.
    diff = np.angle(np.exp(2j * (theta_right - (np.pi - theta_left))))
    assert np.abs(diff).max() < 1e-6
    np.testing.assert_allclose(mirrored(mirrored(left.corrections[0])), left.corrections[0])


def test_sfinge_flow_changes_the_loops_and_whorls_and_nothing_else() -> None:
    table = load_table()
    changed = set()
    for identity in range(16):
        plain = generate_master(identity, seed=0)
        fitted = generate_master(identity, seed=0, config=SFINGE)
        assert plain.points.fp_class == fitted.points.fp_class
        np.testing.assert_array_equal(plain.silhouette, fitted.silhouette)
        if plain.points.fp_class not in FITTED:
            np.testing.assert_array_equal(plain.ridges, fitted.ridges)
            continue
        changed.add(plain.points.fp_class)
        assert not np.array_equal(plain.ridges, fitted.ridges)
        if plain.points.fp_class == "whorl":
            # Placed on the plain whorl's cores' midpoint, shaped as a fitted one.
            centre = plain.points.cores.mean(axis=0)
            np.testing.assert_allclose(fitted.points.cores.mean(axis=0), centre, atol=1e-9)
            rel = fitted.points.deltas - centre
            assert np.isclose(table.whorl_deltas, rel).all(axis=(1, 2)).any()
            continue
        np.testing.assert_array_equal(plain.points.cores, fitted.points.cores)
        offset = fitted.points.deltas[0] - fitted.points.cores[0]
        if fitted.points.fp_class == "right_loop":
            offset[0] = -offset[0]
        assert np.isclose(table.loop_offset, offset).all(axis=1).any()
    assert changed == set(FITTED)


def test_fitted_flows_refuse_other_classes() -> None:
    arch = SingularPoints("arch", np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="loops and whorls"):
        fitted_flow(np.random.default_rng(0), arch, load_table())


def test_an_unknown_flow_is_refused() -> None:
    with pytest.raises(ValueError, match="flow must be one of"):
        GeneratorConfig(flow="spiral")


def test_the_fit_finds_known_flows_again() -> None:
    # Masters drawn with known corrections and deltas: the fit must explain their flow far
    # better than the identity does, and put the deltas near where they were drawn.
    errors, misses, classes = [], [], set()
    for identity in range(16):
        master = generate_master(identity, seed=0, config=SFINGE)
        if master.points.fp_class not in FITTED:
            continue
        fit = fit_print(master.image())
        if fit is None:
            continue
        classes.add(fit.fp_class)
        centre = master.points.cores.mean(axis=0)
        truth = master.points.deltas - centre
        if master.points.fp_class in LOOPS:
            truth[:, 0] = abs(truth[:, 0])  # the fit mirrors right loops to left ones
        errors.append((fit.error_before, fit.error_after))
        misses.extend(np.hypot(*(fit.deltas - truth).T))
    assert classes == {"left_loop", "whorl"}
    assert all(after < 0.5 * before for before, after in errors)
    assert np.median(misses) < 30.0


def test_implausible_deltas_are_dropped() -> None:
    zero = np.zeros(len(ENDS))

    def fit(offset: tuple[float, float]) -> Fit:
        return Fit("left_loop", np.zeros((1, 2)), np.array([offset]), zero[None], 0.2, 0.01)

    assert plausible(fit((80.0, 100.0)))
    assert not plausible(fit((80.0, -100.0)))  # above the core
    assert not plausible(fit((-80.0, 100.0)))  # on the opening's side
    assert not plausible(fit((20.0, 30.0)))  # too near
    assert not plausible(fit((300.0, 300.0)))  # too far
    whorl = Fit(
        "whorl", np.zeros((2, 2)), np.array([[-90.0, 100.0], [90.0, 100.0]]), zero, 0.2, 0.0
    )
    assert plausible(whorl)
    assert not plausible(whorl._replace(deltas=whorl.deltas[::-1]))  # each on the other side


def test_a_table_of_no_loops_is_refused() -> None:
    with pytest.raises(ValueError, match="needs loops and whorls"):
        fit_table([np.full((300, 300), 255, np.uint8)])


def test_flow_share_fits_that_share_of_the_masters() -> None:
    none = GeneratorConfig(flow="sfinge", flow_share=0.0)
    half = GeneratorConfig(flow="sfinge", flow_share=0.5)
    fitted, plain = 0, 0
    for identity in range(16):
        default = generate_master(identity, seed=0)
        np.testing.assert_array_equal(
            generate_master(identity, seed=0, config=none).ridges, default.ridges
        )
        if default.points.fp_class not in FITTED:
            continue
        mixed = generate_master(identity, seed=0, config=half)
        if np.array_equal(mixed.ridges, default.ridges):
            plain += 1
        else:  # a fitted one is the same master as with every loop and whorl fitted
            np.testing.assert_array_equal(
                mixed.ridges, generate_master(identity, seed=0, config=SFINGE).ridges
            )
            fitted += 1
    assert fitted >= 2 and plain >= 2
    with pytest.raises(ValueError, match="flow_share"):
        GeneratorConfig(flow="sfinge", flow_share=1.5)


def test_a_blended_flow_lies_between_two_fitted_prints() -> None:
    table = load_table()
    loop = SingularPoints(
        "left_loop", np.array([[150.0, 160.0]]), np.array([[200.0, 260.0]]), np.zeros((2, 3))
    )
    between = 0
    for seed in range(40):
        offset = fitted_flow(np.random.default_rng(seed), loop, table, blend=True).deltas[0]
        offset = offset - loop.cores[0]
        # On a segment between two rows: some pair (i, j) and w in [0, 1] give the offset.
        a, b = table.loop_offset[:, None], table.loop_offset[None, :]
        span = b - a
        w = ((offset - a) * span).sum(-1) / np.maximum((span**2).sum(-1), 1e-12)
        on = np.linalg.norm(a + np.clip(w, 0, 1)[..., None] * span - offset, axis=-1) < 1e-6
        assert on.any()
        between += not np.isclose(table.loop_offset, offset).all(axis=1).any()
    assert between >= 30  # a blend is rarely one of the table's prints


def test_blended_flows_draw_other_masters_on_the_same_loops_and_whorls() -> None:
    blend = GeneratorConfig(flow="sfinge_blend")
    for identity in range(8):
        fitted = generate_master(identity, seed=0, config=SFINGE)
        blended = generate_master(identity, seed=0, config=blend)
        assert fitted.points.fp_class == blended.points.fp_class
        centre = fitted.points.cores.mean(axis=0)  # a loop's core, a whorl's cores' midpoint
        np.testing.assert_allclose(blended.points.cores.mean(axis=0), centre, atol=1e-9)
        if fitted.points.fp_class in FITTED:
            assert not np.array_equal(fitted.ridges, blended.ridges)


def test_loop_delta_scale_moves_a_loops_delta_and_nothing_else() -> None:
    steep = GeneratorConfig(flow="sfinge_blend", loop_delta_scale=(0.6, 1.6))
    blend = GeneratorConfig(flow="sfinge_blend")
    seen = 0
    for identity in range(8):
        a = generate_master(identity, seed=0, config=blend).points
        b = generate_master(identity, seed=0, config=steep).points
        np.testing.assert_array_equal(a.cores, b.cores)
        np.testing.assert_array_equal(a.corrections, b.corrections)
        if a.fp_class in LOOPS:
            np.testing.assert_allclose(
                np.abs(b.deltas - b.cores), np.abs(a.deltas - a.cores) * [0.6, 1.6]
            )
            seen += 1
        else:
            np.testing.assert_array_equal(a.deltas, b.deltas)
    assert seen >= 2
    with pytest.raises(ValueError, match="loop_delta_scale"):
        GeneratorConfig(flow="sfinge", loop_delta_scale=(0.0, 1.0))


def test_closest_medians_takes_the_smallest_relative_gap() -> None:
    from pretrain.data.flowfit import closest_medians

    target = {"steep_below_core": 0.5, "delta_distance_px": 150.0, "delta_angle_deg": 70.0}
    near = {"steep_below_core": 0.45, "delta_distance_px": 150.0, "delta_angle_deg": 63.0}
    far = {"steep_below_core": 0.5, "delta_distance_px": 100.0, "delta_angle_deg": 70.0}
    chosen, gaps = closest_medians(target, {"near": near, "far": far})
    assert chosen == "near"
    assert gaps["near"] == pytest.approx(0.2) and gaps["far"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no candidates"):
        closest_medians(target, {})
