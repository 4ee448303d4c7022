"""The readable mask in numpy: the same pixels as the pretraining side's print mask."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import devices.minutiae_detector
import devices.minutiae_match
import devices.print_minutiae
import devices.readable
from devices.readable import (
    ReadableError,
    fill_holes,
    gaussian,
    inside_margin,
    readable_mask,
)
from pretrain.data.fingerprint.synthetic import FingerprintGenerator, GeneratorConfig
from pretrain.data.minutiae import print_mask


def test_the_pieces_repeat_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (37, 53))
    for sigma in (1.0, 4.0, 12.0):
        np.testing.assert_allclose(gaussian(x, sigma), ndimage.gaussian_filter(x, sigma), atol=1e-9)
    for k in range(5):
        blobs = ndimage.gaussian_filter(rng.random((40, 50)), 2.0 + k) > 0.5
        np.testing.assert_array_equal(fill_holes(blobs), ndimage.binary_fill_holes(blobs))
        depth = ndimage.distance_transform_edt(np.pad(blobs, 1))[1:-1, 1:-1]
        for margin in (3.0, 7.5, 16.0):
            np.testing.assert_array_equal(inside_margin(blobs, margin), depth >= margin)


def test_holes_are_filled_through_winding_passages() -> None:
    # a spiral corridor reaches the frame only after many turns, and random masks near the
    # percolation density have rambling free regions: each needs many sweeps of runs
    spiral = np.ones((41, 41), bool)
    lo, hi, side = 1, 39, 0
    while lo < hi:
        spiral[lo, lo:hi] = spiral[lo:hi, hi - 1] = False
        spiral[hi - 1, lo + 2 : hi] = spiral[lo + 2 : hi, lo + 2] = False
        lo, hi, side = lo + 4, hi - 4, side + 1
    spiral[0, 1] = False  # the corridor's mouth
    rng = np.random.default_rng(5)
    masks = [spiral, ~spiral] + [rng.random((47, 61)) < p for p in (0.3, 0.4, 0.5, 0.6, 0.7)]
    for mask in masks:
        np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))


@pytest.mark.parametrize(
    "config",
    [GeneratorConfig(), GeneratorConfig(impression_shape=(320, 320), partial_prob=1.0)],
    ids=["default", "partial"],
)
def test_it_reads_the_pixels_print_mask_reads(config: GeneratorConfig) -> None:
    generator = FingerprintGenerator(seed=3, config=config)
    for identity in range(2):
        gray = generator.impression(identity, 1)
        want, got = print_mask(gray), readable_mask(gray)
        assert want.any() and not want.all()
        # floats at the thresholds may round another way on another CPU: a few pixels at most
        assert np.mean(got != want) < 1e-3


def test_blank_and_bad_prints() -> None:
    assert not readable_mask(np.full((64, 80), 200, np.uint8)).any()
    with pytest.raises(ReadableError, match="2-D"):
        readable_mask(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ReadableError, match="2-D"):
        readable_mask(np.zeros((0, 40), np.uint8))


def test_the_device_modules_need_numpy_alone() -> None:
    """The phone has numpy and the LiteRT interpreter; scipy may be absent."""
    stdlib = {"__future__", "dataclasses", "functools", "hashlib", "io", "zipfile", "zlib"}
    allowed = stdlib | {"collections", "pathlib", "typing", "numpy", "devices"}
    modules = (devices.readable, devices.minutiae_match, devices.print_minutiae)
    for module in (*modules, devices.minutiae_detector):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        roots = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert {r.split(".")[0] for r in roots} <= allowed, (module, roots)
