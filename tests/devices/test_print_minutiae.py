"""Prints' minutiae and masks as records and artifacts keep them, and their best scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.minutiae_detector import MinutiaeDetector
from devices.print_minutiae import (
    PrintSet,
    PrintSetError,
    best_scores,
    cell_mask,
    describe,
    from_arrays,
    fusion_bytes,
    read_fusion,
    to_arrays,
)


def _prints(rng: np.random.Generator, shapes: list[tuple[int, int]]) -> PrintSet:
    minutiae, masks = [], []
    for h, w in shapes:
        n = int(rng.integers(0, 30))
        xy = rng.uniform(0, min(h, w), (n, 2))
        rows = np.column_stack([xy, rng.uniform(-np.pi, np.pi, n), np.zeros(n)])
        minutiae.append(rows.astype(np.float32))
        masks.append(rng.random((h, w)) < 0.5)
    return PrintSet(tuple(minutiae), tuple(masks))


def test_the_stored_form_gives_back_the_prints() -> None:
    prints = _prints(np.random.default_rng(0), [(320, 320), (37, 53), (478, 448)])
    back = from_arrays(to_arrays(prints, "~p_"), "~p_")
    assert back.size == 3
    for a, b in zip(prints.minutiae, back.minutiae, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(prints.masks, back.masks, strict=True):
        np.testing.assert_array_equal(a, b)
    empty = from_arrays(to_arrays(PrintSet((), ())))
    assert empty.size == 0 and empty.masks == ()


def test_blob_masks_pack_small() -> None:
    mask = np.zeros((320, 320), bool)
    mask[40:280, 60:250] = True
    stored = to_arrays(PrintSet((np.zeros((0, 4), np.float32),), (mask,)))
    assert stored["masks"].nbytes < 300  # 12,800 bytes of bits


def test_stored_prints_that_disagree_are_refused() -> None:
    stored = to_arrays(_prints(np.random.default_rng(1), [(64, 64), (32, 48)]))
    bad = [
        {**stored, "counts": stored["counts"] + 1},
        {**stored, "shapes": stored["shapes"] * 2},
        {**stored, "masks": stored["masks"][:-3]},
        {k: v for k, v in stored.items() if k != "shapes"},
        {**stored, "minutiae": np.full_like(stored["minutiae"], np.nan)},
    ]
    for arrays in bad:
        with pytest.raises(PrintSetError):
            from_arrays(arrays)


def _scattered(rng: np.random.Generator, n: int = 30) -> np.ndarray:
    xy = rng.uniform(0, 300, (n, 2))
    return np.column_stack([xy, rng.uniform(-np.pi, np.pi, n), np.zeros(n)]).astype(np.float32)


def test_best_scores_take_the_best_owner_print() -> None:
    rng = np.random.default_rng(2)
    full = np.ones((300, 300), bool)
    owner = PrintSet(tuple(_scattered(rng) for _ in range(3)), (full, full, full))
    probe = owner.take([1])
    others = PrintSet(tuple(_scattered(rng) for _ in range(5)), (full,) * 5)
    assert best_scores(probe, owner)[0] == pytest.approx(1.0)
    assert np.all(best_scores(others, owner) < 0.3)  # chance pairs of unrelated prints
    assert best_scores(probe, PrintSet((), ()))[0] == 0.0


def test_describe_runs_the_detector_and_the_mask() -> None:
    class Fixed:
        def detect(self, gray: np.ndarray) -> np.ndarray:
            return np.array([[1.0, 2.0, 0.5, 0.0]])

    prints = describe(Fixed(), [np.full((64, 64), 200, np.uint8)] * 2)
    assert prints.size == 2 and prints.minutiae[0].dtype == np.float32
    assert prints.masks[0].shape == (16, 16) and not prints.masks[0].any()  # 4-px cells


def test_a_cell_is_readable_where_any_of_its_pixels_is() -> None:
    mask = np.zeros((10, 9), bool)
    mask[5, 8] = True  # the last column's cell is partial
    cells = cell_mask(mask)
    assert cells.shape == (3, 3)
    assert cells[1, 2] and cells.sum() == 1


DETECTOR = Path(__file__).parents[2] / "notebooks" / "results" / "models" / "minutiae_detector.npz"


def test_the_fusion_file_gives_back_detector_background_and_weight() -> None:
    detector = MinutiaeDetector.load(DETECTOR)
    background = _prints(np.random.default_rng(3), [(80, 80), (80, 80), (120, 112)])
    fusion = read_fusion(fusion_bytes(detector, background, 0.25), "minutiae.npz")
    assert fusion.weight == pytest.approx(0.25) and fusion.background.size == 3
    assert fusion.detector.threshold == pytest.approx(detector.threshold)
    for a, b in zip(fusion.detector.weights, detector.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fusion.background.masks[2], background.masks[2])
    data = fusion_bytes(detector, background, 0.25)
    for bad in (data[: len(data) // 2], fusion_bytes(detector, background, -1.0), b"junk"):
        with pytest.raises(PrintSetError, match=r"minutiae\.npz"):
            read_fusion(bad, "minutiae.npz")
