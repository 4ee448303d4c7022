"""The localiser's teacher and trainer: anchors where the generator drew them, a short training
that learns something, and an integer network that follows its float one."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.data.fingerprint import FingerprintGenerator, GeneratorConfig, master_coordinates
from pretrain.data.fingerprint.anchors import (
    impression_anchor,
    master_anchor,
)
from pretrain.data.fingerprint.synthetic import impression_placement
from pretrain.localiser import (
    LocaliserConfig,
    anchor_data,
    errors_px,
    float_predictions,
    integer_predictions,
    quantise,
    target_cells,
    train_localiser,
)

WIDE = GeneratorConfig(shift_sd=46.0, shift_max=120.0)  # anchors often outside the print


def test_anchor_maps_back_to_the_master_point() -> None:
    gen = FingerprintGenerator(seed=0, config=WIDE, cache_size=1)
    shape = WIDE.impression_shape
    checked = 0
    for identity in range(6):
        master = gen.master(identity)
        x, y = master_anchor(master)
        for k in range(4):
            where = impression_placement(identity, k, seed=0, config=WIDE)
            row, col = impression_anchor(master, where, shape)
            if 0 <= row < shape[0] - 1 and 0 <= col < shape[1] - 1:
                rows, cols = master_coordinates(where, shape, master.centre)
                r, c = round(row), round(col)
                # inside the print, the anchor's pixel maps to the master point (skin
                # distortion moves it by a few px at most)
                assert np.hypot(rows[r, c] - y, cols[r, c] - x) < 12
                checked += 1
    assert checked >= 8


def test_an_arch_has_an_anchor_too() -> None:
    gen = FingerprintGenerator(seed=0, cache_size=1)
    arch = next(gen.master(i) for i in range(200) if gen.master(i).fp_class == "arch")
    x, y = master_anchor(arch)
    h, w = arch.ridges.shape
    assert 0 < x < w and 0 < y < h


def test_targets_are_blocks_of_the_padded_grid() -> None:
    cells = target_cells(np.array([[4.0, 4.0], [-60.0, 500.0]]), (56, 56))
    np.testing.assert_array_equal(cells[0], [8, 8])  # block 0 is cell PAD
    np.testing.assert_array_equal(cells[1], [0, 55])  # clipped to the grid


@pytest.fixture(scope="module")
def data():
    config = GeneratorConfig(impression_shape=(160, 160), shift_sd=8.0, shift_max=16.0)
    train = anchor_data(range(300, 316), 4, seed=0, generator=config)
    val = anchor_data(range(316, 320), 4, seed=0, generator=config)
    return train, val


def test_training_learns_and_quantising_keeps_it(data) -> None:
    train, val = data
    config = LocaliserConfig(channels=4, epochs=3, batch_size=16, learning_rate=1e-2)
    params, history = train_localiser(train, val, config, width=160)
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    localiser = quantise(params, val[0])
    integer = integer_predictions(localiser, val[0])
    assert integer.shape == (len(val[0]), 2)
    # the integer network points where the float one does, give or take a block mostly
    floated = float_predictions(params, val[0])
    assert np.median(errors_px(integer, floated)) <= 8
