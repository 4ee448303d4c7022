"""The offload service on loopback: load, faults, auth, and what offloading buys on ORL.

Command:
  make bench-offload
  python notebooks/bench/bench_offload.py [--devices 120] [--episodes 10] [--profile phone_cpu]

Starts ``python -m export serve`` (HTTPS with a self-signed certificate made here, a fresh
service key, one token per simulated device) over the face artifact
(notebooks/results/artifacts/face), runs, and stops it:

- ``load``: ``--devices`` threads at once, each a device of its own: the manifest (ETag), the
  same again (304), the first 64 KiB of the model (Range), an enrollment job of an ORL person's
  real features (scope last_block) whose signed reply it verifies, and the job fetched again.
  Every request's latency; ``errors`` counts any unexpected status, exception or bad reply;
  the whole phase is bounded (``--load-timeout``).
- ``faults``: a :class:`personalize.Device` whose budget fits only the head scope offloads an
  ORL enrollment and must fall back to local training with the reason, the store holding
  exactly the owner's record: the service process SIGKILLed after it logged the job's start
  (``killed_mid_request``), a relay that never answers (``timeout``), replies signed by a key
  the app does not trust (``bad_signature``), nothing listening (``offline``), a 503 relay.
- ``auth``: a wrong token is refused (401); another device's job, same or other tenant, is
  not found (404).
- ``benefit``: ORL s21-s40 over the 10 random enrollment splits bench-enroll uses (5-shot
  identification of 20 people): the budget-limited device training the head locally vs the
  same device offloading the last block to the service; the device energy the offload saves
  (:func:`personalize.offload.local_cost`, the devices estimator on ``--profile``: the training
  and calibration the device did not run; radio energy is not modelled).

Writes notebooks/results/offload.json. Time here (2 shared CPU cores): about 1 minute.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from _results import RESULTS, ROOT, print_table, run_main, write_results
from bench_enroll import face_set, pools
from tqdm.auto import tqdm

from export.bundle import generate_key
from export.serve import Relay, issue_token, self_signed
from personalize import Consent, Device, Offload, SgdConfig
from personalize.offload import build_request, local_cost, read_reply

ARTIFACT = RESULTS / "artifacts" / "face"
PUBLISHER = RESULTS / "artifacts" / "signing.pub"
SHOTS = 5
CONSENT = Consent("owner", "2026-12-01T00:00:00Z")
STARTUP_S = 60.0


# -- the service ----------------------------------------------------------------------------------
class Service:
    """``python -m export serve`` in a child process, its JSON log in a file."""

    def __init__(self, work: Path, key: Path, tokens: Path, cert: Path, tls_key: Path) -> None:
        (work / "artifacts").mkdir(exist_ok=True)
        link = work / "artifacts" / ARTIFACT.name
        if not link.exists():
            link.symlink_to(ARTIFACT.resolve())
        self.log = work / f"serve-{time.monotonic_ns()}.log"
        cmd = [sys.executable, "-m", "export", "serve", "--artifacts", str(work / "artifacts")]
        cmd += ["--key", str(key), "--tokens", str(tokens), "--artifact-key", str(PUBLISHER)]
        cmd += ["--port", "0", "--tls-cert", str(cert), "--tls-key", str(tls_key)]
        self._err = self.log.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("serving "):
            self.stop()
            raise SystemExit(f"the service did not start: {line!r}; see {self.log}")
        self.url = line.split()[1]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.startswith("{")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()


def _call(
    url: str,
    token: str,
    ctx: ssl.SSLContext,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str], float]:
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60, context=ctx) as reply:
            body, status, got = reply.read(), reply.status, dict(reply.headers)
    except urllib.error.HTTPError as err:
        with err:
            body, status, got = err.read(), err.code, dict(err.headers)
    return status, body, {k.lower(): v for k, v in got.items()}, 1e3 * (time.perf_counter() - t0)


# -- data -------------------------------------------------------------------------------------------
def orl_embedded(dev: Device) -> tuple[Any, dict[str, np.ndarray]]:
    data = face_set()
    return data, dev.embed(data.images)


def _device(store: Path, profile: str, budget: int | None = None) -> Device:
    return Device(ARTIFACT, store, profile=profile, trusted_key=PUBLISHER, budget=budget)


def head_budget(profile: str, work: Path) -> int:
    """A budget that fits the head scope and nothing wider."""
    plans = _device(work / "probe-store", profile).plan(SHOTS)
    assert plans["head"].peak_bytes < plans["last_block"].peak_bytes
    return plans["head"].peak_bytes


def _expect(condition: bool, what: str) -> None:
    """A load-phase check: a failed one counts as an error."""
    if not condition:
        raise RuntimeError(what)


# -- phases -----------------------------------------------------------------------------------------
def load_phase(
    service: Service,
    tokens: list[str],
    ctx: ssl.SSLContext,
    bodies: list[bytes],
    artifact_id: str,
    service_key: Any,
    timeout: float,
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(tokens))

    def device(i: int) -> None:
        base, token = service.url, tokens[i]
        mine: list[float] = []
        try:
            start.wait(timeout)
            status, _, headers, ms = _call(f"{base}/v1/artifacts/face/manifest.json", token, ctx)
            mine.append(ms)
            _expect(status == 200, f"manifest {status}")
            status, _, _, ms = _call(
                f"{base}/v1/artifacts/face/manifest.json",
                token,
                ctx,
                headers={"If-None-Match": headers["etag"]},
            )
            mine.append(ms)
            _expect(status == 304, f"conditional manifest {status}")
            status, part, _, ms = _call(
                f"{base}/v1/artifacts/face/model.tflite",
                token,
                ctx,
                headers={"Range": "bytes=0-65535"},
            )
            mine.append(ms)
            _expect(status == 206 and len(part) == 65536, f"range {status} {len(part)}")
            body = bodies[i % len(bodies)]
            status, reply, _, ms = _call(
                f"{base}/v1/jobs",
                token,
                ctx,
                data=body,
                headers={"Content-Type": "application/json"},
            )
            mine.append(ms)
            _expect(status == 200, f"job {status} {reply[:200]!r}")
            remote = read_reply(
                reply, service_key, request=body, artifact_id=artifact_id, scope="last_block"
            )
            status, again, _, ms = _call(f"{base}/v1/jobs/{remote.job}", token, ctx)
            mine.append(ms)
            _expect(status == 200 and again == reply, f"fetch {status}")
        except Exception as err:
            with lock:
                errors.append(f"device {i}: {type(err).__name__}: {err}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=device, args=(i,), daemon=True) for i in range(len(tokens))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    deadline = t0 + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()))
    wall = time.perf_counter() - t0
    unfinished = sum(t.is_alive() for t in threads)
    ms = np.asarray(latencies)
    return {
        "devices": len(tokens),
        "concurrent": True,
        "requests": len(ms),
        "errors": len(errors) + unfinished,
        "error_samples": errors[:5],
        "unfinished_devices": unfinished,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
        "max_ms": float(ms.max()) if len(ms) else None,
        "wall_s": wall,
        "bound_s": timeout,
        "per_device": "manifest, manifest If-None-Match (304), model Range 64 KiB (206), "
        "POST job last_block (verified signed reply), GET job again",
        "transport": "HTTPS on 127.0.0.1, self-signed certificate",
    }


def _stray(dev: Device) -> list[str]:
    return [
        p.name
        for p in dev.store.directory.rglob("*")
        if p.name.startswith(".") or p.name.endswith(".tmp")
    ]


def _fault_run(
    dev: Device, samples: list[np.ndarray], offload: Offload, name: str
) -> dict[str, Any]:
    report = dev.enroll("owner", samples, offload=offload, measure_memory=False)
    record = dev.store.load("owner")
    return {
        "fell_back": bool(report.offload.get("fell_back")),
        "reason": report.offload.get("fallback_reason") or report.offload.get("reason"),
        "decision": report.offload.get("decision"),
        "where": report.where,
        "scope": report.scope,
        "latency_ms": report.offload.get("latency_ms"),
        "deadline_s": offload.deadline_s,
        "record_trained_by": record.meta["trained_by"],
        "users": dev.store.users(),
        "stray_files": _stray(dev),
        "nothing_half_written": dev.store.users() == ["owner"] and not _stray(dev),
        "case": name,
    }


def faults_phase(
    work: Path,
    profile: str,
    budget: int,
    samples: list[np.ndarray],
    token: str,
    paths: dict[str, Path],
    url: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def device(name: str) -> Device:
        return _device(work / f"store-{name}", profile, budget)

    def offload(target: str, **kw: Any) -> Offload:
        args: dict[str, Any] = {
            "service_key": paths["pub"],
            "consent": CONSENT,
            "deadline_s": 3.0,
            "cafile": str(paths["cert"]),
        }
        return Offload(target, token, **{**args, **kw})

    # A service of its own, killed (SIGKILL) once it has logged the job's start.
    victim = Service(work, paths["key"], paths["tokens"], paths["cert"], paths["tls_key"])
    dev = device("killed")
    box: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: box.update(r=_fault_run(dev, samples, offload(victim.url), "killed"))
    )
    worker.start()
    t_end = time.monotonic() + 30
    while (
        not any(e.get("event") == "job_start" for e in victim.events()) and time.monotonic() < t_end
    ):
        time.sleep(0.002)
    victim.proc.kill()
    killed_at = time.monotonic()
    worker.join(30)
    returned_s = time.monotonic() - killed_at
    victim.stop()
    answered = [e for e in victim.events() if e.get("path") == "/v1/jobs"]
    out["killed_mid_request"] = {
        **box["r"],
        "killed": "SIGKILL as soon as the service logged job_start (body received, training)",
        "jobs_answered_before_kill": len(answered),
        "kill_to_fallback_done_s": returned_s,
    }
    host, port = url.split("//")[1].rsplit(":", 1)
    with Relay((host, int(port)), mode="hold") as relay:
        out["timeout"] = _fault_run(
            device("timeout"),
            samples,
            offload(relay.url, deadline_s=2.0, cafile=None),
            "relay holds the request, never answers",
        )
    other = work / "untrusted"
    generate_key(other / "k", other / "k.pub")
    out["bad_signature"] = _fault_run(
        device("badsig"),
        samples,
        offload(url, service_key=other / "k.pub"),
        "the app trusts another service key than the one that signed",
    )
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{s.getsockname()[1]}"
    out["offline"] = _fault_run(
        device("offline"), samples, offload(closed), "nothing listening (connection refused)"
    )
    out["offline"]["policy_offline"] = _fault_run(
        device("offline-policy"),
        samples,
        offload(closed, connectivity="offline"),
        "the device knows it is offline",
    )
    with Relay((host, int(port)), mode="error") as relay:
        out["server_error"] = _fault_run(
            device("5xx"), samples, offload(relay.url, cafile=None), "relay answers 503"
        )
    return out


def auth_phase(
    service: Service, tokens: dict[str, str], ctx: ssl.SSLContext, body: bytes
) -> dict[str, Any]:
    base = service.url
    wrong = [
        _call(f"{base}/v1/artifacts/face/manifest.json", "wrong-token", ctx)[0],
        _call(f"{base}/v1/jobs", "wrong-token", ctx, data=body)[0],
        _call(f"{base}/v1/jobs", "", ctx, data=body)[0],
    ]
    status, reply, _, _ = _call(f"{base}/v1/jobs", tokens["a1"], ctx, data=body)
    job = json.loads(reply)["job"]
    own = _call(f"{base}/v1/jobs/{job}", tokens["a1"], ctx)[0]
    same_tenant = _call(f"{base}/v1/jobs/{job}", tokens["a2"], ctx)[0]
    other_tenant = _call(f"{base}/v1/jobs/{job}", tokens["b1"], ctx)[0]
    return {
        "wrong_token_refused": all(w == 401 for w in wrong),
        "wrong_token_statuses": wrong,
        "cross_tenant_refused": other_tenant == 404 and same_tenant == 404,
        "statuses": {
            "owner": own,
            "same_tenant_other_device": same_tenant,
            "other_tenant": other_tenant,
        },
        "owner_reads_own_job": status == 200 and own == 200,
    }


def identification(
    dev: Device,
    ids: list[int],
    embedded: dict[str, np.ndarray],
    labels: np.ndarray,
    probe: np.ndarray,
) -> float:
    matrix = np.stack([dev.scores(f"p{i}", embedded) for i in ids], axis=1)
    predicted = np.asarray(ids)[np.argmax(matrix[probe], axis=1)]
    return float(100 * np.mean(predicted == labels[probe]))


def benefit_phase(
    work: Path,
    profile: str,
    budget: int,
    data: Any,
    embedded: dict[str, np.ndarray],
    offload: Offload,
    episodes: int,
) -> dict[str, Any]:
    local_pct, cloud_pct, saved_mj, head_mj, offload_ms, local_ms, fell_back = (
        [],
        [],
        [],
        [],
        [],
        [],
        0,
    )
    for episode in tqdm(range(1, episodes + 1), desc="benefit (ORL splits)"):
        pool, probe = pools(data, episode)
        ids = sorted(pool)
        local = _device(work / f"benefit-local-{episode}", profile, budget)
        cloud = _device(work / f"benefit-cloud-{episode}", profile, budget)
        for i in ids:
            samples = [data.images[j] for j in pool[i][:SHOTS]]
            r = local.enroll(f"p{i}", samples, measure_memory=False)
            assert r.where == "device" and r.scope == "head"
            local_ms.append(r.total_ms)
            head_mj.append(1e3 * local_cost(local, "head", SHOTS, r.steps, _negatives(local))[1])
            r = cloud.enroll(f"p{i}", samples, measure_memory=False, offload=offload)
            fell_back += r.where != "cloud"
            offload_ms.append(r.total_ms)
            if r.where == "cloud":
                steps = int(r.offload["steps"])
                saved_mj.append(
                    1e3 * local_cost(cloud, r.scope, SHOTS, steps, _negatives(cloud))[1]
                )
        local_pct.append(identification(local, ids, embedded, data.labels, probe))
        cloud_pct.append(identification(cloud, ids, embedded, data.labels, probe))
    return {
        "offloaded_identification_5shot": statistics.mean(cloud_pct),
        "local_identification_5shot": statistics.mean(local_pct),
        "device_energy_saved_mj": statistics.mean(saved_mj),
        "per_split": {"offloaded": cloud_pct, "local": local_pct},
        "difference_points": statistics.mean(
            c - lo for c, lo in zip(cloud_pct, local_pct, strict=True)
        ),
        "splits": episodes,
        "offload_fell_back": fell_back,
        "local_scope": "head",
        "offloaded_scope": "last_block",
        "budget_bytes": budget,
        "local_head_enrollment_energy_mj": statistics.mean(head_mj),
        "enroll_total_ms_p50": {
            "offloaded": statistics.median(offload_ms),
            "local": statistics.median(local_ms),
        },
        "set": data.name
        + ", "
        + data.split.replace("images 1-5 enroll (first k for k-shot), 6-10 probe", "")
        + f"random 5-capture pools, seeds 1..{episodes} (bench-enroll's splits), the rest probe",
        "energy_note": "device_energy_saved_mj: the devices estimator's energy, on the profile, of "
        "the last_block training steps the service ran and the threshold calibration (refine + "
        "infer over the held-out background), which the device did not run; the radio is not "
        "modelled. local_head_enrollment_energy_mj: the same estimate of the local head "
        "enrollment the budget allows.",
    }


def _negatives(dev: Device) -> int:
    return SgdConfig().batch_negatives(SHOTS, dev.background_count // 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=120, help="concurrent simulated devices")
    parser.add_argument("--episodes", type=int, default=10, help="ORL enrollment splits")
    parser.add_argument("--profile", default="phone_cpu")
    parser.add_argument("--load-timeout", type=float, default=300.0, help="bound of the load phase")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-offload-"))
    paths = {
        "key": work / "service.key",
        "pub": work / "service.pub",
        "tokens": work / "tokens.json",
    }
    generate_key(paths["key"], paths["pub"])
    paths["cert"], paths["tls_key"] = self_signed(work / "tls")
    names = [f"dev{i:04d}" for i in range(args.devices)]
    tokens = {
        n: issue_token(paths["tokens"], n, "acme" if i % 2 else "globex")
        for i, n in enumerate(names)
    }
    tokens.update(
        {
            n: issue_token(paths["tokens"], n, t)
            for n, t in (("a1", "acme"), ("a2", "acme"), ("b1", "globex"))
        }
    )
    ctx = ssl.create_default_context(cafile=str(paths["cert"]))
    budget = head_budget(args.profile, work)
    probe = _device(work / "embed-store", args.profile)
    data, embedded = orl_embedded(probe)
    from devices.trust import public_key

    service_key = public_key(paths["pub"])
    bodies = []
    for identity in sorted(set(int(x) for x in data.labels)):
        idx = np.flatnonzero(data.labels == identity)[:SHOTS]
        owner = {k: v[idx] for k, v in embedded.items()}
        bodies.append(
            build_request(
                probe.artifact_id, "last_block", owner, SgdConfig(), 1 / 50_000, 0, CONSENT
            )
        )
    service = Service(work, paths["key"], paths["tokens"], paths["cert"], paths["tls_key"])
    try:
        print(f"service {service.url}; {args.devices} devices")
        load = load_phase(
            service,
            [tokens[n] for n in names],
            ctx,
            bodies,
            probe.artifact_id,
            service_key,
            args.load_timeout,
        )
        auth = auth_phase(service, tokens, ctx, bodies[0])
        first = np.flatnonzero(data.labels == 0)[:SHOTS]
        samples = [data.images[j] for j in first]
        faults = faults_phase(work, args.profile, budget, samples, tokens["a1"], paths, service.url)
        offload = Offload(
            service.url,
            tokens["b1"],
            paths["pub"],
            CONSENT,
            cafile=str(paths["cert"]),
            deadline_s=30.0,
        )
        benefit = benefit_phase(work, args.profile, budget, data, embedded, offload, args.episodes)
    finally:
        service.stop()
    log_lines = len(service.events())
    out = {
        "load": load,
        "faults": faults,
        "auth": auth,
        "benefit": benefit,
        "service": {
            "json_log_lines": log_lines,
            "artifact": str(ARTIFACT.relative_to(ROOT)),
            "profile": args.profile,
        },
        "wall_s": time.perf_counter() - t_start,
    }
    path = write_results("offload", out)
    print_table(
        ["phase", "figure", "value"],
        [
            [
                "load",
                "devices / requests / errors",
                f"{load['devices']} / {load['requests']} / {load['errors']}",
            ],
            ["load", "p50 / p99 ms", f"{load['p50_ms']:.1f} / {load['p99_ms']:.1f}"],
            *[
                ["faults", k, f"fell_back={v['fell_back']} ({v['reason']})"]
                for k, v in faults.items()
            ],
            [
                "auth",
                "wrong token / cross tenant refused",
                f"{auth['wrong_token_refused']} / {auth['cross_tenant_refused']}",
            ],
            [
                "benefit",
                "5-shot offloaded / local %",
                f"{benefit['offloaded_identification_5shot']:.2f} / {benefit['local_identification_5shot']:.2f}",
            ],
            ["benefit", "device energy saved mJ", f"{benefit['device_energy_saved_mj']:.3f}"],
        ],
    )
    print(f"wrote {path} ({out['wall_s']:.0f} s)")
    ok = (
        load["errors"] == 0
        and all(v["fell_back"] for v in faults.values())
        and auth["wrong_token_refused"]
        and auth["cross_tenant_refused"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_main(main)
