"""Timed enrollments on a warm Device: which parts count, warm-up excluded (no time is asserted)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personalize import Device, EnrollmentReport, enrollment_seconds, time_enrollments


def _report(embed: float, train: float, calibrate: float, total: float) -> EnrollmentReport:
    return EnrollmentReport(
        user="u",
        samples=5,
        scope="none",
        predicted_peak_bytes=0,
        measured_peak_bytes=None,
        budget_bytes=1,
        embed_ms=embed,
        train_ms=train,
        steps=0,
        final_loss=None,
        threshold=0.5,
        target_far=1e-3,
        calibrate_ms=calibrate,
        total_ms=total,
    )


def test_enrollment_seconds_sums_embed_train_and_calibrate() -> None:
    out = enrollment_seconds(_report(2.0, 3.0, 5.0, 40.0))
    expected = {"enroll": 0.01, "embed": 0.002, "train": 0.003, "calibrate": 0.005}
    assert out == pytest.approx({**expected, "whole_call": 0.04}, rel=1e-12)


class _ScriptedDevice:
    """Stands in for a Device: each enroll returns the next scripted report, and is logged."""

    def __init__(self, reports: list[EnrollmentReport]) -> None:
        self.reports, self.calls = iter(reports), []

    def enroll(self, user: str, images: Any, **kwargs: Any) -> EnrollmentReport:
        self.calls.append((user, len(images), kwargs))
        return dataclasses.replace(next(self.reports), user=user)


def test_time_enrollments_leaves_the_warmup_out_of_the_medians() -> None:
    slow = _report(1000.0, 1000.0, 1000.0, 5000.0)
    timed = [_report(1.0, 1.0, 1.0, 9.0), _report(2.0, 4.0, 6.0, 20.0), _report(3.0, 1.0, 2.0, 7.0)]
    device = _ScriptedDevice([slow, *timed])
    people = [np.zeros((5, 4, 4)), np.ones((5, 4, 4)), np.ones((5, 4, 4))]
    out = time_enrollments(device, people, warmup=1)  # type: ignore[arg-type]
    # medians of (3, 12, 6) ms, (1, 2, 3), (1, 4, 1), (1, 6, 2), (9, 20, 7)
    expected = {"enroll": 6e-3, "embed": 2e-3, "train": 1e-3, "calibrate": 2e-3, "whole_call": 9e-3}
    assert out == pytest.approx(expected, rel=1e-12)
    assert [c[0] for c in device.calls] == ["warmup-0", "timed-0", "timed-1", "timed-2"]
    assert all(c[2] == {"measure_memory": False} for c in device.calls)  # the default flow


def test_time_enrollments_on_a_device(toy_artifact, tmp_path: Path) -> None:
    dev = Device(toy_artifact["dir"], tmp_path / "store", trusted_key=toy_artifact["pub"])
    people = [toy_artifact["owner"], toy_artifact["owner_test"][:5]]
    out = time_enrollments(dev, people)
    assert set(out) == {"enroll", "embed", "train", "calibrate", "whole_call"}
    assert all(v > 0 for v in out.values())
    assert out["whole_call"] >= out["enroll"]  # each call's total holds its parts
    assert dev.users() == ["timed-0", "timed-1", "warmup-0"]
    with pytest.raises(ValueError, match="at least one person"):
        time_enrollments(dev, [])
