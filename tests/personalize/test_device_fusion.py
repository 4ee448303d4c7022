"""The fingerprint fusion on the device: an artifact that ships its background people's prints,
a Device that adds the weighted minutiae score, records that keep the owner's prints."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices.contract import BACKGROUND_MINUTIAE
from devices.print_minutiae import (
    FUSION_WEIGHT,
    best_scores,
    describe,
    fusion_entry,
    prints_bytes,
    shipped_detector,
)
from personalize import NO_TRAINING, ArtifactError, Device, EnrollmentError, MatchConfig
from personalize.cli import ERROR, OK, main
from pretrain.data.fingerprint import FingerprintGenerator

FUSED = MatchConfig(rule="head", train=False, minutiae=True)


def _ship(art: Path, key: Any, entry: dict[str, Any], data: bytes) -> None:
    """Adds the background prints file and the manifest's entry; the publisher signs again."""
    from export.artifact import sign_manifest

    manifest = json.loads((art / "manifest.json").read_text())
    (art / BACKGROUND_MINUTIAE).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    manifest["files"][BACKGROUND_MINUTIAE] = {"bytes": len(data), "sha256": digest}
    manifest["minutiae"] = entry
    (art / "manifest.json").write_text(json.dumps(manifest))
    sign_manifest(art, key)


@pytest.fixture(scope="module")
def fused(toy_artifact, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The toy artifact with background prints (six synthetic fingers' prints dealt over its
    400 background rows), an owner's five prints, a probe of the owner, another finger's."""
    art = toy_artifact
    dest = tmp_path_factory.mktemp("fused") / "art"
    shutil.copytree(art["plain"], dest)
    gen = FingerprintGenerator(seed=5)
    distinct = describe(shipped_detector(), [gen.impression(i, 0) for i in range(100, 106)])
    background = distinct.take([i % 6 for i in range(400)])
    _ship(dest, art["key"], fusion_entry(400), prints_bytes(background))
    return {
        "dir": dest,
        "pub": art["pub"],
        "key": art["key"],
        "owner": [gen.impression(7, k) for k in range(5)],
        "probe": gen.impression(7, 5),
        "other": gen.impression(8, 0),
    }


def test_a_fused_enrollment_keeps_the_prints_and_adds_the_minutiae_score(
    fused, tmp_path: Path
) -> None:
    dev = Device(fused["dir"], tmp_path / "store", trusted_key=fused["pub"], match=FUSED)
    assert dev.fuses
    plain = Device(fused["dir"], tmp_path / "plain", trusted_key=fused["pub"])
    assert not plain.fuses  # the toy's default match does not ask for it
    report = dev.enroll("o", fused["owner"], measure_memory=False)
    record = dev.store.load("o")
    assert record.prints is not None and record.prints.size == 5
    # the plan counts finding the prints (136 bytes a pixel: more than preprocessing takes)
    peak = dev.plan(5, image=(256, 256), train=False)[NO_TRAINING].peak_bytes
    assert report.predicted_peak_bytes == peak
    assert peak > plain.plan(5, image=(256, 256), train=False)[NO_TRAINING].peak_bytes
    # the threshold is set on the background's fused scores: above the embedding's alone
    same_rule = dataclasses.replace(FUSED, minutiae=False)
    unfused = Device(fused["dir"], tmp_path / "unfused", trusted_key=fused["pub"], match=same_rule)
    unfused.enroll("o", fused["owner"], measure_memory=False)
    assert record.threshold > unfused.store.load("o").threshold
    for capture in (fused["probe"], fused["other"]):
        embedded = dev.embed([capture])
        minutiae = best_scores(dev.describe([capture]), record.prints)
        want = dev.score_record(embedded, record._replace(prints=None))[0]
        want += FUSION_WEIGHT * minutiae[0]
        assert dev.verify("o", capture, adapt=False).score == pytest.approx(want, abs=1e-6)
        assert dev.identify(capture)[1] == pytest.approx(want, abs=1e-6)
        # a Device that does not fuse new enrollments scores the record as it was enrolled
        later = Device(fused["dir"], tmp_path / "store", trusted_key=fused["pub"])
        assert later.scores("o", [capture])[0] == pytest.approx(want, abs=1e-6)
    ours, theirs = (
        best_scores(dev.describe([c]), record.prints)[0] for c in (fused["probe"], fused["other"])
    )
    assert ours > theirs  # the owner's print pairs its minutiae; another finger's do not


def test_embedded_captures_need_their_prints(fused, tmp_path: Path) -> None:
    dev = Device(fused["dir"], tmp_path / "store", trusted_key=fused["pub"], match=FUSED)
    dev.enroll("o", fused["owner"], measure_memory=False)
    captures = [fused["probe"], fused["other"]]
    embedded = dev.embed(captures)
    with pytest.raises(EnrollmentError, match=r"Device\.describe"):
        dev.scores("o", embedded)
    np.testing.assert_allclose(
        dev.scores("o", embedded, prints=dev.describe(captures)), dev.scores("o", captures)
    )
    shots = dev.embed(fused["owner"])
    with pytest.raises(EnrollmentError, match="pass the samples' prints"):
        dev.record_of("x", shots, "none")
    record, _ = dev.record_of("x", shots, "none", prints=dev.describe(fused["owner"]))
    assert record.prints is not None
    plain = Device(fused["dir"], tmp_path / "plain", trusted_key=fused["pub"])
    with pytest.raises(EnrollmentError, match="pass no prints"):
        plain.record_of("x", shots, "none", prints=record.prints)


def test_a_fusion_the_artifact_does_not_ship_is_refused(toy_artifact, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"ships no background prints.*--minutiae"):
        Device(
            toy_artifact["plain"], tmp_path / "store", trusted_key=toy_artifact["pub"], match=FUSED
        )


def test_an_artifact_with_other_detector_weights_or_a_changed_file_is_refused(
    fused, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(fused["dir"], other)
    data = (other / BACKGROUND_MINUTIAE).read_bytes()
    _ship(other, fused["key"], {**fusion_entry(400), "detector_sha256": "f" * 64}, data)
    with pytest.raises(ArtifactError, match="minutiae detector weights ffffffffffff"):
        Device(other, tmp_path / "s1", trusted_key=fused["pub"])
    changed = tmp_path / "changed"
    shutil.copytree(fused["dir"], changed)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (changed / BACKGROUND_MINUTIAE).write_bytes(bytes(flipped))
    with pytest.raises(ArtifactError, match="differ from the signed manifest"):
        Device(changed, tmp_path / "s2", trusted_key=fused["pub"])
    fewer = tmp_path / "fewer"
    shutil.copytree(fused["dir"], fewer)
    _ship(fewer, fused["key"], fusion_entry(399), data)
    with pytest.raises(ArtifactError, match="manifest says 399"):
        Device(fewer, tmp_path / "s3", trusted_key=fused["pub"])


def test_the_cli_enrolls_with_the_fusion_and_verifies_as_enrolled(
    fused, toy_artifact, tmp_path: Path, capsys
) -> None:
    np.save(tmp_path / "owner.npy", np.stack(fused["owner"]))
    np.save(tmp_path / "probe.npy", fused["probe"])
    store = tmp_path / "store"

    def run(art: Path, *rest: str) -> int:
        where = ["--artifact", str(art), "--store", str(store), "--key", str(fused["pub"])]
        return main([rest[0], *where, *rest[1:], "--no-adapt", "--json"])

    assert (
        run(fused["dir"], "enroll", "--user", "o", "--minutiae", str(tmp_path / "owner.npy")) == OK
    )
    capsys.readouterr()
    run(fused["dir"], "verify", "--user", "o", str(tmp_path / "probe.npy"))
    said = json.loads(capsys.readouterr().out)
    dev = Device(fused["dir"], store, trusted_key=fused["pub"])  # a plain Device: as enrolled
    record = dev.store.load("o")
    assert record.prints is not None and record.prints.size == 5
    assert said["score"] == pytest.approx(dev.verify("o", fused["probe"], adapt=False).score)
    alone = dev.score_record(dev.embed([fused["probe"]]), record._replace(prints=None))[0]
    assert said["score"] > alone  # the owner's print adds its minutiae score
    args = ("enroll", "--user", "p", "--minutiae", str(tmp_path / "owner.npy"))
    assert run(toy_artifact["plain"], *args) == ERROR
    assert "--minutiae" in capsys.readouterr().err
