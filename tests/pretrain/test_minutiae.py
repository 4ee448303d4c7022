"""Minutiae extraction: crossing number, skeleton clean-up, synthetic ridges, generator prints."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.data.fingerprint.impressions import rigid_to_master
from pretrain.data.fingerprint.synthetic import (
    GeneratorConfig,
    generate_impression,
    generate_master,
    impression_placement,
)
from pretrain.data.minutiae import (
    BIFURCATION,
    ENDING,
    PX_PER_MM,
    Minutia,
    MinutiaeError,
    crossing_number,
    master_minutiae,
    minutiae,
    minutiae_density,
    skeleton_minutiae,
)

PERIOD = 9.0  # px, a typical ridge period at 500 dpi
SHAPE = (192, 192)
CENTRE = (96.0, 94.5)  # (x, y): a ridge's centre line runs through it (cos = -1)


def ridges(phase: np.ndarray) -> np.ndarray:
    """uint8 print whose ridges (dark) lie where ``cos(phase) = -1``."""
    return np.clip(np.rint(128 + 90 * np.cos(phase)), 0, 255).astype(np.uint8)


def stripe_phase(angle_deg: float = 0.0) -> np.ndarray:
    """Phase of straight ridges of :data:`PERIOD` px running at ``angle_deg`` (image axes)."""
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float64)
    a = np.radians(angle_deg)
    return 2 * np.pi * (-(x - CENTRE[0]) * np.sin(a) + (y - CENTRE[1]) * np.cos(a)) / PERIOD + np.pi


def cut(image: np.ndarray, gap: float) -> np.ndarray:
    """``image`` (horizontal stripes) with the ridge through :data:`CENTRE` cut for ``gap`` px."""
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    out = image.copy()
    x0 = CENTRE[0] - gap / 2
    out[(np.abs(y - CENTRE[1]) < 3.2) & (x >= x0) & (x < x0 + gap)] = 218  # valley grey
    return out


def near(found: list[Minutia], x: float, y: float, radius: float) -> list[Minutia]:
    return [m for m in found if np.hypot(m.x - x, m.y - y) <= radius]


def test_crossing_number_of_a_drawn_fork() -> None:
    skeleton = np.zeros((9, 12), bool)
    skeleton[4, 1:6] = True  # the stem
    for k in range(1, 5):  # two branches from (4, 5)
        skeleton[4 - k, 5 + k] = skeleton[4 + k, 5 + k] = True
    cn = crossing_number(skeleton)
    assert cn[4, 1] == 1 and cn[0, 9] == 1 and cn[8, 9] == 1
    assert cn[4, 3] == 2 and cn[2, 7] == 2
    assert cn[4, 5] == 3
    assert cn[0, 0] == 0


@pytest.mark.parametrize("angle", [0.0, 30.0, 100.0])
def test_straight_ridges_have_no_minutiae(angle: float) -> None:
    assert minutiae(ridges(stripe_phase(angle))) == []


@pytest.mark.parametrize("gap", [2.0, 4.0])
def test_a_short_break_is_cleaned_up(gap: float) -> None:
    assert minutiae(cut(ridges(stripe_phase()), gap)) == []


@pytest.mark.parametrize("gap", [20.0, 30.0])
def test_a_long_gap_gives_two_facing_endings(gap: float) -> None:
    found = minutiae(cut(ridges(stripe_phase()), gap))
    assert len(found) == 2 and all(m.kind == ENDING for m in found)
    left, right = sorted(found)
    x0, y0 = CENTRE
    assert abs(left.x - (x0 - gap / 2)) <= 4 and abs(left.y - y0) <= 2
    assert abs(right.x - (x0 + gap / 2)) <= 4 and abs(right.y - y0) <= 2
    # Each ending's ridge runs out towards the gap: right for the left one, left for the right.
    assert abs(np.degrees(left.angle)) < 20
    assert abs(abs(np.degrees(right.angle)) - 180) < 20


@pytest.mark.parametrize("polarity", [1, -1])
def test_a_fork_is_a_bifurcation_and_its_negative_an_ending(polarity: int) -> None:
    # A phase spiral adds one ridge at the centre: a Y. Dark ridges where cos = -1 fork there;
    # in the negative, the same Y is a valley fork, so a ridge ends there.
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float64)
    phase = stripe_phase() + np.arctan2(y - CENTRE[1] - PERIOD / 2, x - CENTRE[0])
    image = ridges(phase) if polarity > 0 else 255 - ridges(phase)
    found = minutiae(image)
    assert len(found) == 1
    assert near(found, CENTRE[0], CENTRE[1] + PERIOD / 2, 8)
    kind = found[0].kind
    assert kind == (BIFURCATION if polarity > 0 else ENDING)


@pytest.mark.parametrize(("gap", "kept"), [(4, 0), (10, 0), (16, 2)])
def test_clean_up_joins_broken_ridges(gap: int, kept: int) -> None:
    # Drawn on the skeleton itself, so the enhancement's smoothing cannot bridge the gap.
    skeleton = np.zeros((40, 80), bool)
    skeleton[20, 2:78] = True
    skeleton[20, 40 - gap // 2 : 40 - gap // 2 + gap] = False
    found = skeleton_minutiae(skeleton, np.ones_like(skeleton))
    assert len(found) == kept and all(m.kind == ENDING for m in found)


def test_endings_on_neighbouring_ridges_are_not_a_break() -> None:
    skeleton = np.zeros((40, 80), bool)
    skeleton[16, 2:40] = True  # ends at x = 39 ...
    skeleton[24, 42:78] = True  # ... and the next ridge starts at x = 42, 8 px below
    found = skeleton_minutiae(skeleton, np.ones_like(skeleton))
    assert len(found) == 2


def test_clean_up_drops_spurs_and_the_border() -> None:
    skeleton = np.zeros((40, 60), bool)
    skeleton[20, 2:58] = True  # a ridge crossing the whole mask
    skeleton[14:20, 30] = True  # a 6-px spur off it
    mask = np.ones_like(skeleton)
    assert skeleton_minutiae(skeleton, mask) == []
    skeleton[10:20, 45] = True  # a 10-px branch: a real ending and bifurcation
    found = skeleton_minutiae(skeleton, mask)
    assert sorted(m.kind for m in found) == [BIFURCATION, ENDING]
    assert near(found, 45, 10, 2) and near(found, 45, 20, 2)


@pytest.fixture(scope="module")
def generated() -> dict[int, tuple]:
    """Four masters of seed 0 and two impressions of each."""
    out = {}
    for identity in range(4):
        master = generate_master(identity, seed=0)
        prints = [generate_impression(identity, k, seed=0, master=master) for k in range(2)]
        out[identity] = (master, prints)
    return out


def test_generator_masters_have_a_plausible_number_of_minutiae(generated: dict) -> None:
    # Measured: 38-49 minutiae in 120-150 mm^2, 0.25-0.34 per mm^2 (identities 0-3, seed 0);
    # real full prints hold some 30-80 in 150-250 mm^2.
    for master, _ in generated.values():
        found = master_minutiae(master)
        area = (master.ridges.shape[0] * master.ridges.shape[1]) / PX_PER_MM**2
        assert 20 <= len(found) <= 100
        assert {m.kind for m in found} == {ENDING, BIFURCATION}
        assert 0.05 < len(found) / area < 0.6  # over the canvas: a floor for the density


def test_impression_density_is_plausible(generated: dict) -> None:
    for _, prints in generated.values():
        result = minutiae_density(prints[0])
        assert 0.1 < result.per_mm2 < 0.8
        assert result.total == result.endings + result.bifurcations
        assert 40 < result.area_mm2 < 170  # a 256x256 window is 169 mm^2


def test_impressions_of_one_master_share_minutiae(generated: dict) -> None:
    # Each impression's minutiae in master coordinates by its known (rigid) placement: an
    # impression of the same master finds most of another's within 10 px (measured 0.75-0.93),
    # one of another master only by chance (0.22-0.39).
    shape = GeneratorConfig().impression_shape
    where = {}
    for identity, (master, prints) in generated.items():
        for k, image in enumerate(prints):
            found = minutiae(image)
            placement = impression_placement(identity, k, seed=0)
            row = np.array([m.y for m in found])
            col = np.array([m.x for m in found])
            rows, cols = rigid_to_master(placement, shape, master.centre, row, col)
            where[identity, k] = np.stack([cols, rows], axis=1)

    def share(a: np.ndarray, b: np.ndarray) -> float:
        dist = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
        return float((dist.min(axis=1) <= 10).mean())

    same = [share(where[i, 0], where[i, 1]) for i in generated]
    other = [share(where[i, 0], where[(i + 1) % len(generated), 1]) for i in generated]
    assert min(same) > 0.6
    assert min(same) > max(other) + 0.2


def test_errors_name_the_problem() -> None:
    with pytest.raises(MinutiaeError, match="2-D"):
        minutiae(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="no foreground"):
        minutiae_density(np.full((128, 128), 200, np.uint8))
    with pytest.raises(MinutiaeError, match="alike"):
        skeleton_minutiae(np.zeros((8, 8), bool), np.ones((8, 9), bool))


def test_recovered_counts_true_minutiae_found_again_and_spurious_ones() -> None:
    from pretrain.data.minutiae import Minutia, recovered

    mask = np.zeros((100, 100), bool)
    mask[10:90, 10:90] = True
    found = [Minutia(40.0, 40.0, "ending"), Minutia(60.0, 50.0, "bifurcation")]
    truth = np.array([[43.0, 41.0], [60.0, 75.0], [2.0, 2.0]])  # near, far, outside the area
    r = recovered(truth, found, mask, tolerance=10.0)
    assert (r.found_again, r.expected, r.spurious, r.found) == (1, 2, 1, 2)
    assert recovered(truth, [], mask).expected == 2


def test_window_area_counts_the_readable_print_inside_the_window() -> None:
    from devices.preprocess import FINGERPRINT_SPEC, PreprocessSpec
    from pretrain.data.minutiae import window_area_mm2

    image = generate_impression(3, 0, seed=0, config=GeneratorConfig())
    window_mm2 = 256 * 256 / PX_PER_MM**2  # FINGERPRINT_SPEC's 256 x 256 window at 500 dpi
    whole = window_area_mm2(image, FINGERPRINT_SPEC)
    assert 0.4 * window_mm2 < whole < window_mm2
    blank = image.copy()
    blank[:, : image.shape[1] // 2] = 255  # the left half lifted off the sensor
    half = window_area_mm2(blank, FINGERPRINT_SPEC)
    assert 0 < half < 0.75 * whole
    small = PreprocessSpec(
        modality="fingerprint", input_size=(64, 64), crop="foreground", crop_size=(128, 128)
    )
    assert window_area_mm2(image, small) < 0.5 * whole  # a quarter of the window's area
