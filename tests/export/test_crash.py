"""Crash injection of the bundle and artifact writers (a slice of make bench-reliability)."""

from __future__ import annotations

import pytest

from devices.crash import crash


@pytest.mark.parametrize("name", ["bundle_write", "artifact_write"])
def test_a_killed_writer_leaves_old_or_new(name: str) -> None:
    report = crash("export.crash:targets", name, injections=16, seed=0, tail=12)
    assert report.lost_or_corrupt == 0, report.examples
    assert report.old > 0 and report.new > 0
