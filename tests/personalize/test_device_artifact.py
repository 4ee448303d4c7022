"""The Device verifies its artifact once, then checks its files by stat before each call: a file
changed on disk after the Device loaded it is refused at the next enroll, verify, identify or
scores; an unchanged artifact is not hashed again."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import personalize.artifact as artifact_module
from personalize import ArtifactError, Device, load_artifact
from personalize.artifact import unchanged

TICK_S = 0.05  # above the file system's timestamp tick (Linux: one kernel tick, <= 10 ms)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the SHA-256 hashers the artifact loader creates (one per file it verifies)."""
    count = [0]
    real = artifact_module._sha256

    def counting() -> Any:
        count[0] += 1
        return real()

    monkeypatch.setattr(artifact_module, "_sha256", counting)
    return count


@pytest.fixture
def stamped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files count as settled at once (the copies here were written a moment ago), so only the
    stat comparison, not the racy rule, decides."""
    monkeypatch.setattr(artifact_module, "RACY_NS", 0)


def _device(toy: dict[str, Any], tmp_path: Path) -> tuple[Device, Path]:
    copy = tmp_path / "art"
    shutil.copytree(toy["dir"], copy)
    return Device(copy, tmp_path / "store", trusted_key=toy["pub"]), copy


def _calls(dev: Device, toy: dict[str, Any]) -> None:
    dev.enroll("owner", toy["owner"], scope="head", measure_memory=False)
    dev.verify("owner", toy["owner_test"][0])
    dev.identify(toy["owner_test"][1])
    dev.scores("owner", toy["owner_test"][:3])


def test_stamps_cover_every_file_read(toy_artifact, stamped) -> None:
    art = load_artifact(toy_artifact["dir"], toy_artifact["pub"])
    names = {name for name, _ in art.stamps}
    assert names == {"manifest.json", "manifest.sig", *art.manifest["files"]}
    assert all(stamp is not None for _, stamp in art.stamps)
    assert unchanged(art)
    assert not unchanged(art._replace(stamps=()))


def test_unchanged_artifact_is_not_hashed_again(
    toy_artifact, tmp_path: Path, hashes: list[int], stamped
) -> None:
    dev, copy = _device(toy_artifact, tmp_path)
    assert hashes[0] == len(dev.manifest["files"])  # each file once, when the Device loads it
    for _ in range(3):
        _calls(dev, toy_artifact)
    assert hashes[0] == len(dev.manifest["files"])
    # A touched file (same bytes, another mtime) is verified again once, accepted, then trusted.
    model = copy / "model.tflite"
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    dev.verify("owner", toy_artifact["owner_test"][0])
    assert hashes[0] == 2 * len(dev.manifest["files"])
    _calls(dev, toy_artifact)
    assert hashes[0] == 2 * len(dev.manifest["files"])


@pytest.mark.parametrize(
    "name", ["background.npy", "background_features.xz", "model.tflite", "manifest.json"]
)
def test_file_changed_after_loading_is_refused(
    toy_artifact, tmp_path: Path, stamped, name: str
) -> None:
    dev, copy = _device(toy_artifact, tmp_path)
    _calls(dev, toy_artifact)
    probe = toy_artifact["owner_test"][0]
    before = dev.verify("owner", probe)
    time.sleep(TICK_S)  # so that the rewrite's ctime is another tick's
    path = copy / name
    st, original = path.stat(), path.read_bytes()
    changed = bytearray(original)
    changed[-1] ^= 0x01
    with path.open("r+b") as f:  # in place: same inode, same size ...
        f.write(changed)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the old mtime
    assert (path.stat().st_ino, path.stat().st_size) == (st.st_ino, st.st_size)
    for call in (
        lambda: dev.verify("owner", probe),
        lambda: dev.enroll("owner", toy_artifact["owner"], scope="head", measure_memory=False),
        lambda: dev.identify(probe),
        lambda: dev.scores("owner", [probe]),
    ):
        with pytest.raises(ArtifactError):
            call()
    path.write_bytes(original)  # put back: verified again in full, and used again
    assert dev.verify("owner", probe) == before


def test_file_written_just_before_loading_is_verified_at_every_call(
    toy_artifact, tmp_path: Path, hashes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every file counts as written within the racy window: its stamp could miss a rewrite in the
    # same clock tick, so the Device verifies it again in full each time.
    monkeypatch.setattr(artifact_module, "RACY_NS", 3600 * 10**9)
    dev, _ = _device(toy_artifact, tmp_path)
    files = len(dev.manifest["files"])
    assert hashes[0] == files
    dev.identify(toy_artifact["owner_test"][0])
    dev.identify(toy_artifact["owner_test"][0])
    assert hashes[0] == 3 * files
