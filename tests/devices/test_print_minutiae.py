"""Prints' minutiae and masks as records and artifacts keep them, and their best scores."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from devices.print_minutiae import (
    FUSION_WEIGHT,
    PrintSet,
    PrintSetError,
    best_scores,
    cell_mask,
    describe,
    detector_sha256,
    from_arrays,
    fusion_entry,
    fusion_of,
    prints_bytes,
    read_prints,
    shipped_detector,
    to_arrays,
    working_bytes,
)
from pretrain.data.fingerprint.synthetic import FingerprintGenerator


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


def test_describe_allocates_no_more_than_the_memory_plan_counts() -> None:
    gray = FingerprintGenerator(seed=4).impression(0, 0)
    detector = shipped_detector()
    for shape in ((gray.shape[0], gray.shape[1]), (480, 448)):
        image = np.full(shape, 200, np.uint8)
        h, w = min(shape[0], gray.shape[0]), min(shape[1], gray.shape[1])
        image[:h, :w] = gray[:h, :w]
        tracemalloc.start()
        try:
            describe(detector, [image])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert 0.8 * working_bytes(shape) < peak <= working_bytes(shape)


def test_a_cell_is_readable_where_any_of_its_pixels_is() -> None:
    mask = np.zeros((10, 9), bool)
    mask[5, 8] = True  # the last column's cell is partial
    cells = cell_mask(mask)
    assert cells.shape == (3, 3)
    assert cells[1, 2] and cells.sum() == 1


def test_the_background_file_and_the_manifest_entry_make_the_fusion() -> None:
    background = _prints(np.random.default_rng(3), [(80, 80), (80, 80), (120, 112)])
    prints = read_prints(prints_bytes(background), "background_minutiae.npz")
    np.testing.assert_array_equal(prints.masks[2], background.masks[2])
    entry = fusion_entry(3)
    assert entry["detector_sha256"] == detector_sha256() and entry["weight"] == FUSION_WEIGHT
    fusion = fusion_of(entry, prints, 3, "artifact")
    assert fusion.weight == FUSION_WEIGHT and fusion.detector is shipped_detector()
    data = prints_bytes(background)
    for bad in (data[: len(data) // 2], b"junk"):
        with pytest.raises(PrintSetError, match=r"background_minutiae\.npz"):
            read_prints(bad, "background_minutiae.npz")
    refused = [
        ({**entry, "detector_sha256": "0" * 64}, 3, "detector weights 000000000000"),
        ({**entry, "weight": -1.0}, 3, "malformed"),
        (entry, 4, "4 embeddings"),
        ({**entry, "count": 2}, 3, "manifest says 2"),
    ]
    for bad_entry, rows, message in refused:
        with pytest.raises(PrintSetError, match=message):
            fusion_of(bad_entry, prints, rows, "artifact")
