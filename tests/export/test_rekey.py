"""Key rotation (export.artifact.rekey, ``python -m export rekey``) on copies of the committed
artifacts: checked with the old public key, signed with a new one, the model untouched, users
enrolled before the rotation still verified after it, tampering refused with nothing written."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from devices.bundle.container import TRAILER_BYTES
from export.__main__ import main
from export.artifact.rekey import RekeyError, rekey
from export.bundle import BundleError, generate_key, key_id, load_public_key, read_bundle
from personalize import ArtifactError, Device, install, load_artifact
from personalize.artifact import parse_manifest

ROOT = Path(__file__).resolve().parents[2] / "notebooks" / "results"
ARTIFACTS = ROOT / "artifacts"


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root``: relative path -> sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def published(tmp_path: Path) -> dict[str, Any]:
    """A publisher's folder as bench-export leaves it: the fingerprint artifact (its
    backbone.pfb signed by the same key; plus a file its manifest does not list), the face
    download bundle, a weights bundle of another key (bench-compression's), the old public key;
    and a new key pair."""
    folder = tmp_path / "published"
    shutil.copytree(ARTIFACTS / "fingerprint", folder / "fingerprint")
    (folder / "fingerprint" / "README.txt").write_text("publisher's note\n")
    shutil.copy(ARTIFACTS / "face.pfb", folder / "face.pfb")
    shutil.copy(ROOT / "bundles" / "lenet5.pfb", folder / "lenet5.pfb")
    shutil.copy(ARTIFACTS / "signing.pub", folder / "signing.pub")
    key = generate_key(tmp_path / "new.key", tmp_path / "new.pub")
    return {"folder": folder, "old": folder / "signing.pub", "key": key, "tmp": tmp_path}


def test_rekey_moves_everything_to_the_new_key_and_keeps_enrolled_users(published):
    from pretrain.data.fingerprint import FingerprintGenerator

    folder, old, key, tmp = (published[k] for k in ("folder", "old", "key", "tmp"))
    art, new = folder / "fingerprint", key.public_key()
    before = _tree(folder)
    prints, _ = FingerprintGenerator(seed=0, cache_size=1).impressions([0], 6)
    device = Device(art, tmp / "store", trusted_key=old)
    device.enroll("ann", prints[:5], train=False, measure_memory=False)
    score = device.scores("ann", prints[5:])[0]

    done = rekey([folder], old_key=old, new_key=key)

    assert sorted((d.path.name, d.action) for d in done) == [
        ("face.pfb", "signed"),
        ("fingerprint", "signed"),
        ("lenet5.pfb", "other"),
    ]
    after = _tree(folder)
    # What a device computes with is untouched; only signed files and the manifest changed.
    for name in ("model.tflite", "background.npy", "background_features.xz", "README.txt"):
        assert after[f"fingerprint/{name}"] == before[f"fingerprint/{name}"]
    assert after["lenet5.pfb"] == before["lenet5.pfb"]
    for name in ("fingerprint/backbone.pfb", "face.pfb", "fingerprint/manifest.json"):
        assert after[name] != before[name]
    old_bytes = (ARTIFACTS / "fingerprint" / "backbone.pfb").read_bytes()
    data = (art / "backbone.pfb").read_bytes()
    assert data[:-TRAILER_BYTES] == old_bytes[:-TRAILER_BYTES]
    assert read_bundle(data, public_key=new).key_id == key_id(new).hex()
    with pytest.raises(BundleError, match="another key"):
        read_bundle(data, public_key=old)
    with pytest.raises(ArtifactError):
        load_artifact(art, old)
    manifest = load_artifact(art, new).manifest
    # this rotation is appended to the artifact's record; earlier rotations stay as they were
    earlier = json.loads((ARTIFACTS / "fingerprint" / "manifest.json").read_bytes()).get(
        "rekeyed", []
    )
    assert manifest["rekeyed"][:-1] == earlier
    assert (manifest["rekeyed"][-1]["from"], manifest["rekeyed"][-1]["to"]) == (
        key_id(load_public_key(old)).hex(),
        key_id(new).hex(),
    )
    # The download installs with the new key only, and rebuilds the face artifact's files.
    installed = install(folder / "face.pfb", tmp / "face", new)
    assert installed["key_id"] == key_id(new).hex()
    with pytest.raises(ArtifactError, match="another key"):
        install(folder / "face.pfb", tmp / "face-old", old)
    # The user enrolled before the rotation is still enrolled, with the same score.
    rotated = Device(art, tmp / "store", trusted_key=new)
    assert rotated.artifact_id == device.artifact_id
    assert rotated.scores("ann", prints[5:])[0] == pytest.approx(score, abs=1e-6)

    # A second run finds everything moved already and writes nothing.
    again = rekey([folder], old_key=old, new_key=key)
    assert sorted(d.action for d in again) == ["kept", "kept", "other"]
    assert _tree(folder) == after


@pytest.mark.parametrize(
    "victim", ["fingerprint/background.npy", "fingerprint/backbone.pfb", "face.pfb"]
)
def test_rekey_refuses_what_the_old_key_did_not_sign_and_writes_nothing(published, victim):
    folder, old, key = published["folder"], published["old"], published["key"]
    path = folder / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    before = _tree(folder)
    with pytest.raises(RekeyError, match="Nothing was signed") as err:
        rekey([folder], old_key=old, new_key=key)
    assert victim.split("/")[-1] in str(err.value)
    assert _tree(folder) == before


def test_rekey_dry_run_and_bad_input(published):
    folder, old, key = published["folder"], published["old"], published["key"]
    before = _tree(folder)
    done = rekey([folder], old_key=old, new_key=key, dry_run=True)
    assert sorted(d.action for d in done) == ["other", "verified", "verified"]
    assert _tree(folder) == before
    with pytest.raises(RekeyError, match="not found"):
        rekey([folder / "missing"], old_key=old, new_key=key)
    (folder / "empty").mkdir()
    with pytest.raises(RekeyError, match="no artifact directory"):
        rekey([folder / "empty"], old_key=old, new_key=key)
    with pytest.raises(RekeyError, match="same key"):
        rekey([folder], old_key=key.public_key(), new_key=key)


def test_cli_rekey(published, capsys):
    folder, old, tmp = published["folder"], published["old"], published["tmp"]
    stranger = generate_key(tmp / "stranger.key", tmp / "stranger.pub")
    assert stranger is not None
    args = ["rekey", str(folder), "--key", str(tmp / "new.key"), "--public", str(old)]
    assert main([*args, "--old-key", str(tmp / "stranger.pub")]) == 2
    assert "nothing named is signed by the old key" in capsys.readouterr().err
    assert main([*args, "--old-key", str(old)]) == 0
    out = capsys.readouterr().out
    assert "2 signed" in out and "1 signed by other keys" in out and str(old) in out
    # The public key beside the artifacts is now the new one, and they verify against it.
    load_artifact(folder / "fingerprint", old)
    assert (
        main(
            [
                "rekey",
                str(folder),
                "--old-key",
                str(tmp / "stranger.pub"),
                "--key",
                str(tmp / "missing.key"),
            ]
        )
        == 2
    )
    assert "not found" in capsys.readouterr().err


def test_a_kept_artifact_id_must_be_sixteen_hex_digits():
    manifest = json.loads((ARTIFACTS / "fingerprint" / "manifest.json").read_text())
    for bad in ("XYZ", 7, "0123456789ABCDEF"):
        with pytest.raises(ArtifactError, match="artifact_id"):
            parse_manifest(json.dumps({**manifest, "artifact_id": bad}).encode())
    good = parse_manifest(json.dumps({**manifest, "artifact_id": "0123456789abcdef"}).encode())
    assert good["artifact_id"] == "0123456789abcdef"


def test_rekey_checks_again_what_it_signs(published, monkeypatch):
    """A file changed between the check and the signing is refused, not signed; what was
    signed before it is said, and a second run finishes once the file is restored."""
    import export.artifact.rekey as rekey_module

    folder, old, key = published["folder"], published["old"], published["key"]
    victim = folder / "fingerprint" / "background.npy"
    good = victim.read_bytes()
    checked = rekey_module._verify

    def check_then_change(kind: str, path: Path, verifier: Any) -> None:
        checked(kind, path, verifier)
        if path.name == "fingerprint":
            victim.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))

    monkeypatch.setattr(rekey_module, "_verify", check_then_change)
    manifest = (folder / "fingerprint" / "manifest.json").read_bytes()
    with pytest.raises(RekeyError, match=r"background\.npy: contents differ.*1 items before it"):
        rekey([folder], old_key=old, new_key=key)
    assert (folder / "fingerprint" / "manifest.json").read_bytes() == manifest
    monkeypatch.setattr(rekey_module, "_verify", checked)
    victim.write_bytes(good)
    done = rekey([folder], old_key=old, new_key=key)
    assert sorted(d.action for d in done) == ["kept", "other", "signed"]
