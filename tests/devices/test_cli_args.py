"""The shared argument types: bad numbers are refused by argparse, in one line, exit status 2."""

from __future__ import annotations

import argparse

import pytest

from devices.cli_args import at_least, port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--count", type=at_least(1))
    parser.add_argument("--offset", type=at_least(0))
    parser.add_argument("--port", type=port)
    return parser


def test_good_values_parse() -> None:
    args = _parser().parse_args(["--count", "1", "--offset", "0", "--port", "65535"])
    assert (args.count, args.offset, args.port) == (1, 0, 65535)
    assert _parser().parse_args(["--port", "0"]).port == 0  # any free port


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--count", "0"], "argument --count: must be >= 1, got 0"),
        (["--count", "-3"], "must be >= 1, got -3"),
        (["--offset", "-1"], "argument --offset: must be >= 0, got -1"),
        (["--count", "two"], "'two' is not an integer"),
        (["--port", "-1"], "argument --port: -1 is not a port: use 0-65535"),
        (["--port", "70000"], "70000 is not a port"),
        (["--port", "http"], "'http' is not a port number"),
    ],
)
def test_bad_values_are_one_line_usage_errors(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and says in err and "Traceback" not in err
