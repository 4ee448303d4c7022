"""Device: test-time flip averaging beside the wider scopes (the embeddings of a capture and its
mirror averaged; the front features the last block trains on are the capture's own)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from devices.cosine import flip_average, mirror
from personalize import Device, MatchConfig

FAR = 1e-2


def flipped_copy(art: dict[str, Any], where: Path) -> Path:
    """The toy artifact with ``input.flip_average`` set, signed again by its publisher."""
    from export.artifact import sign_manifest

    shutil.copytree(art["dir"], where)
    manifest = json.loads((where / "manifest.json").read_text())
    manifest["input"]["flip_average"] = True
    (where / "manifest.json").write_text(json.dumps(manifest))
    sign_manifest(where, art["key"])
    return where


def test_flip_averages_embeddings_and_keeps_the_captures_features(
    toy_artifact, tmp_path: Path
) -> None:
    plain = Device(toy_artifact["dir"], tmp_path / "a", trusted_key=toy_artifact["pub"])
    art = flipped_copy(toy_artifact, tmp_path / "flip")
    flip = Device(art, tmp_path / "b", trusted_key=toy_artifact["pub"])
    assert flip.flip and "last_block" in flip.trainable_scopes()
    x = np.asarray(toy_artifact["owner"], np.float32)
    got = flip.embed_inputs(x)
    one, other = plain.embed_inputs(x), plain.embed_inputs(mirror(x))
    assert not np.allclose(one["embeddings"], other["embeddings"], atol=1e-2)
    want = flip_average(one["embeddings"], other["embeddings"])
    np.testing.assert_allclose(got["embeddings"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["features"], one["features"], rtol=1e-5, atol=1e-6)


def test_flip_artifact_trains_the_last_block_and_verifies(toy_artifact, tmp_path: Path) -> None:
    art = flipped_copy(toy_artifact, tmp_path / "flip")
    dev = Device(
        art, tmp_path / "store", trusted_key=toy_artifact["pub"], match=MatchConfig(rule="mix")
    )
    report = dev.enroll("owner", toy_artifact["owner"], scope="last_block", target_far=FAR)
    assert report.scope == "last_block" and report.steps > 0
    frr = np.mean([not dev.verify("owner", x).accept for x in toy_artifact["owner_test"]])
    far = np.mean([dev.verify("owner", x).accept for x in toy_artifact["impostors"]])
    assert frr <= 0.1 and far <= 0.1, (frr, far)
