"""Offloaded enrollment against a real service on loopback: the wide scope trained remotely and
installed only when signed by the named key; auth and tenant isolation; each fallback."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export.bundle import generate_key
from export.serve import Limits, Relay, ServeConfig, issue_token, self_signed, serve_in_thread
from personalize import Consent, Device, EnrollmentError, Offload, SgdConfig

CONSENT = Consent("owner", "2026-12-01T12:00:00Z")
FAR = 1e-2  # what the toy task's 200 held-out background scores measure directly


@pytest.fixture(scope="module")
def service(
    toy_artifact: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The service over the toy artifacts, signing with its own key; two devices of tenant
    ``acme`` and one of ``other``; plain HTTP on 127.0.0.1 (TLS has its own test)."""
    tmp = tmp_path_factory.mktemp("serve")
    generate_key(tmp / "service.key", tmp / "service.pub")
    tokens = tmp / "tokens.json"
    names = {
        d: issue_token(tokens, d, t) for d, t in (("a1", "acme"), ("a2", "acme"), ("b1", "other"))
    }
    config = ServeConfig(
        toy_artifact["tmp"], tmp / "service.key", tokens, artifact_key=toy_artifact["pub"], port=0
    )
    with serve_in_thread(config) as url:
        yield {"url": url, "pub": tmp / "service.pub", "tokens": names, "tmp": tmp, "file": tokens}


def _small_device(art: dict[str, Any], store: Path) -> Device:
    """A device whose budget fits only the head scope (so the policy sends the wide one)."""
    probe = Device(art["dir"], store / "probe", trusted_key=art["pub"])
    head = probe.plan(len(art["owner"]))["head"].peak_bytes
    return Device(art["dir"], store / "dev", trusted_key=art["pub"], budget=head)


def _offload(service: dict[str, Any], url: str | None = None, **kw: Any) -> Offload:
    args: dict[str, Any] = {"service_key": service["pub"], "consent": CONSENT, "deadline_s": 5.0}
    return Offload(url or service["url"], service["tokens"]["a1"], **{**args, **kw})


def _only_record(dev: Device) -> None:
    """Nothing half-written: the store holds exactly the owner's record, and it loads."""
    files = sorted(p.name for p in dev.store.directory.rglob("*") if p.is_file())
    assert not [f for f in files if f.startswith(".") or f.endswith(".tmp")], files
    assert dev.store.users() == ["owner"] and len(list(dev.store.users_dir.iterdir())) == 1
    dev.store.load("owner")


def test_the_service_trains_the_wide_scope_with_the_device_code(
    toy_artifact: dict[str, Any], service: dict[str, Any], tmp_path: Path
) -> None:
    dev = _small_device(toy_artifact, tmp_path)
    report = dev.enroll(
        "owner",
        toy_artifact["owner"],
        offload=_offload(service),
        target_far=FAR,
        measure_memory=False,
    )
    assert report.where == "cloud" and report.scope == "last_block", report.offload
    assert report.offload["decision"] == "cloud" and not report.offload["fell_back"]
    assert report.offload["consent"]["granted_utc"] == CONSENT.granted_utc
    record = dev.store.load("owner")
    assert record.meta["trained_by"] == "cloud" and record.meta["offload"]["consent"]
    # One implementation: the same training on this device from the same embeddings gives the
    # same tensors (same code, same interpreter, same seed; float32 rounding bounds the rest).
    embedded = dev.embed(toy_artifact["owner"])
    local = dev.fit_embedded(embedded, "last_block", SgdConfig(), report.target_far, seed=0)
    for name, value in local.weights.items():
        np.testing.assert_allclose(record.weights[name], value, rtol=1e-5, atol=1e-6)
    assert record.threshold == pytest.approx(local.fit.threshold, abs=1e-5)
    accepted = np.mean([dev.verify("owner", x).accept for x in toy_artifact["owner_test"]])
    assert accepted > 0.5


def test_no_consent_sends_nothing(
    toy_artifact: dict[str, Any], service: dict[str, Any], tmp_path: Path
) -> None:
    dev = _small_device(toy_artifact, tmp_path)
    with Relay(("127.0.0.1", 1), mode="close") as relay:
        report = dev.enroll(
            "owner",
            toy_artifact["owner"],
            offload=_offload(service, relay.url, consent=None),
            measure_memory=False,
        )
    assert relay.requests == 0
    assert report.where == "device" and report.scope == "head"
    assert report.offload["decision"] == "defer" and report.offload["consent"] is None


def _closed_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("hold", "timeout"),
        ("error", "service error: HTTP 503"),
        ("close", "no network"),
        ("offline", "no network"),
        ("bad_signature", "bad signature"),
        ("wrong_token", "refused: HTTP 401"),
    ],
)
def test_each_failure_falls_back_to_local_training(
    toy_artifact: dict[str, Any], service: dict[str, Any], tmp_path: Path, fault: str, reason: str
) -> None:
    dev = _small_device(toy_artifact, tmp_path)
    host, port = service["url"].rsplit(":", 1)
    other = tmp_path / "other"
    generate_key(other / "k", other / "k.pub")
    kw: dict[str, Any] = {"deadline_s": 1.5}
    if fault == "bad_signature":
        kw["service_key"] = other / "k.pub"  # the service signs with a key the app does not trust
    with Relay(
        (host.split("//")[1], int(port)),
        mode=fault if fault in ("hold", "error", "close") else "forward",
    ) as relay:
        url = _closed_port() if fault == "offline" else relay.url
        off = _offload(service, url, **kw)
        if fault == "wrong_token":
            off = Offload(url, "not-a-token", service["pub"], CONSENT, deadline_s=1.5)
        report = dev.enroll("owner", toy_artifact["owner"], offload=off, measure_memory=False)
    assert report.where == "device" and report.scope == "head"
    assert report.offload["fell_back"] and report.offload["fallback_reason"].startswith(reason), (
        report.offload
    )
    assert report.offload["latency_ms"] < 1e3 * 1.5 + 500  # within the stated deadline
    assert dev.store.load("owner").meta["trained_by"] == "device"
    _only_record(dev)


def _get(url: str, token: str, **headers: str) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read(), dict(err.headers)


def test_auth_and_tenant_isolation(
    toy_artifact: dict[str, Any], service: dict[str, Any], tmp_path: Path
) -> None:
    tokens, url = service["tokens"], service["url"]
    assert _get(f"{url}/v1/artifacts", "wrong")[0] == 401
    assert _get(f"{url}/v1/artifacts", "")[0] == 401
    dev = _small_device(toy_artifact, tmp_path)
    report = dev.enroll(
        "owner", toy_artifact["owner"], offload=_offload(service), measure_memory=False
    )
    job = report.offload["job"]
    status, body, _ = _get(f"{url}/v1/jobs/{job}", tokens["a1"])
    assert status == 200 and json.loads(body)["job"] == job
    # Another device, of the same tenant or of another, never reads it.
    assert _get(f"{url}/v1/jobs/{job}", tokens["a2"])[0] == 404
    assert _get(f"{url}/v1/jobs/{job}", tokens["b1"])[0] == 404
    # The tokens file keeps hashes only.
    text = service["file"].read_text()
    assert not any(t in text for t in tokens.values())
    assert service["file"].stat().st_mode & 0o777 == 0o600


def test_downloads_have_etags_and_ranges(
    toy_artifact: dict[str, Any], service: dict[str, Any]
) -> None:
    url, token = service["url"], service["tokens"]["a1"]
    status, listing, _ = _get(f"{url}/v1/artifacts", token)
    assert status == 200 and {a["name"] for a in json.loads(listing)["artifacts"]} == {
        "art",
        "art_plain",
    }
    status, model, headers = _get(f"{url}/v1/artifacts/art/model.tflite", token)
    assert status == 200 and model == (toy_artifact["dir"] / "model.tflite").read_bytes()
    etag = headers["etag"]
    assert _get(f"{url}/v1/artifacts/art/model.tflite", token, **{"If-None-Match": etag})[0] == 304
    status, part, headers = _get(f"{url}/v1/artifacts/art/model.tflite", token, Range="bytes=10-19")
    assert (
        status == 206
        and part == model[10:20]
        and headers["content-range"].startswith("bytes 10-19/")
    )
    assert _get(f"{url}/v1/artifacts/art/../../tokens.json", token)[0] == 404
    assert _get(f"{url}/v1/artifacts/art/store.key", token)[0] == 404


def test_size_and_rate_limits(toy_artifact: dict[str, Any], service: dict[str, Any]) -> None:
    config = ServeConfig(
        toy_artifact["tmp"],
        service["tmp"] / "service.key",
        service["file"],
        artifact_key=toy_artifact["pub"],
        port=0,
        limits=Limits(max_request_bytes=1000, rate_per_s=0.01, burst=2),
    )
    token = service["tokens"]["a1"]
    with serve_in_thread(config) as url:
        request = urllib.request.Request(
            f"{url}/v1/jobs",
            data=b"x" * 5000,
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        err.value.close()
        assert err.value.code == 413
        assert _get(f"{url}/v1/artifacts", token)[0] == 200
        status, body, headers = _get(f"{url}/v1/artifacts", token)
        assert (
            status == 429
            and "retry" in json.loads(body)["error"]
            and "retry-after" in {k.lower() for k in headers}
        )
        assert _get(f"{url}/v1/artifacts", service["tokens"]["a2"])[0] == 200  # per device


def test_tls_on_loopback(
    toy_artifact: dict[str, Any], service: dict[str, Any], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path / "tls")
    config = ServeConfig(
        toy_artifact["tmp"],
        service["tmp"] / "service.key",
        service["file"],
        artifact_key=toy_artifact["pub"],
        port=0,
        tls_cert=cert,
        tls_key=key,
    )
    with serve_in_thread(config) as url:
        assert url.startswith("https://127.0.0.1:")
        dev = _small_device(toy_artifact, tmp_path)
        report = dev.enroll(
            "owner",
            toy_artifact["owner"],
            offload=_offload(service, url, cafile=str(cert)),
            measure_memory=False,
        )
        assert report.where == "cloud", report.offload
        # Without the certificate the device trusts nothing there, and trains locally.
        ctx = ssl.create_default_context()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{url}/v1/health", timeout=5, context=ctx)
        report = dev.enroll(
            "owner", toy_artifact["owner"], offload=_offload(service, url), measure_memory=False
        )
        assert (
            report.where == "device"
            and "CERTIFICATE_VERIFY_FAILED" in report.offload["fallback_reason"]
        )


def test_the_policy_defers_on_a_critical_battery(
    toy_artifact: dict[str, Any], service: dict[str, Any], tmp_path: Path
) -> None:
    """The step fits, but the battery is nearly empty, not charging, and nothing may leave."""
    dev = Device(toy_artifact["dir"], tmp_path, trusted_key=toy_artifact["pub"])
    off = _offload(service, consent=None, battery_level=0.01, battery_joules=40_000.0)
    with pytest.raises(EnrollmentError, match="enrollment deferred: battery at 1%"):
        dev.enroll("owner", toy_artifact["owner"], offload=off, measure_memory=False)
    assert dev.users() == []
    with pytest.raises(EnrollmentError, match="consent needs the user"):
        Consent("owner", "")
