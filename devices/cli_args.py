"""Argument types shared by the packages' command lines: numbers checked where they are parsed.

A count of 0 or a port of 70000 is refused by argparse itself (one line, exit status 2), before
any work starts, instead of failing deep inside an optimizer or a socket call with a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

PORTS = range(0, 65536)  # 0: the system picks a free one


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= minimum``.

    Example:
      ``parser.add_argument("--epochs", type=at_least(1))`` refuses ``--epochs 0``.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # what argparse names in its own messages
    return parse


def port(text: str) -> int:
    """An argparse ``type``: a TCP port, 0-65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if value not in PORTS:
        raise argparse.ArgumentTypeError(
            f"{value} is not a port: use {PORTS.start}-{PORTS.stop - 1} (0: any free port)"
        )
    return value
