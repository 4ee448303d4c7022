"""Device: test-time views beside the wider scopes (the embeddings of a capture's views averaged,
as an older artifact's ``flip_average`` or a manifest's ``views`` asks; the front features the
last block trains on are the capture's own)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices.views import FLIP, TestViews, average_views, make_views
from personalize import Device, MatchConfig

FAR = 1e-2
LEGACY = {"flip_average": True}
VIEWS = {"views": {"mirror": True, "shift_px": 2, "zoom": 1.1}}


def flipped_copy(art: dict[str, Any], where: Path, fields: dict[str, Any] = LEGACY) -> Path:
    """The toy artifact with ``fields`` in its ``input`` section (default the older
    ``flip_average``), signed again by its publisher."""
    from export.artifact import sign_manifest

    shutil.copytree(art["dir"], where)
    manifest = json.loads((where / "manifest.json").read_text())
    manifest["input"].update(fields)
    (where / "manifest.json").write_text(json.dumps(manifest))
    sign_manifest(where, art["key"])
    return where


def test_flip_averages_embeddings_and_keeps_the_captures_features(
    toy_artifact, tmp_path: Path
) -> None:
    plain = Device(toy_artifact["dir"], tmp_path / "a", trusted_key=toy_artifact["pub"])
    art = flipped_copy(toy_artifact, tmp_path / "flip")
    flip = Device(art, tmp_path / "b", trusted_key=toy_artifact["pub"])
    assert flip.views == FLIP and "last_block" in flip.trainable_scopes()
    x = np.asarray(toy_artifact["owner"], np.float32)
    got = flip.embed_inputs(x)
    one, other = plain.embed_inputs(x), plain.embed_inputs(np.ascontiguousarray(x[:, :, ::-1]))
    assert not np.allclose(one["embeddings"], other["embeddings"], atol=1e-2)
    want = average_views(np.concatenate([one["embeddings"], other["embeddings"]]), 2)
    np.testing.assert_allclose(got["embeddings"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["features"], one["features"], rtol=1e-5, atol=1e-6)


def test_views_average_every_view_and_keep_the_captures_features(
    toy_artifact, tmp_path: Path
) -> None:
    plain = Device(toy_artifact["dir"], tmp_path / "a", trusted_key=toy_artifact["pub"])
    dev = Device(
        flipped_copy(toy_artifact, tmp_path / "v", VIEWS),
        tmp_path / "b",
        trusted_key=toy_artifact["pub"],
    )
    views = TestViews(mirror=True, shift_px=2, zoom=1.1)
    assert dev.views == views and views.count == 12
    x = np.asarray(toy_artifact["owner"], np.float32)
    got = dev.embed_inputs(x)
    every = plain.embed_inputs(make_views(x, views))["embeddings"]
    want = average_views(every, views.count)
    flip = average_views(np.concatenate([every[: len(x)], every[6 * len(x) : 7 * len(x)]]), 2)
    assert np.max(np.abs(want - flip)) > 1e-3  # the shifted and zoomed views count
    np.testing.assert_allclose(got["embeddings"], want, rtol=1e-5, atol=1e-6)
    # enrollment samples: the capture and its mirror only (TestViews.for_enrollment)
    assert dev.enroll_views == FLIP
    samples, _ = dev._embed_samples(x)
    np.testing.assert_allclose(samples["embeddings"], flip, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        got["features"], plain.embed_inputs(x)["features"], rtol=1e-5, atol=1e-6
    )


# The copies' background embeddings stay the toy's single-view ones (only the manifest changes),
# so the calibration is off by the views' shift of the embeddings: 12 views move them more than
# the mirror alone (measured on the toy: 5 of 36 impostors accepted with VIEWS; LEGACY within 0.1).
@pytest.mark.parametrize(
    "fields,far_max", [(LEGACY, 0.1), (VIEWS, 0.2)], ids=["flip_average", "views"]
)
def test_viewed_artifact_trains_the_last_block_and_verifies(
    toy_artifact, tmp_path: Path, fields: dict[str, Any], far_max: float
) -> None:
    art = flipped_copy(toy_artifact, tmp_path / "flip", fields)
    dev = Device(
        art, tmp_path / "store", trusted_key=toy_artifact["pub"], match=MatchConfig(rule="mix")
    )
    report = dev.enroll("owner", toy_artifact["owner"], scope="last_block", target_far=FAR)
    assert report.scope == "last_block" and report.steps > 0
    frr = np.mean([not dev.verify("owner", x).accept for x in toy_artifact["owner_test"]])
    far = np.mean([dev.verify("owner", x).accept for x in toy_artifact["impostors"]])
    assert frr <= 0.1 and far <= far_max, (frr, far)
