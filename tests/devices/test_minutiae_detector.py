"""The device's minutiae detector: its weights file is checked before it runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.minutiae_detector import LAYERS, DetectorError, MinutiaeDetector


def _weights(path: Path, *, broken: int | None = None) -> None:
    arrays: dict[str, np.ndarray] = {"threshold": np.float32(0.6)}
    cin = 1
    for k, (kernel, _, _, cout) in enumerate(LAYERS):
        shape = (kernel, kernel, cin + (k == broken), cout)
        arrays[f"w{k}"] = np.zeros(shape, np.float32)
        arrays[f"b{k}"] = np.zeros(cout, np.float32)
        cin = cout
    np.savez(path, **arrays)


def test_weights_of_another_shape_or_no_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="cannot read"):
        MinutiaeDetector.load(tmp_path / "missing.npz")
    _weights(tmp_path / "bad.npz", broken=2)
    with pytest.raises(DetectorError, match="layer 2"):
        MinutiaeDetector.load(tmp_path / "bad.npz")


def test_zero_weights_find_nothing_and_a_bad_image_is_refused(tmp_path: Path) -> None:
    _weights(tmp_path / "w.npz")
    detector = MinutiaeDetector.load(tmp_path / "w.npz")
    image = np.random.default_rng(0).integers(0, 255, (64, 50), dtype=np.uint8)
    assert detector.outputs(image).shape == (16, 12, 27)
    assert detector.detect(image).shape == (0, 4)  # every probability 0.5, below the threshold 0.6
    with pytest.raises(DetectorError, match="2-D"):
        detector.detect(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DetectorError, match=r"at least 8 x 8 pixels .* \(5, 40\)"):
        detector.detect(np.zeros((5, 40), np.uint8))
