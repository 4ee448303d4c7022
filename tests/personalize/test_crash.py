"""Crash injection of the device's writers (a slice of make bench-reliability): every kill
leaves the previous record / artifact or the new one, readable."""

from __future__ import annotations

import pytest

from devices.crash import crash
from personalize.crash import install_available


@pytest.mark.parametrize(
    "name",
    [
        "store_create",
        "record_save",
        "record_remove",
        "artifact_install",
        "install",
        "continual_update",
        "continual_buffer",
    ],
)
def test_a_killed_writer_leaves_old_or_new(name: str) -> None:
    report = crash("personalize.crash:targets", name, injections=24, seed=0, tail=12)
    assert report.lost_or_corrupt == 0, report.examples
    assert report.old + report.new == 24 and report.new > 0


def test_install_joins_the_injected_writers() -> None:
    assert install_available()  # personalize install exists: the bench injects it
