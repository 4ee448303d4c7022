"""The background features: verified with the artifact when it loads, decoded only when a scope
that trains the last block needs them (once per such enrollment), never held by a Device whose
enrollments imprint or train the head."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices import coded_features
from devices.contract import BACKGROUND_FEATURES
from personalize import NO_TRAINING, Artifact, ArtifactError, Device, load_artifact

FAR = 1e-2


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Every array the features decoder returns, in order (the count is how many decodes)."""
    out: list[np.ndarray] = []
    real = coded_features.decode

    def counting(data: bytes) -> np.ndarray:
        out.append(real(data))
        return out[-1]

    monkeypatch.setattr(coded_features, "decode", counting)
    return out


def _copy(toy: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "art"
    shutil.copytree(toy["dir"], copy)
    return copy


def _rewrite(path: Path, data: bytes) -> None:
    """``data`` written over ``path`` in place (same inode) with its old mtime."""
    st = path.stat()
    with path.open("r+b") as f:
        f.write(data)
        f.truncate()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_imprinting_and_the_head_scope_never_decode_them(
    toy_artifact, tmp_path: Path, decodes: list[np.ndarray]
) -> None:
    art = load_artifact(toy_artifact["dir"], toy_artifact["pub"])
    assert art.features_file == BACKGROUND_FEATURES and not decodes
    dev = Device(toy_artifact["dir"], tmp_path / "store", trusted_key=toy_artifact["pub"])
    assert dev.has_features and dev.trainable_scopes() == ("head", "head_biases", "last_block")
    dev.enroll("imprinted", toy_artifact["owner"], scope=NO_TRAINING, target_far=FAR)
    dev.enroll("trained", toy_artifact["owner"], scope="head", target_far=FAR)
    probe = toy_artifact["owner_test"][0]
    assert dev.verify("trained", probe).accept and dev.verify("imprinted", probe).accept
    dev.identify(probe)
    dev.scores("trained", toy_artifact["owner_test"][:3])
    assert not decodes


def test_scopes_that_do_not_read_them_are_planned_without_them(
    toy_artifact, tmp_path: Path
) -> None:
    """Imprinting and the head scope plan the same peak whether the artifact ships features or
    not; a scope that trains the last block is charged for holding and decoding them."""
    dev = Device(toy_artifact["dir"], tmp_path / "a", trusted_key=toy_artifact["pub"])
    plain = Device(toy_artifact["plain"], tmp_path / "b", trusted_key=toy_artifact["pub"])
    for train in (False, True):
        scope = "head" if train else NO_TRAINING
        assert dev.plan(5, train=train)[scope] == plain.plan(5, train=train)[scope]
    wide = dev.plan(5)["last_block"]
    assert wide.decode_bytes > wide.prepare_bytes
    assert wide.host_bytes > dev.plan(5)["head"].host_bytes


def test_a_wider_scope_decodes_them_once_per_enrollment(
    toy_artifact, tmp_path: Path, decodes: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    want = coded_features.decode((toy_artifact["dir"] / BACKGROUND_FEATURES).read_bytes())
    decodes.clear()
    given: list[np.ndarray] = []
    real = Artifact.features

    def spy(self: Artifact) -> np.ndarray | None:
        given.append(real(self))
        return given[-1]

    monkeypatch.setattr(Artifact, "features", spy)
    dev = Device(toy_artifact["dir"], tmp_path / "store", trusted_key=toy_artifact["pub"])
    assert not decodes
    report = dev.enroll("owner", toy_artifact["owner"], scope="last_block", target_far=FAR)
    assert report.scope == "last_block" and len(decodes) == len(given) == 1
    # the values the eager loader gave: the stored float16 values, bit for bit
    assert given[0].dtype == np.float16
    np.testing.assert_array_equal(given[0], want)
    frr = np.mean([not dev.verify("owner", x).accept for x in toy_artifact["owner_test"]])
    assert frr <= 0.1 and len(decodes) == 1  # matching never reads them
    # not kept: the next wider enrollment decodes them again, a head one does not
    dev.enroll("other", toy_artifact["owner_test"][:5], scope="head_biases", target_far=FAR)
    dev.enroll("third", toy_artifact["owner_test"][5:10], scope="head", target_far=FAR)
    assert len(decodes) == 2


def test_a_tampered_features_file_is_refused_at_load(toy_artifact, tmp_path: Path) -> None:
    art = _copy(toy_artifact, tmp_path)
    path = art / BACKGROUND_FEATURES
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(data)
    with pytest.raises(ArtifactError, match=r"background_features\.xz: contents differ"):
        load_artifact(art, toy_artifact["pub"])
    with pytest.raises(ArtifactError, match="contents differ"):
        Device(art, tmp_path / "store", trusted_key=toy_artifact["pub"])
    path.unlink()
    with pytest.raises(ArtifactError, match=r"background_features\.xz: missing"):
        load_artifact(art, toy_artifact["pub"])


def test_features_swapped_after_loading_are_verified_again(toy_artifact, tmp_path: Path) -> None:
    """The file is hashed again when it is decoded: a swap after loading (even one that keeps
    the stat the artifact was stamped with) is refused, never decoded."""
    art = _copy(toy_artifact, tmp_path)
    loaded = load_artifact(art, toy_artifact["pub"])
    path = art / BACKGROUND_FEATURES
    original = path.read_bytes()
    changed = bytearray(original)
    changed[-1] ^= 0x01
    _rewrite(path, bytes(changed))
    with pytest.raises(ArtifactError, match=r"background_features\.xz: contents differ"):
        loaded.features()
    path.unlink()
    with pytest.raises(ArtifactError, match=r"background_features\.xz: missing"):
        loaded.features()
    path.write_bytes(original)
    assert loaded.features() is not None


def test_signed_but_malformed_features_are_refused_when_first_used(
    toy_artifact, tmp_path: Path
) -> None:
    """A publisher's malformed features file passes the hash; imprinting and the head scope
    still work, and a wider scope is refused naming the file, with nothing saved."""
    from export.artifact import sign_manifest

    art = _copy(toy_artifact, tmp_path)
    rows = len(load_artifact(art, toy_artifact["pub"]).background)
    short = coded_features.encode(np.zeros((rows - 1, 4), np.float32))  # one row short
    for name, data in (("garbage", b"not xz"), ("short", short)):
        (art / BACKGROUND_FEATURES).write_bytes(data)
        manifest = json.loads((art / "manifest.json").read_text())
        manifest["files"][BACKGROUND_FEATURES] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        (art / "manifest.json").write_text(json.dumps(manifest))
        sign_manifest(art, toy_artifact["key"])
        dev = Device(art, tmp_path / name, trusted_key=toy_artifact["pub"])
        dev.enroll("owner", toy_artifact["owner"], scope="head", measure_memory=False)
        reason = "not a readable coded features file" if name == "garbage" else "rows"
        with pytest.raises(ArtifactError, match=rf"background_features\.xz: .*{reason}"):
            dev.enroll("wide", toy_artifact["owner"], scope="last_block", measure_memory=False)
        assert dev.users() == ["owner"]
