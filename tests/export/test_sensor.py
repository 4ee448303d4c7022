"""Sensor calibration: the captures' shared direction projected out, and folded into ``embed``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from devices.preprocess import FACE_SPEC, FINGERPRINT_SPEC
from export.artifact.pipeline import calibrate_to_sensor
from export.artifact.sensor import (
    MIN_CAPTURES,
    SensorCalibrationError,
    check_captures,
    sensor_projection,
)
from export.artifact.split import split_backbone

TINY = {"stem_width": 8, "widths": (16, 24), "strides": (2, 2), "embedding_dim": 16}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _cone(n: int = 200, d: int = 16, shared: float = 2.0, seed: int = 0) -> np.ndarray:
    """Unit rows with one shared direction (e0) on top of spread ones."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) / np.sqrt(d)
    x[:, 0] += shared
    return _unit(x)


def test_the_projection_removes_the_shared_direction_and_only_it() -> None:
    e = _cone()
    p, record = sensor_projection(e)
    np.testing.assert_allclose(p, p.T, atol=1e-12)
    np.testing.assert_allclose(p @ p, p, atol=1e-10)  # a projection
    assert np.linalg.matrix_rank(p) == 15
    # the removed direction is the shared one (e0), up to the sample's noise
    removed = np.linalg.eigh(np.eye(16) - p)[1][:, -1]
    assert abs(removed[0]) > 0.98
    after = _unit(e @ p)
    assert np.linalg.norm(after.mean(axis=0)) < 0.2 < 0.8 < np.linalg.norm(e.mean(axis=0))
    assert record["captures"] == 200 and record["directions"] == 1
    assert record["mean_unit_norm_before"] == pytest.approx(np.linalg.norm(e.mean(axis=0)))
    assert record["mean_unit_norm_after"] == pytest.approx(np.linalg.norm(after.mean(axis=0)))
    assert 0.5 < record["energy_removed"] < 1.0
    # two directions remove a second one too
    p2, record2 = sensor_projection(e, directions=2)
    assert np.linalg.matrix_rank(p2) == 14 and record2["energy_removed"] > record["energy_removed"]


@pytest.mark.parametrize(
    ("rows", "k", "message"),
    [
        (np.ones((MIN_CAPTURES - 1, 8)), 1, f"at least {MIN_CAPTURES}"),
        (np.full((30, 8), np.nan), 1, "NaN"),
        (_cone(30, 8), 0, r"directions must be in 1\.\.7"),
        (_cone(30, 8), 8, r"directions must be in 1\.\.7"),
    ],
)
def test_bad_embeddings_are_refused(rows: np.ndarray, k: int, message: str) -> None:
    with pytest.raises(SensorCalibrationError, match=message):
        sensor_projection(rows, directions=k)


def test_captures_are_checked_before_any_work() -> None:
    with pytest.raises(SensorCalibrationError, match=f"at least {MIN_CAPTURES}.*got 3"):
        check_captures([np.zeros((64, 64), np.uint8)] * 3)
    bad = [np.zeros((64, 64), np.uint8)] * MIN_CAPTURES + [np.zeros(5)]
    with pytest.raises(SensorCalibrationError, match=r"capture 20 has shape \(5,\)"):
        check_captures(bad)
    assert len(check_captures([np.zeros((64, 64, 1), np.uint8)] * MIN_CAPTURES)) == MIN_CAPTURES


def test_calibrating_a_backbone_folds_the_projection_into_embed(tmp_path, save_embednet) -> None:
    saved = save_embednet(
        tmp_path / "m",
        {**TINY, "feature_norm": True},
        info={"preprocess": FACE_SPEC.to_dict()},
        seed=5,
    )
    backbone = split_backbone(saved)
    rng = np.random.default_rng(2)
    captures = [rng.integers(0, 256, size=(112, 92), dtype=np.uint8) for _ in range(40)]
    calibrated, record = calibrate_to_sensor(backbone, saved, captures)
    probe = jnp.asarray(rng.uniform(size=(12, 64, 64, 1)), jnp.float32)
    before = np.asarray(backbone.embed()(probe), np.float64)
    p, _ = sensor_projection(backbone.embeddings(_inputs(captures)))
    np.testing.assert_allclose(np.asarray(calibrated.embed()(probe)), _unit(before @ p), atol=2e-5)
    assert record["captures"] == 40
    assert record["mean_unit_norm_after"] < record["mean_unit_norm_before"]
    assert calibrated.front_params is backbone.front_params


def _inputs(captures: list[np.ndarray]) -> np.ndarray:
    from devices.preprocess import preprocess_batch

    return preprocess_batch(captures, FACE_SPEC)


def test_captures_the_spec_cannot_read_are_one_clear_error(tmp_path, save_embednet) -> None:
    saved = save_embednet(
        tmp_path / "m", {**TINY, "feature_norm": True}, info={"preprocess": FACE_SPEC.to_dict()}
    )
    captures = [np.zeros((112, 92, 2), np.uint8)] * MIN_CAPTURES  # two channels: no image mode
    with pytest.raises(SensorCalibrationError, match="cannot preprocess the sensor captures"):
        calibrate_to_sensor(split_backbone(saved), saved, captures)


def test_captures_the_device_would_refuse_cannot_calibrate(tmp_path, save_embednet) -> None:
    """ORL's 112x92 faces for a print model of 128x128 inputs: the device refuses them (its
    quality gate), so they are refused here too, in the device's words."""
    saved = save_embednet(
        tmp_path / "m",
        {**TINY, "feature_norm": True},
        info={"preprocess": FINGERPRINT_SPEC.to_dict()},
    )
    rng = np.random.default_rng(0)
    captures = [rng.integers(0, 256, size=(112, 92), dtype=np.uint8) for _ in range(MIN_CAPTURES)]
    with pytest.raises(
        SensorCalibrationError,
        match=r"capture 0: 112x92 pixels, smaller than the model input 128x128 .*device refuses",
    ):
        calibrate_to_sensor(split_backbone(saved), saved, captures)
    blank = [np.full((300, 300), 128, np.uint8)] * MIN_CAPTURES
    with pytest.raises(SensorCalibrationError, match="capture 0: blank or constant"):
        calibrate_to_sensor(split_backbone(saved), saved, blank)
