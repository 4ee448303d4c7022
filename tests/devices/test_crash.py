"""devices.crash: a torn writer is caught, the atomic recipes of devices.files are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.crash import crash
from devices.files import arm_crash, atomic_write, atomic_write_dir, crash_steps

FAULTS = f"{Path(__file__).with_name('crash_faults.py')}:targets"


@pytest.mark.parametrize("name", ["torn_pair", "in_place"])
def test_a_torn_writer_is_caught(name: str) -> None:
    report = crash(FAULTS, name, injections=40, seed=0)
    assert report.injections == 40 == report.old + report.new + report.lost_or_corrupt
    assert report.lost_or_corrupt > 0, report
    assert report.examples and "killed at step" in report.examples[0]


def test_a_torn_writer_is_caught_by_delay() -> None:
    report = crash(FAULTS, "slow_in_place", injections=4, seed=0)
    assert report.lost_or_corrupt > 0, report


@pytest.mark.parametrize("name", ["atomic_file", "atomic_dir"])
def test_the_atomic_recipes_leave_old_or_new(name: str) -> None:
    report = crash(FAULTS, name, injections=60, seed=0)
    assert report.lost_or_corrupt == 0, report.examples
    assert report.old > 0 and report.new > 0  # both sides of the swap were reached


def test_steps_are_counted_in_pieces(tmp_path: Path) -> None:
    arm_crash(1 << 40)
    try:
        atomic_write(tmp_path / "f", bytes(10_000))
        one = crash_steps()
        arm_crash(1 << 40)
        atomic_write_dir(tmp_path / "d", {"x": bytes(10_000), "y": b""}, marker="x")
        two = crash_steps()
    finally:
        arm_crash(None)
    assert one == 1 + 3 + 1 + 1 + 1  # create, 3 pieces, fsync, rename, folder fsync
    # x as above but its rename, y (create, fsync), the temp folder's fsync, rename, fsync
    assert two == 5 + 2 + 1 + 1 + 1


def test_a_folder_is_exchanged_whole(tmp_path: Path) -> None:
    atomic_write_dir(tmp_path / "d", {"a": b"1", "b": b"1"}, marker="a")
    atomic_write_dir(tmp_path / "d", {"a": b"2"}, marker="a")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # the old folder is gone


def test_a_folder_of_another_kind_is_never_replaced(tmp_path: Path) -> None:
    from devices.files import FolderError

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("years of work")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "model.json").write_text("{}")  # its marker, but a subfolder the swap would drop
    file = tmp_path / "signing.pub"
    file.write_text("key")
    for path, message in ((docs, "has no a"), (run, "holds folders"), (file, "is a file, not")):
        with pytest.raises(FolderError, match=message):
            atomic_write_dir(path, {"a": b"new"}, marker="a")
    assert (docs / "thesis.txt").read_text() == "years of work"
    assert (run / "checkpoints").is_dir() and file.read_text() == "key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "run", "signing.pub"]
    (tmp_path / "empty").mkdir()
    atomic_write_dir(tmp_path / "empty", {"a": b"1"}, marker="a")  # an empty folder is taken
    assert (tmp_path / "empty" / "a").read_bytes() == b"1"
