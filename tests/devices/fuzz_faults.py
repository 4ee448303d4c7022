"""Targets with every kind of fault, for tests/devices/test_fuzz.py (loaded by path)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from devices.fuzz import Target

SEEDS = [bytes(range(16))]


def _faulty(data: bytes) -> None:
    kind = sum(data) % 5
    if kind == 1:
        raise ValueError("refused")
    if kind == 2:
        raise KeyError("surprise")
    if kind == 3:
        time.sleep(60)
    if kind == 4:
        os.kill(os.getpid(), signal.SIGSEGV)


def targets(workdir: Path) -> dict[str, Target]:
    return {"faulty": Target(SEEDS, _faulty, (ValueError,))}
