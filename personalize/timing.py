"""How long one enrollment takes on a warm Device, by part (what a speed comparison reads).

The parts are the :class:`~personalize.device.EnrollmentReport`'s: ``embed`` (the captures
through the artifact's ``embed`` signature), ``train`` (imprinting the head, and SGD when the flow
trains), ``calibrate`` (the user's threshold, from the background); ``enroll`` is their sum, the
work from the checked captures to an enrolled user in memory. ``whole_call`` is the whole
:meth:`~personalize.device.Device.enroll` call besides: the artifact's check (its files' stat;
verified again in full only if one changed), the quality gate and preprocessing, the memory plan,
and the encrypted record written to disk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from devices.timing import median_parts
from personalize.device import Device, EnrollmentReport

ENROLL_PARTS = ("embed", "train", "calibrate")


def enrollment_seconds(report: EnrollmentReport) -> dict[str, float]:
    """One enrollment's seconds: ``enroll`` (embed + train + calibrate), each part, and
    ``whole_call``."""
    parts = {
        "embed": report.embed_ms / 1e3,
        "train": report.train_ms / 1e3,
        "calibrate": report.calibrate_ms / 1e3,
    }
    return {"enroll": sum(parts.values()), **parts, "whole_call": report.total_ms / 1e3}


def time_enrollments(
    device: Device, people: Sequence[np.ndarray | Sequence[np.ndarray]], *, warmup: int = 1
) -> dict[str, float]:
    """Median seconds of one enrollment by ``device``'s default flow, over one of each person.

    ``device.enroll(user, captures)`` as an app calls it (``train`` and ``scope`` left to the
    Device's match config; the peak memory is not measured), after ``warmup`` untimed
    enrollments of the first person (the app's interpreter is loaded and has run). Each person
    enrolls as a new user of ``device``'s store.

    Args:
      device: the Device (its interpreter already built).
      people: each person's raw captures.

    Returns:
      Median seconds of each key of :func:`enrollment_seconds`.
    """
    if not people:
        raise ValueError("time_enrollments needs at least one person.")
    for i in range(warmup):
        device.enroll(f"warmup-{i}", people[0], measure_memory=False)
    reports = [
        device.enroll(f"timed-{i}", captures, measure_memory=False)
        for i, captures in enumerate(people)
    ]
    return median_parts([enrollment_seconds(r) for r in reports])
