"""Genuine-pair statistics: the alignment search and what the registration leaves."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from devices.localiser import shipped
from pretrain.data import MISREGISTERED_PX, best_alignment, format_table, pair_stats
from pretrain.data.fingerprint import FingerprintGenerator
from pretrain.data.stats_pairs import (
    ANY_SHIFT,
    REGISTRATIONS,
    align,
    anchor_agreement,
    anchor_peaks,
    carried,
    genuine_pairs,
    raw_half,
    registered,
)


@pytest.fixture(scope="module")
def prints() -> tuple[np.ndarray, np.ndarray]:
    return FingerprintGenerator(seed=5, cache_size=1).impressions(range(3), 3)


def test_best_alignment_finds_a_known_shift_and_rotation() -> None:
    rng = np.random.default_rng(0)
    a = ndimage.gaussian_filter(rng.standard_normal((96, 96)), 1.5)
    moved = np.roll(a, (3, 7), axis=(0, 1))  # content 3 px down, 7 px right
    found = best_alignment(a, moved, angles=(-6, 0, 6), max_shift=20, min_overlap=0)
    assert (found.dx, found.dy, found.degrees) == (7, 3, 0)
    assert found.score == pytest.approx(1.0, abs=1e-6)
    # b turned by -6 deg is found again by turning it back (+6), whatever the shift search says
    turned = ndimage.rotate(a, -6, reshape=False, order=1)
    assert best_alignment(a, turned, angles=(-6, 0, 6), max_shift=5, min_overlap=0).degrees == 6
    # an overlap requirement no shift meets leaves the "no alignment" answer
    assert best_alignment(a, moved, angles=(0,), max_shift=20, min_overlap=a.size).score == -1.0
    with pytest.raises(ValueError, match="shape"):
        best_alignment(a, a[:90], angles=(0,), max_shift=5, min_overlap=0)


def test_raw_shift_of_a_moved_print_is_measured_in_500_dpi_px(prints) -> None:
    images, _ = prints
    image = images[0]
    canvas = np.full((320, 320), int(np.median(image)), np.uint8)
    canvas[:256, :256] = image
    moved = np.roll(canvas, (20, 30), axis=(0, 1))  # 20 px down, 30 px right at 500 dpi
    found = align(raw_half(canvas), raw_half(moved), max_shift=ANY_SHIFT)
    assert (2 * found.dx, 2 * found.dy) == (30, 20)
    # the core registration follows the finger: the registered windows line up again
    residual = align(registered(canvas), registered(moved), max_shift=ANY_SHIFT)
    assert 2 * np.hypot(residual.dx, residual.dy) <= 8


def test_pair_stats_of_synthetic_prints(prints) -> None:
    images, owners = prints
    stats = pair_stats(list(images), owners.tolist())
    assert stats["pairs"] == 9  # 3 fingers x 3 pairs
    assert stats["pair_residual_px"]["median"] <= 16
    assert stats["misregistered_fraction"] <= 1 / 9
    assert 0 < stats["pair_overlap_fraction"]["median"] <= 1
    table = format_table({"synthetic": stats})
    assert f"residual > {MISREGISTERED_PX} px" in table and "placement shift" in table
    with pytest.raises(ValueError, match="no two impressions"):
        pair_stats(list(images[:3]), [0, 1, 2])


def test_pairs_are_measured_after_the_registration_asked_for(prints) -> None:
    images, owners = prints
    core = pair_stats(list(images), owners.tolist(), spec=REGISTRATIONS["core"])
    anchor = pair_stats(list(images), owners.tolist())
    assert (anchor["registration"], core["registration"]) == ("anchor", "core")
    # the same pairs and placements; only what registration leaves differs
    assert anchor["pair_shift_px"] == core["pair_shift_px"]
    assert core["pair_residual_px"]["median"] <= 16


def test_a_window_registered_on_the_wrong_point_counts_as_misregistered(prints) -> None:
    images, _ = prints
    band, support = registered(images[0])
    wrong = (np.roll(band, 40, axis=1), np.roll(support, 40, axis=1))  # 80 px at 500 dpi
    found = align((band, support), wrong, max_shift=ANY_SHIFT)
    assert 2 * np.hypot(found.dx, found.dy) > MISREGISTERED_PX


def test_genuine_pairs_samples_without_replacement() -> None:
    owners = [0] * 8 + [1] * 8
    assert len(genuine_pairs(owners, count=1000)) == 56
    chosen = genuine_pairs(owners, count=20, seed=1)
    assert len(set(chosen)) == 20 and all(owners[i] == owners[j] for i, j in chosen)
    assert chosen == genuine_pairs(owners, count=20, seed=1)


def test_a_point_is_carried_to_where_the_second_print_holds_it(prints) -> None:
    images, _ = prints
    canvas = np.full((360, 360), int(np.median(images[0])), np.uint8)
    canvas[52:308, 52:308] = images[0]
    marker = np.zeros((360, 360))
    marker[150, 200] = 1000.0  # a point of the first print, (row, col) at 500 dpi

    def move(x: np.ndarray, order: int) -> np.ndarray:  # 24 px down, 16 px left, turned 12 deg
        return ndimage.rotate(np.roll(x, (24, -16), axis=(0, 1)), -12, reshape=False, order=order)

    second = move(canvas.astype(np.float64), 1).astype(np.uint8)
    where = np.unravel_index(np.argmax(move(marker, 1)), marker.shape)
    found = align(raw_half(canvas), raw_half(second), max_shift=ANY_SHIFT)
    assert found.degrees == 12
    half = carried((75.0, 100.0), found, (180, 180))
    assert np.hypot(*(2 * half - where)) <= 6, (2 * half, where)


def test_anchor_agreement_of_synthetic_prints(prints) -> None:
    images, owners = prints
    figures = anchor_agreement(list(images), owners.tolist())
    assert figures["anchor_gap_px"]["median"] <= 16
    assert figures["anchors_apart_fraction"] <= 1 / 9
    assert 0 <= figures["second_peak_agrees_fraction"] <= 1
    # the anchor figures come with the anchor registration's pair statistics only
    anchor = pair_stats(list(images), owners.tolist())
    assert "anchors_apart_fraction" in anchor
    assert f"anchors > {MISREGISTERED_PX} px apart" in format_table({"synthetic": anchor})
    core = pair_stats(list(images), owners.tolist(), spec=REGISTRATIONS["core"])
    assert "anchors_apart_fraction" not in core


def test_anchor_peaks_start_at_the_anchor_and_keep_apart(prints) -> None:
    images, _ = prints
    peaks = anchor_peaks(images[0], shipped(), count=3)
    assert peaks[0].tolist() == list(shipped().locate(images[0]))
    # the later peaks keep their distance from the earlier ones (4 blocks = 32 px)
    assert all(np.abs(peaks[k] - peaks[m]).max() > 32 for k in range(3) for m in range(k))
