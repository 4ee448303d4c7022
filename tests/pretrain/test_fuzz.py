"""Configs and dataset images under fuzzing: load, or raise ConfigError / DataError."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.fuzz import fuzz
from pretrain.config import ConfigError, load_config, make_config, parse_overrides


@pytest.mark.parametrize(
    ("name", "inputs"), [("read_image", 150), ("config_set", 300), ("config_file", 150)]
)
def test_a_slice_of_the_fuzz_bench_finds_nothing(name: str, inputs: int) -> None:
    report = fuzz("pretrain.fuzz:targets", name, inputs=inputs, seed=1)
    assert report.unexpected == 0, report.examples
    assert report.refused > 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=4))
def test_any_set_values_make_a_config_or_are_refused(items: list[str]) -> None:
    with contextlib.suppress(ConfigError):
        make_config(parse_overrides(items))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def get_config(:\n", r"fails to run: SyntaxError.*\(line 1\)"),
        ("x = 1 / 0\n", r"fails to run: ZeroDivisionError.*\(line 1\)"),
        ("def get_config():\n    return 3\n", r"get_config\(\) fails: TypeError"),
        ("def get_config():\n    return {1: 2}\n", "config keys are strings"),
    ],
)
def test_a_config_file_that_fails_is_one_clear_error(tmp_path: Path, text: str, message: str):
    file = tmp_path / "bad.py"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(file)


def test_a_set_value_that_is_no_literal_is_a_string() -> None:
    assert parse_overrides(["model={[]: 1}"]) == {"model": "{[]: 1}"}
    with pytest.raises(ConfigError, match="epochs must be int"):
        make_config(parse_overrides(["epochs={[]: 1}"]))
