"""Device: enrollment end to end on the toy artifact, scope choice, matching, refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices.contract import BACKGROUND_FEATURES, BACKGROUND_FEATURES_NPY
from personalize import (
    NO_TRAINING,
    ArtifactError,
    Device,
    EnrollmentError,
    StoreError,
    UnknownUserError,
    load_artifact,
)
from personalize.keystore import FileKeyStore

FAR = 1e-2  # 200 held-out background scores measure it directly on the toy task


def _device(art: dict[str, Any], store: Path, **kw: Any) -> Device:
    return Device(art["dir"], store, trusted_key=art["pub"], **kw)


def _rates(dev: Device, art: dict[str, Any], user: str = "owner") -> tuple[float, float]:
    frr = np.mean([not dev.verify(user, x).accept for x in art["owner_test"]])
    far = np.mean([dev.verify(user, x).accept for x in art["impostors"]])
    return float(frr), float(far)


@pytest.mark.parametrize("scope", ["head", "last_block", NO_TRAINING])
def test_owner_accepted_impostors_rejected(toy_artifact, tmp_path: Path, scope: str) -> None:
    dev = _device(toy_artifact, tmp_path)
    train = scope != NO_TRAINING
    report = dev.enroll(
        "owner",
        toy_artifact["owner"],
        scope=scope if train else None,
        train=train,
        target_far=FAR,
    )
    assert report.user == "owner" and report.samples == 5 and report.scope == scope
    # SGD's threshold reads the held-out half of the 400 background rows; imprinting reads all.
    assert report.threshold_method == "empirical" and report.impostors == (200 if train else 400)
    if train:
        # the loss falls (the kept weights are chosen on held-out negatives, not by the loss)
        assert 1 < report.steps <= 100 and report.final_loss < report.initial_loss
    else:
        assert report.steps == 0 and report.final_loss is None
    assert report.embed_ms > 0 and report.train_ms > 0 and report.total_ms > report.train_ms
    assert report.predicted_peak_bytes == report.plans[scope] <= report.budget_bytes
    assert report.measured_peak_bytes is not None and report.measured_peak_bytes > 0
    frr, far = _rates(dev, toy_artifact)
    assert frr <= 0.1 and far <= 0.1, (frr, far)


def test_default_far_extrapolates_the_tail(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path)
    strict = dev.enroll("owner", toy_artifact["owner"], scope="head")
    loose = dev.enroll("owner", toy_artifact["owner"], scope="head", target_far=FAR)
    assert strict.target_far == 2e-5 and strict.threshold_method == "exponential_tail_fisher_z"
    assert strict.threshold > loose.threshold
    assert dev.verify("owner", toy_artifact["owner_test"][0]).threshold == loose.threshold


def test_widest_scope_that_fits_the_budget(toy_artifact, tmp_path: Path) -> None:
    plans = _device(toy_artifact, tmp_path).plan(5)
    assert list(plans) == ["head", "head_biases", "last_block"]
    peaks = [p.peak_bytes for p in plans.values()]
    assert peaks == sorted(peaks) and peaks[0] < peaks[-1]
    assert _device(toy_artifact, tmp_path).enroll("a", toy_artifact["owner"]).scope == "last_block"
    between = _device(toy_artifact, tmp_path, budget=peaks[1])
    report = between.enroll("b", toy_artifact["owner"])
    assert report.scope == "head_biases" and report.budget_bytes == peaks[1]


def test_imprinting_is_planned_as_the_signatures_it_runs(toy_artifact, tmp_path: Path) -> None:
    """Imprinting runs ``embed`` (and ``get_weights`` ran when the Device was made); scoring
    and calibration are numpy: its plan charges no other signature and no variable copies."""
    dev = _device(toy_artifact, tmp_path)
    imprint, head = dev.plan(5, train=False)[NO_TRAINING], dev.plan(5)["head"]
    assert set(imprint.by_signature) == {"embed", "get_weights"}
    assert {"set_weights", "infer", "train"} <= set(head.by_signature)
    assert imprint.host_bytes < head.host_bytes and imprint.peak_bytes < head.peak_bytes


def test_over_budget_is_refused_with_the_numbers(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path, budget=100_000)
    plans = dev.plan(5)
    with pytest.raises(EnrollmentError) as info:
        dev.enroll("owner", toy_artifact["owner"])
    msg = str(info.value)
    assert "memory budget of 100,000 bytes" in msg and "nothing was changed" in msg
    for scope, plan in plans.items():
        assert f"{scope} {plan.peak_bytes:,} B" in msg
    assert f"{plans['head'].peak_bytes - 100_000:,} bytes more" in msg
    tight = _device(toy_artifact, tmp_path, budget=plans["head"].peak_bytes)
    with pytest.raises(EnrollmentError, match=r"scope 'last_block' needs [\d,]+ bytes"):
        tight.enroll("owner", toy_artifact["owner"], scope="last_block")
    assert dev.users() == [] and not list((tmp_path / "users").iterdir())


def _features_as_npy(art: Path, key: Any, *, keep_coded: bool = False) -> None:
    """Stores ``art``'s background features as an older exporter did (a plain float16 .npy),
    then signs the manifest again."""
    from devices import npy
    from export.artifact import sign_manifest

    coded = art / BACKGROUND_FEATURES
    features = load_artifact(art, key.public_key()).features()
    assert features is not None
    plain = npy.to_bytes(features.astype(np.float16))
    (art / BACKGROUND_FEATURES_NPY).write_bytes(plain)
    manifest = json.loads((art / "manifest.json").read_text())
    files = manifest["files"]
    files[BACKGROUND_FEATURES_NPY] = {
        "bytes": len(plain),
        "sha256": hashlib.sha256(plain).hexdigest(),
    }
    if not keep_coded:
        coded.unlink()
        del files[BACKGROUND_FEATURES]
    (art / "manifest.json").write_text(json.dumps(manifest))
    sign_manifest(art, key)


def test_an_older_artifact_with_plain_features_loads_the_same_values(
    toy_artifact, tmp_path: Path
) -> None:
    new = load_artifact(toy_artifact["dir"], toy_artifact["pub"]).features()
    assert new is not None and new.dtype == np.float16
    assert (toy_artifact["dir"] / BACKGROUND_FEATURES).stat().st_size < 0.5 * (
        new.size * 2
    )  # the coded file is well under plain float16
    old = tmp_path / "old"
    shutil.copytree(toy_artifact["dir"], old)
    _features_as_npy(old, toy_artifact["key"])
    loaded = load_artifact(old, toy_artifact["pub"])
    assert loaded.features_file == BACKGROUND_FEATURES_NPY
    np.testing.assert_array_equal(loaded.features(), new)
    dev = Device(old, tmp_path / "store", trusted_key=toy_artifact["pub"])
    assert dev.enroll("owner", toy_artifact["owner"], scope="last_block").scope == "last_block"
    both = tmp_path / "both"
    shutil.copytree(toy_artifact["dir"], both)
    _features_as_npy(both, toy_artifact["key"], keep_coded=True)
    with pytest.raises(ArtifactError, match="lists both"):
        load_artifact(both, toy_artifact["pub"])


def test_wider_scopes_need_background_features(toy_artifact, tmp_path: Path) -> None:
    dev = Device(toy_artifact["plain"], tmp_path, trusted_key=toy_artifact["pub"])
    assert dev.scopes == ("head", "head_biases", "last_block")
    assert dev.trainable_scopes() == ("head",)
    assert dev.enroll("owner", toy_artifact["owner"]).scope == "head"
    with pytest.raises(EnrollmentError, match=r"background_features\.xz"):
        dev.enroll("owner", toy_artifact["owner"], scope="last_block")
    with pytest.raises(EnrollmentError, match="unknown scope 'everything'"):
        dev.enroll("owner", toy_artifact["owner"], scope="everything")
    with pytest.raises(EnrollmentError, match="imprinting only"):
        dev.enroll("owner", toy_artifact["owner"], scope="head", train=False)
    assert dev.enroll("owner", toy_artifact["owner"], scope=NO_TRAINING).steps == 0


def test_identify_remove_wipe(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path)
    dev.enroll("owner", toy_artifact["owner"], scope="head", target_far=FAR)
    labels = toy_artifact["impostor_labels"]
    other = toy_artifact["impostors"][labels == labels[0]]
    dev.enroll("other", other[:5], scope="last_block", target_far=FAR)
    assert dev.users() == ["other", "owner"]
    hits = [dev.identify(x)[0] for x in toy_artifact["owner_test"]]
    assert hits.count("owner") >= 0.9 * len(hits) and "other" not in hits
    if len(other) > 5:
        assert dev.identify(other[5])[0] == "other"
    strangers = toy_artifact["impostors"][labels != labels[0]]
    assert sum(dev.identify(x)[0] is not None for x in strangers) <= 0.1 * len(strangers)
    dev.remove("other")
    assert dev.users() == ["owner"]
    with pytest.raises(UnknownUserError, match="no enrolled user 'other'"):
        dev.verify("other", other[0])
    assert dev.wipe() == 1 and dev.users() == [] and dev.identify(other[0])[0] is None


def test_tampered_record_and_wrong_key_are_refused(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path / "store")
    dev.enroll("owner", toy_artifact["owner"], scope="head", measure_memory=False)
    with pytest.raises(StoreError, match="does not open this store"):
        _device(toy_artifact, tmp_path / "store", keystore=FileKeyStore(tmp_path / "k2"))
    path = dev.store.path("owner")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="fails authentication"):
        dev.verify("owner", toy_artifact["owner_test"][0])


def test_artifact_is_verified_and_records_are_bound_to_it(toy_artifact, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="trusted_key is required"):
        Device(toy_artifact["dir"], tmp_path)
    copy = tmp_path / "art"
    shutil.copytree(toy_artifact["dir"], copy)
    dev = Device(copy, tmp_path / "store", trusted_key=toy_artifact["pub"])
    dev.enroll("owner", toy_artifact["owner"], scope="head", measure_memory=False)
    (copy / "background.npy").write_bytes(b"\x93NUMPY tampered")
    with pytest.raises(ArtifactError, match=r"background\.npy: contents differ"):
        dev.enroll("owner", toy_artifact["owner"])
    with pytest.raises(ArtifactError, match="contents differ"):
        Device(copy, tmp_path / "store", trusted_key=toy_artifact["pub"])
    plain = Device(toy_artifact["plain"], tmp_path / "store", trusted_key=toy_artifact["pub"])
    with pytest.raises(StoreError, match="enrolled with another artifact"):
        plain.verify("owner", toy_artifact["owner_test"][0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": 0}, "budget must be a positive number of bytes"),
        ({"budget": "1MB"}, "budget must be"),
        ({"num_threads": 0}, "num_threads"),
        ({"profile": "toaster"}, "unknown profile 'toaster'"),
        ({"sensor_dpi": 569}, "a fingerprint sensor's; this artifact is digit"),
    ],
)
def test_bad_device_arguments(toy_artifact, tmp_path: Path, kwargs, message: str) -> None:
    with pytest.raises(EnrollmentError, match=message):
        _device(toy_artifact, tmp_path, **kwargs)


def test_a_head_that_is_not_cosine_is_refused(toy_artifact, tmp_path: Path) -> None:
    """The device scores a head by its column's cosine (personalize.head.user_cosines): an
    artifact signed with another head kind is refused when the Device is made."""
    from export.artifact import sign_manifest

    art = tmp_path / "art"
    shutil.copytree(toy_artifact["dir"], art)
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["head"]["kind"] = "dot"
    (art / "manifest.json").write_text(json.dumps(manifest))
    sign_manifest(art, toy_artifact["key"])
    with pytest.raises(ArtifactError, match="head of kind 'dot'"):
        Device(art, tmp_path / "store", trusted_key=toy_artifact["pub"])


def test_model_inputs_of_another_shape_are_refused(toy_artifact, tmp_path: Path) -> None:
    """``embed_inputs`` takes inputs as preprocessing makes them: other sizes are refused, not
    resized by the signature runner and embedded as garbage."""
    dev = _device(toy_artifact, tmp_path)
    x = np.asarray(toy_artifact["owner"], np.float32)  # (5, 28, 28, 1)
    assert dev.embed_inputs(x)["embeddings"].shape[0] == 5
    for bad in (x[:, :24, :24], x[..., 0], x[0]):
        with pytest.raises(EnrollmentError, match="model inputs of shape"):
            dev.embed_inputs(bad)


def test_bad_enroll_arguments(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path)
    with pytest.raises(EnrollmentError, match="user name"):
        dev.enroll("", toy_artifact["owner"])
    with pytest.raises(EnrollmentError, match="target_far"):
        dev.enroll("owner", toy_artifact["owner"], target_far=2.0)
    assert dev.users() == []


def test_report_is_json_ready(toy_artifact, tmp_path: Path) -> None:
    report = _device(toy_artifact, tmp_path).enroll("owner", toy_artifact["owner"], scope="head")
    data = json.loads(json.dumps(report.to_dict()))
    for key in (
        "user",
        "samples",
        "scope",
        "predicted_peak_bytes",
        "measured_peak_bytes",
        "budget_bytes",
        "embed_ms",
        "train_ms",
        "steps",
        "final_loss",
        "threshold",
        "target_far",
    ):
        assert key in data


@pytest.mark.parametrize("scope", ["head", "last_block"])
def test_batched_scores_are_the_verify_scores(toy_artifact, tmp_path: Path, scope: str) -> None:
    dev = _device(toy_artifact, tmp_path)
    dev.enroll("owner", toy_artifact["owner"], scope=scope, target_far=FAR)
    probes = np.concatenate([toy_artifact["owner_test"][:3], toy_artifact["impostors"][:70]])
    one = np.array([dev.verify("owner", x).score for x in probes])
    many = dev.scores("owner", probes)  # 73 captures: two batches
    again = dev.scores("owner", dev.embed(probes))
    assert many.shape == (73,)
    # another batch size may round the int8 embed and the cosine differently in float32
    np.testing.assert_allclose(many, one, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(again, many)


@pytest.mark.parametrize("scope", ["head", NO_TRAINING])
def test_head_column_scores_are_the_infer_signatures(
    toy_artifact, tmp_path: Path, scope: str
) -> None:
    """Records that keep the head alone are scored (and calibrated) in numpy, with the head's
    user column: the artifact's ``infer`` signature, holding the record's weights, gives the
    same cosines, and its scores of the background give the same threshold."""
    from devices.contract import EMBEDDINGS, INFER, SCORES
    from personalize.threshold import threshold_at_far

    dev = _device(toy_artifact, tmp_path)
    train = scope != NO_TRAINING
    report = dev.enroll(
        "owner", toy_artifact["owner"], scope=scope if train else None, train=train, target_far=FAR
    )
    record = dev.store.load("owner")
    assert record.scope == scope
    Device._set_weights(dev._interp, {**dev._pristine, **record.weights})
    infer = dev._interp.get_signature_runner(INFER)

    def cosines(rows: np.ndarray) -> np.ndarray:
        return infer(**{EMBEDDINGS: np.asarray(rows, np.float32)})[SCORES][:, 0] / dev.scale

    probes = np.concatenate([toy_artifact["owner_test"][:3], toy_artifact["impostors"][:20]])
    embedded = dev.embed(probes)
    np.testing.assert_allclose(
        dev.scores("owner", embedded), cosines(embedded[EMBEDDINGS]), rtol=0, atol=1e-5
    )
    background = load_artifact(toy_artifact["dir"], toy_artifact["pub"]).background
    rows = background[len(background) // 2 :] if train else background
    fit = threshold_at_far(cosines(rows), FAR, cosine=True)
    assert report.impostors == fit.impostors
    assert report.threshold == pytest.approx(fit.threshold, abs=1e-5)


def test_a_larger_raw_image_is_planned_by_its_preprocessing(toy_artifact, tmp_path: Path) -> None:
    """The plan counts the preprocessing of the raw images the enrollment is given: a capture
    much larger than the model input raises every scope's predicted peak by its working bytes."""
    from devices.preprocess import working_bytes

    dev = _device(toy_artifact, tmp_path)
    small, large = dev.plan(5), dev.plan(5, image=(2000, 2000))
    grown = working_bytes(dev.spec, (2000, 2000)) - working_bytes(dev.spec, dev.spec.input_size)
    for scope, plan in small.items():
        assert large[scope].prepare_bytes - plan.prepare_bytes == grown
        assert large[scope].peak_bytes >= plan.peak_bytes
    assert max(p.peak_bytes for p in large.values()) >= grown
