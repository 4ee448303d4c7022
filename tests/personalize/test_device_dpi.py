"""Device(sensor_dpi=...): a phone whose fingerprint sensor captures at another resolution than
the artifact's 500 dpi. Every entry point resamples the captures (enroll, verify, identify,
embed, scores), and the memory plan counts the resampling."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices.preprocess import PreprocessSpec, working_bytes
from personalize import (
    NO_TRAINING,
    Device,
    EnrollmentError,
    QualityError,
    SensorDpiError,
    StoreError,
)


def _double(x: np.ndarray) -> np.ndarray:
    """The capture a 1000 dpi sensor gives of the same finger: each pixel a 2 x 2 block."""
    return np.repeat(np.repeat(x, 2, axis=-2), 2, axis=-1)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x[..., 0], 0, 1) * 255).astype(np.uint8)


@pytest.fixture()
def as_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy artifact's digits taken as prints (a resolution is a fingerprint sensor's)."""
    read = PreprocessSpec.from_dict

    def prints(data: Any) -> PreprocessSpec:
        return dataclasses.replace(read(data), modality="fingerprint")

    monkeypatch.setattr(PreprocessSpec, "from_dict", staticmethod(prints))


def test_every_entry_point_takes_the_sensors_resolution(
    toy_artifact, tmp_path: Path, as_prints
) -> None:
    art = toy_artifact
    owner, probes = _u8(art["owner"][:5]), _u8(art["owner_test"][:4])
    impostors = _u8(art["impostors"][:4])
    plain = Device(art["dir"], tmp_path / "plain", trusted_key=art["pub"])
    hi = Device(art["dir"], tmp_path / "hi", trusted_key=art["pub"], sensor_dpi=1000)
    assert plain.sensor_dpi == 500.0 and hi.sensor_dpi == 1000.0
    a = plain.enroll("o", owner, train=False, measure_memory=False)
    b = hi.enroll("o", _double(owner), train=False, measure_memory=False)
    assert b.scope == a.scope == NO_TRAINING
    assert b.threshold == pytest.approx(a.threshold, abs=1e-6)
    every = np.concatenate([probes, impostors])
    for key, value in plain.embed(every).items():
        np.testing.assert_allclose(hi.embed(_double(every))[key], value, atol=1e-6)
    np.testing.assert_allclose(hi.scores("o", _double(every)), plain.scores("o", every), atol=1e-6)
    for x in every:
        assert hi.verify("o", _double(x)).score == pytest.approx(
            plain.verify("o", x).score, abs=1e-6
        )
        assert hi.identify(_double(x))[1] == pytest.approx(plain.identify(x)[1], abs=1e-6)
    # ... and it is applied: a 500 dpi capture taken as 1000 dpi is half the size, refused
    with pytest.raises(QualityError, match=r"14x14 pixels at 500 dpi \(captured at 1000\)"):
        hi.verify("o", probes[0])


def test_the_plan_counts_the_resampling(toy_artifact, tmp_path: Path, as_prints) -> None:
    art = toy_artifact
    hi = Device(art["dir"], tmp_path / "hi", trusted_key=art["pub"], sensor_dpi=1000)
    plain = Device(art["dir"], tmp_path / "plain", trusted_key=art["pub"])
    big = (1200, 1200)
    grown = working_bytes(hi.spec, big, dpi=1000) - working_bytes(hi.spec, big)
    assert grown > 0  # resampling a large capture costs more than preprocessing it
    at_hi, at_plain = hi.plan(5, image=big), plain.plan(5, image=big)
    for scope, plan in at_plain.items():
        assert at_hi[scope].prepare_bytes - plan.prepare_bytes == grown
    # the enrollment plans by the captures it is given, at the sensor's resolution
    report = hi.enroll("o", _double(_u8(art["owner"][:5])), train=False, measure_memory=False)
    assert (
        report.predicted_peak_bytes
        == hi.plan(5, image=(56, 56), train=False)[NO_TRAINING].peak_bytes
    )


@pytest.mark.parametrize("dpi", [0, -500, float("nan"), float("inf"), "569", True])
def test_a_resolution_that_is_not_one_is_refused(
    toy_artifact, tmp_path: Path, as_prints, dpi: Any
) -> None:
    with pytest.raises(EnrollmentError, match="a sensor resolution must be a positive number"):
        Device(toy_artifact["dir"], tmp_path, trusted_key=toy_artifact["pub"], sensor_dpi=dpi)


def test_a_record_keeps_the_resolution_it_was_enrolled_at(
    toy_artifact, tmp_path: Path, as_prints
) -> None:
    art = toy_artifact
    owner, probe = _u8(art["owner"][:5]), _u8(art["owner_test"][:1])
    hi = Device(art["dir"], tmp_path, trusted_key=art["pub"], sensor_dpi=1000)
    hi.enroll("o", _double(owner), train=False, measure_memory=False)
    assert hi.store.load("o").meta["sensor_dpi"] == 1000.0
    # the same store under a Device that forgot the sensor's resolution: refused, with the reason
    plain = Device(art["dir"], tmp_path, trusted_key=art["pub"])
    reason = r"enrolled from captures at 1000 dpi.*at 500 dpi"
    with pytest.raises(StoreError, match=reason):
        plain.verify("o", _double(probe)[0])
    # ... and skipped by identify, which names it and identifies among the others
    user, _, skipped = plain.identification(probe[0])
    assert user is None and len(skipped) == 1 and re.search(reason, str(skipped[0]))
    assert isinstance(skipped[0], SensorDpiError) and skipped[0].enrolled == 1000.0
    again = Device(art["dir"], tmp_path, trusted_key=art["pub"], sensor_dpi=1000)
    expected = hi.verify("o", _double(probe)[0], adapt=False).score
    assert again.verify("o", _double(probe)[0], adapt=False).score == pytest.approx(expected)


def test_a_record_of_another_modality_keeps_no_resolution(toy_artifact, tmp_path: Path) -> None:
    art = toy_artifact
    device = Device(art["dir"], tmp_path, trusted_key=art["pub"])
    device.enroll("o", art["owner"][:5], train=False, measure_memory=False)
    assert "sensor_dpi" not in device.store.load("o").meta
