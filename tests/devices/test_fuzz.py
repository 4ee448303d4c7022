"""devices.fuzz: reproducible mutations; exceptions, hangs and crashes counted, never fatal."""

from __future__ import annotations

import tempfile
from pathlib import Path

from devices.fuzz import classify, fuzz, load_target, mutate

FAULTS = f"{Path(__file__).with_name('fuzz_faults.py')}:targets"


def test_mutations_are_reproducible_and_mutate() -> None:
    seeds = [bytes(range(64)), b"other seed"]
    inputs = [mutate(seeds, 7, i) for i in range(200)]
    assert inputs == [mutate(seeds, 7, i) for i in range(200)]
    assert inputs != [mutate(seeds, 8, i) for i in range(200)]
    assert sum(x not in seeds for x in inputs) >= 198  # never its own seed; rarely the other
    assert len(set(inputs)) >= 180


def test_every_kind_of_outcome_is_counted_and_the_worker_restarts() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = load_target(FAULTS, "faulty", Path(tmp))
    report = fuzz(FAULTS, "faulty", inputs=6, seed=1, time_bound=0.5)
    assert (
        report.inputs
        == 6
        == (report.loaded + report.refused + report.exceptions + report.hangs + report.crashes)
    )
    expected = [classify_kind(mutate(target.seeds, 1, i)) for i in range(6)]
    assert report.loaded == expected.count(0) and report.refused == expected.count(1)
    assert report.exceptions == expected.count(2) and report.exceptions > 0
    assert report.hangs == expected.count(3) and report.hangs > 0
    assert report.crashes == expected.count(4) and report.crashes > 0
    assert report.unexpected == report.exceptions + report.hangs + report.crashes
    assert any("KeyError" in e for e in report.examples), report.examples


def classify_kind(data: bytes) -> int:
    return sum(data) % 5  # as fuzz_faults._faulty


def test_classify_runs_one_input_in_this_process() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = load_target(FAULTS, "faulty", Path(tmp))
    assert classify(target, b"\x05") == ("loaded", "")
    assert classify(target, b"\x01") == ("refused", "")
    kind, detail = classify(target, b"\x02")
    assert kind == "exception" and detail.startswith("KeyError: 'surprise'")
