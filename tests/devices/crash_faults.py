"""Writers for tests/devices/test_crash.py (loaded by path): torn ones the driver must catch,
the atomic recipe it must pass."""

from __future__ import annotations

import time
from pathlib import Path

from devices.crash import CrashTarget
from devices.files import atomic_write, atomic_write_dir, crash_point

OLD, NEW = b"old" * 5000, b"new" * 5000


def _pair_state(folder: Path) -> str:
    a, b = (folder / "a").read_bytes(), (folder / "b").read_bytes()
    return {(OLD, OLD): "old", (NEW, NEW): "new"}.get((a, b), "a mix")


def _torn_pair(folder: Path) -> None:  # two files renamed one after the other
    atomic_write(folder / "a", NEW)
    atomic_write(folder / "b", NEW)


def _in_place(folder: Path) -> None:  # written where it is read, no temp file
    with (folder / "a").open("wb") as f:
        for start in range(0, len(NEW), 4096):
            f.write(NEW[start : start + 4096])
            f.flush()
            crash_point()


def _slow_in_place(folder: Path) -> None:
    with (folder / "a").open("wb") as f:
        for start in range(0, len(NEW), 1500):
            f.write(NEW[start : start + 1500])
            f.flush()
            time.sleep(0.01)


def _file_state(folder: Path) -> str:
    return {OLD: "old", NEW: "new"}.get((folder / "a").read_bytes(), "torn")


def targets(workdir: Path) -> dict[str, CrashTarget]:
    def pair(data: bytes):
        return lambda f: atomic_write_dir(f / "pair", {"a": data, "b": data}, marker="a")

    return {
        "torn_pair": CrashTarget(
            lambda f: (atomic_write(f / "a", OLD), atomic_write(f / "b", OLD)),
            _torn_pair,
            _pair_state,
        ),
        "in_place": CrashTarget(lambda f: atomic_write(f / "a", OLD), _in_place, _file_state),
        "slow_in_place": CrashTarget(
            lambda f: atomic_write(f / "a", OLD), _slow_in_place, _file_state, kill="delay"
        ),
        "atomic_file": CrashTarget(
            lambda f: atomic_write(f / "a", OLD), lambda f: atomic_write(f / "a", NEW), _file_state
        ),
        "atomic_dir": CrashTarget(pair(OLD), pair(NEW), lambda f: _pair_state(f / "pair")),
    }
