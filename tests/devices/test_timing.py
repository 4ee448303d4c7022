"""Timing helpers: alternating rounds in one process and in fresh processes (no time is asserted)."""

from __future__ import annotations

import pytest

from devices import (
    alternating_blocks,
    alternating_medians,
    fresh_process_rounds,
    median_parts,
    over_rounds,
    ratio_over_rounds,
)


def test_alternating_medians_calls_each_side_in_every_round() -> None:
    calls = {"a": 0, "b": 0}

    def count(name: str):
        return lambda: calls.__setitem__(name, calls[name] + 1)

    out = alternating_medians({k: count(k) for k in calls}, rounds=3, repeats=4, warmup=2)
    assert calls == {"a": 14, "b": 14}
    assert set(out) == {"a", "b"} and all(v >= 0 for v in out.values())


def test_fresh_process_rounds_alternate_and_read_each_figure(tmp_path) -> None:
    """Each command runs once per round in its own process, the order flipping every round."""
    log = tmp_path / "order"
    code = (
        "import json; open({log!r}, 'a').write('{name}'); "
        "print(json.dumps({{'seconds': {{'x': {s}, 'y': 1.0}}}}))"
    )
    commands = {
        name: ["-c", code.format(log=str(log), name=name, s=s)]
        for name, s in (("flat", 0.5), ("tree", 0.25))
    }
    out = fresh_process_rounds(commands, rounds=3)
    assert out == {"flat": [{"x": 0.5, "y": 1.0}] * 3, "tree": [{"x": 0.25, "y": 1.0}] * 3}
    assert log.read_text() == "flattreetreeflatflattree"


def test_fresh_process_rounds_say_which_command_failed() -> None:
    with pytest.raises(RuntimeError, match=r"timing 'bad'.*exited 3.*boom"):
        fresh_process_rounds(
            {"bad": ["-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"]}, rounds=1
        )


def test_median_parts_is_each_labels_median() -> None:
    samples = [
        {"enroll": 11.0, "embed": 1.0},
        {"enroll": 33.0, "embed": 3.0},
        {"enroll": 9.0, "embed": 9.0},
    ]
    assert median_parts(samples) == {"enroll": 11.0, "embed": 3.0}
    with pytest.raises(ValueError, match="at least one"):
        median_parts([])
    with pytest.raises(ValueError, match="labels"):
        median_parts([{"a": 1.0}, {"b": 1.0}])


def test_over_rounds_gives_median_range_and_rounds() -> None:
    assert over_rounds([3, 1, 2, 10]) == {
        "median": 2.5,
        "range": [1.0, 10.0],
        "rounds": [3.0, 1.0, 2.0, 10.0],
    }
    with pytest.raises(ValueError, match="at least one round"):
        over_rounds([])


def test_ratio_over_rounds_is_the_ratio_of_the_medians() -> None:
    """Not the median of the rounds' ratios (3.0 here): those give the range."""
    out = ratio_over_rounds([10.0, 30.0, 20.0], [5.0, 10.0, 4.0])
    assert out["ratio"] == pytest.approx(20.0 / 5.0, rel=1e-12)
    assert out["rounds"] == pytest.approx([2.0, 3.0, 5.0], rel=1e-12)
    assert out["range"] == pytest.approx([2.0, 5.0], rel=1e-12)


@pytest.mark.parametrize(
    ("numerator", "denominator", "message"),
    [([1.0], [1.0, 2.0], "same number"), ([], [], "same number"), ([1.0], [0.0], "positive")],
)
def test_ratio_over_rounds_refuses_bad_rounds(numerator, denominator, message) -> None:
    with pytest.raises(ValueError, match=message):
        ratio_over_rounds(numerator, denominator)


def test_alternating_blocks_flip_the_order_and_leave_the_warmup_out() -> None:
    log: list[str] = []
    figures = {"a": iter([99.0, 3.0, 1.0, 2.0]), "b": iter([99.0, 10.0, 30.0, 20.0])}

    def call(name: str):
        def run() -> dict[str, float]:
            log.append(name)
            value = next(figures[name])
            return {"enroll": value, "part": value / 2}

        return run

    out = alternating_blocks({k: call(k) for k in figures}, blocks=3, warmup=1)
    assert out == {"a": {"enroll": 2.0, "part": 1.0}, "b": {"enroll": 20.0, "part": 10.0}}
    assert "".join(log) == "ab" + "ab" + "ba" + "ab"
    with pytest.raises(ValueError, match="blocks must be >= 1"):
        alternating_blocks({}, blocks=0)
