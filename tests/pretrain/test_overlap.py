"""The finger area two synthetic impressions share (pretrain.data.overlap)."""

from __future__ import annotations

import numpy as np

from pretrain.data.fingerprint import FingerprintGenerator
from pretrain.data.minutiae import PX_PER_MM, print_mask
from pretrain.data.overlap import overlap_ratio, readable_cells, shared_mm2


def test_impressions_of_one_finger_share_their_common_readable_area() -> None:
    generator = FingerprintGenerator(seed=0)
    images = [generator.impression(3, k) for k in range(2)]
    cells = [readable_cells(generator, 3, k, image) for k, image in enumerate(images)]
    np.testing.assert_array_equal(cells[0], readable_cells(generator, 3, 0))  # drawn if not given
    for image, own in zip(images, cells, strict=True):
        # every readable pixel lands on a square of the master; about 4 pixels a 2-px square
        readable_mm2 = print_mask(image).sum() / PX_PER_MM**2
        assert overlap_ratio(own, own) == 1.0
        assert 0.9 * readable_mm2 < shared_mm2(own, own) < 1.1 * readable_mm2
    both = shared_mm2(cells[0], cells[1])
    assert 0 < both < min(shared_mm2(c, c) for c in cells)
    assert 0.5 < overlap_ratio(cells[0], cells[1]) < 1.0
    # a print cut to its upper half covers part of the finger the whole print covers
    half = images[0].copy()
    half[half.shape[0] // 2 :] = 255
    upper = readable_cells(generator, 3, 0, half)
    assert overlap_ratio(upper, cells[0]) > 0.99
    assert 0.2 < shared_mm2(upper, upper) / shared_mm2(cells[0], cells[0]) < 0.8
    assert overlap_ratio(np.zeros(0, np.int64), cells[0]) == 0.0
