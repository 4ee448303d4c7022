"""Timing helpers: alternating rounds in one process and in fresh processes (no time is asserted)."""

from __future__ import annotations

import pytest

from devices import alternating_medians, fresh_process_rounds


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
