"""Loop flows fitted to prints: the table, the generator's ``flow`` setting and the fit."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.data.fingerprint import GeneratorConfig, SingularPoints, generate_master
from pretrain.data.fingerprint.flow import ENDS, fitted_loop, load_table, mirrored, periodic
from pretrain.data.fingerprint.orientation import orientation_field
from pretrain.data.flowfit import LoopFit, fit_loop, fit_table, plausible

SFINGE = GeneratorConfig(flow="sfinge")
LOOPS = ("left_loop", "right_loop")


def test_the_table_holds_left_loops_with_the_delta_below_right() -> None:
    table = load_table()
    assert table.core.shape == table.delta.shape == (len(table.offset), len(ENDS))
    assert len(table.offset) >= 10
    # Every row passed the fit's plausibility check: delta to the lower right of the core.
    assert (table.offset[:, 0] > 0).all() and (table.offset[:, 1] > 0).all()
    assert not table.core.flags.writeable


def test_periodic_extends_by_whole_turns() -> None:
    values = ENDS + load_table().core[0]
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
        np.array([[150.0, 160.0]]) + table.offset[0],
        np.stack([ENDS + table.core[0], ENDS + table.delta[0]]),
    )
    width = 320.0
    right = SingularPoints(
        "right_loop",
        np.array([[width - 150.0, 160.0]]),
        np.array([[width - 150.0 - table.offset[0][0], 160.0 + table.offset[0][1]]]),
        np.stack([mirrored(left.corrections[0]), mirrored(left.corrections[1])]),
    )
    rows, cols = np.mgrid[10:380:23, 5:315:19].astype(float)
    theta_left = orientation_field(left, rows, cols)
    theta_right = orientation_field(right, rows, width - cols)
    # Orientation pi - theta is the mirror of theta; compare as doubled angles.
    diff = np.angle(np.exp(2j * (theta_right - (np.pi - theta_left))))
    assert np.abs(diff).max() < 1e-6
    np.testing.assert_allclose(mirrored(mirrored(left.corrections[0])), left.corrections[0])


def test_sfinge_flow_changes_the_loops_and_nothing_else() -> None:
    changed = 0
    for identity in range(12):
        plain = generate_master(identity, seed=0)
        fitted = generate_master(identity, seed=0, config=SFINGE)
        assert plain.points.fp_class == fitted.points.fp_class
        np.testing.assert_array_equal(plain.points.cores, fitted.points.cores)
        if plain.points.fp_class not in LOOPS:
            np.testing.assert_array_equal(plain.ridges, fitted.ridges)
            continue
        changed += 1
        offset = fitted.points.deltas[0] - fitted.points.cores[0]
        if fitted.points.fp_class == "right_loop":
            offset[0] = -offset[0]
        assert np.isclose(load_table().offset, offset).all(axis=1).any()
        assert not np.array_equal(plain.ridges, fitted.ridges)
    assert changed >= 4


def test_fitted_loop_refuses_other_classes() -> None:
    whorl = SingularPoints("whorl", np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((4, len(ENDS))))
    with pytest.raises(ValueError, match="loops"):
        fitted_loop(np.random.default_rng(0), whorl, load_table())


def test_an_unknown_flow_is_refused() -> None:
    with pytest.raises(ValueError, match="flow must be one of"):
        GeneratorConfig(flow="spiral")


def test_the_fit_finds_a_known_loop_again() -> None:
    # Masters drawn with known corrections and deltas: the fit must explain their flow far
    # better than the identity does, and put the delta near where it was drawn.
    errors, misses = [], []
    for identity in range(12):
        master = generate_master(identity, seed=0, config=SFINGE)
        if master.points.fp_class not in LOOPS:
            continue
        fit = fit_loop(master.image())
        if fit is None:
            continue
        truth = master.points.deltas[0] - master.points.cores[0]
        truth[0] = abs(truth[0])  # the fit mirrors right loops to left ones
        errors.append((fit.error_before, fit.error_after))
        misses.append(float(np.hypot(*(fit.offset - truth))))
    assert len(misses) >= 4
    assert all(after < 0.25 * before for before, after in errors)
    assert np.median(misses) < 30.0


def test_implausible_deltas_are_dropped() -> None:
    zero = np.zeros(len(ENDS))

    def fit(offset: tuple[float, float]) -> LoopFit:
        return LoopFit(zero, zero, np.array(offset), 0.2, 0.01)

    assert plausible(fit((80.0, 100.0)))
    assert not plausible(fit((80.0, -100.0)))  # above the core
    assert not plausible(fit((-80.0, 100.0)))  # on the opening's side
    assert not plausible(fit((20.0, 30.0)))  # too near
    assert not plausible(fit((300.0, 300.0)))  # too far


def test_a_table_of_no_loops_is_refused() -> None:
    with pytest.raises(ValueError, match="no image read as a loop"):
        fit_table([np.full((300, 300), 255, np.uint8)])
