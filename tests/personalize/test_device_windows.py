"""Device: a capture with a second registration window scores its best window, in ``verify``
and in the batch ``scores`` alike; enrollment reads first windows only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from devices.preprocess import CROP_FUNCTIONS, VIEW_FUNCTIONS
from personalize import Device
from personalize.windows import PREFIX, best_window, window_of, windows, with_windows

FAR = 1e-2


def test_windows_ride_along_and_the_best_one_scores() -> None:
    first = {"embeddings": np.arange(6.0).reshape(3, 2)}
    further = {"embeddings": 10 + np.arange(6.0).reshape(3, 2)}  # one more window each
    embedded = with_windows(first, further, 1)
    assert embedded[PREFIX + "embeddings"].shape == (3, 1, 2)
    split = windows(embedded)
    assert len(split) == 2 and np.array_equal(split[0]["embeddings"], first["embeddings"])
    np.testing.assert_array_equal(split[1]["embeddings"], further["embeddings"])
    score = lambda w: w["embeddings"][:, 0] * np.array([1.0, -1.0, 1.0])  # noqa: E731
    best, which = best_window(embedded, score)
    np.testing.assert_array_equal(best, [10.0, -2.0, 14.0])
    np.testing.assert_array_equal(which, [1, 0, 1])
    np.testing.assert_array_equal(window_of(embedded, 2, 1)["embeddings"], [[14.0, 15.0]])
    assert windows(first) == [first]  # no further windows: the dict itself


def test_a_capture_scores_its_best_window(toy_artifact, tmp_path: Path, monkeypatch) -> None:
    owner = toy_artifact["owner"]
    plain = Device(toy_artifact["dir"], tmp_path, trusted_key=toy_artifact["pub"])
    plain.enroll("owner", owner, scope="head", target_far=FAR)
    # The toy's images, "registered" as themselves; the second window is the capture upside
    # down (what a second anchor would cut: another part of the same picture).
    monkeypatch.setitem(CROP_FUNCTIONS, "anchor", lambda gray, size: gray)

    def two_if_even(gray: np.ndarray, size: tuple[int, int], below: int) -> list[np.ndarray]:
        flipped = np.ascontiguousarray(gray[::-1])
        return [gray, flipped] if int(gray.sum()) % 2 == 0 else [gray]

    monkeypatch.setitem(VIEW_FUNCTIONS, "anchor", two_if_even)
    dev = Device(toy_artifact["dir"], tmp_path, trusted_key=toy_artifact["pub"])
    dev.spec = dataclasses.replace(
        plain.spec, crop="anchor", crop_size=plain.spec.input_size, second_anchor_below=1
    )
    probes = np.concatenate([toy_artifact["owner_test"][:6], toy_artifact["impostors"][:6]])
    first = plain.scores("owner", probes)
    gray = (np.rint(np.clip(probes[..., 0], 0, 1) * 255)).astype(np.int64)
    two = gray.reshape(len(probes), -1).sum(axis=1) % 2 == 0
    assert 0 < two.sum() < len(probes)  # captures with one window and with two
    want = np.where(two, np.maximum(first, plain.scores("owner", probes[:, ::-1])), first)
    assert np.any(want > first + 1e-3)  # some probes score higher upside down
    embedded = dev.embed(probes)
    assert embedded[PREFIX + "embeddings"].shape[:2] == (len(probes), 1)
    np.testing.assert_allclose(dev.scores("owner", embedded), want, rtol=1e-5, atol=1e-6)
    for x, w in zip(probes[[0, 7]], want[[0, 7]], strict=True):
        assert dev.verify("owner", x).score == pytest.approx(float(w), abs=1e-5)
    # Enrolling reads the first window only: the same record as the plain device's.
    dev.enroll("again", owner, scope="head", target_far=FAR)
    plain.enroll("again_plain", owner, scope="head", target_far=FAR)
    a, b = dev.store.load("again"), plain.store.load("again_plain")
    assert a.threshold == pytest.approx(b.threshold)
