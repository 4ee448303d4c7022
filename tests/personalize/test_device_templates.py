"""Device: templates in the record, matching by them, the held-out choice of the kept weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from devices.contract import HEAD_TENSOR as HEAD
from personalize import NO_TRAINING, Device, MatchConfig, SgdConfig

FAR = 1e-2


def _device(art: dict[str, Any], store: Path, **kw: Any) -> Device:
    return Device(art["dir"], store, trusted_key=art["pub"], **kw)


def test_nearest_template_matching_end_to_end(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path, match=MatchConfig(rule="nearest", train=False))
    report = dev.enroll("owner", toy_artifact["owner"], target_far=FAR)
    assert report.scope == NO_TRAINING and report.steps == 0  # train=None: the config's choice
    record = dev.store.load("owner")
    shots = dev.embed(toy_artifact["owner"])["embeddings"]
    unit = shots / np.linalg.norm(shots, axis=1, keepdims=True)
    assert record.templates is not None and record.templates.shape == unit.shape
    np.testing.assert_allclose(record.templates, unit, rtol=1e-6, atol=1e-7)
    raw = dev.store.path("owner").read_bytes()
    assert record.templates.tobytes()[:16] not in raw  # encrypted, never in the clear
    probes = dev.embed(toy_artifact["owner_test"])
    probe_unit = probes["embeddings"] / np.linalg.norm(probes["embeddings"], axis=1, keepdims=True)
    want = (probe_unit @ record.templates.T).max(axis=1)
    np.testing.assert_allclose(dev.scores("owner", probes), want, rtol=1e-5, atol=1e-6)
    frr = np.mean([not dev.verify("owner", x).accept for x in toy_artifact["owner_test"]])
    far = np.mean([dev.verify("owner", x).accept for x in toy_artifact["impostors"]])
    assert frr <= 0.1 and far <= 0.1, (frr, far)


def test_a_record_matches_by_its_own_rule(toy_artifact, tmp_path: Path) -> None:
    # enrolled under the head rule; a Device configured for nearest still scores it by its head
    head = _device(toy_artifact, tmp_path, match=MatchConfig(rule="head"))
    head.enroll("owner", toy_artifact["owner"], scope="head", target_far=FAR)
    nearest = _device(toy_artifact, tmp_path, match=MatchConfig(rule="nearest"))
    x = toy_artifact["owner_test"][:4]
    np.testing.assert_array_equal(nearest.scores("owner", x), head.scores("owner", x))


def test_the_kept_weights_are_the_best_held_out_step(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path, match=MatchConfig(rule="head"))
    embedded = dev.embed(toy_artifact["owner"])
    sgd = SgdConfig(lr=0.5, max_steps=12, converged=0.0, patience=12)
    record, fitted = dev.record_of("owner", embedded, "head", sgd)
    result = fitted.result
    assert result is not None and result.steps == 12 and 0 <= result.best_step <= 12
    np.testing.assert_array_equal(record.weights[HEAD], result.best_state[HEAD])
    assert np.isfinite(result.best_score)
