"""The one named-component registry."""

from __future__ import annotations

import pytest

from devices.registry import Registry


def test_register_look_up_and_refuse() -> None:
    things: Registry[int] = Registry("thing")
    assert things.add("one", 1) == 1

    @things.register("double")
    def double(x: int) -> int:
        return 2 * x

    assert things["double"] is double and "one" in things and things.get("three") is None
    assert things.names() == ["double", "one"]
    with pytest.raises(ValueError, match="already registered"):
        things.add("one", 11)
    with pytest.raises(
        ValueError, match=r"no thing 'onee'; registered: double, one\. Did you mean"
    ):
        things["onee"]
