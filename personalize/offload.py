"""Offloaded enrollment, the device side: ask the service to train, trust only its signature.

When :mod:`devices.policy` says ``cloud`` (the wide scope does not fit the memory budget, would
drain a battery that is not charging, or would be too slow, and the link and the owner's consent
allow it), the device sends the service its samples' ``embed`` outputs (embeddings and the frozen
front's features; never images, never the user's name) and gets back the trained tensors and the
threshold, signed with the service's Ed25519 key. Nothing is installed before that signature
verifies against the key the caller names and the payload answers this very request (its
SHA-256), this artifact and this scope. Anything else (no network, timeout, HTTP error, bad
signature, a malformed payload) falls back to local training within ``deadline_s``, and the
reason is in the enrollment report.

The wire format (:func:`encode_array`, :func:`canonical`) is defined here once; the service
(:mod:`export.serve`) imports it. Standard library (``urllib``, ``ssl``) + numpy only.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import numpy as np

from devices.contract import EMBEDDINGS, FEATURES, INFER, REFINE, train_input
from devices.estimate import estimate
from devices.policy import PolicyConfig, Situation, decide
from devices.trust import TrustError, public_key, verify_file
from personalize.errors import EnrollmentError
from personalize.threshold import TailFit

FORMAT = "pocketfit-offload/1"
JOBS_PATH = "/v1/jobs"
DEFAULT_DEADLINE_S = 10.0
# The largest reply the device reads (the wide scope's tensors are tens of kilobytes).
MAX_REPLY_BYTES = 16 * 2**20


class OffloadError(Exception):
    """One offload attempt that failed; the message is the fallback reason."""


# -- wire format ----------------------------------------------------------------------------------
def encode_array(a: np.ndarray) -> dict[str, Any]:
    """``{"shape", "data"}``: little-endian float32 bytes, base64."""
    x = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(x.shape), "data": base64.b64encode(x.tobytes()).decode()}


def decode_array(value: Any, what: str, *, max_values: int = 2**24) -> np.ndarray:
    """The float32 array :func:`encode_array` wrote, checked (shape, size, finite).

    Raises:
      ValueError: a malformed entry, naming ``what``.
    """
    if not isinstance(value, Mapping) or set(value) != {"shape", "data"}:
        raise ValueError(f"{what}: expected {{'shape', 'data'}}.")
    shape = value["shape"]
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ValueError(f"{what}: bad shape {shape!r}.")
    count = int(np.prod(shape)) if shape else 1
    if count > max_values:
        raise ValueError(f"{what}: {count:,} values, over the limit of {max_values:,}.")
    try:
        raw = base64.b64decode(str(value["data"]), validate=True)
    except ValueError:
        raise ValueError(f"{what}: data is not base64.") from None
    if len(raw) != 4 * count:
        raise ValueError(f"{what}: {len(raw):,} bytes for shape {shape} ({4 * count:,} expected).")
    x = np.frombuffer(raw, "<f4").reshape(shape).astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: non-finite values.")
    return x


def canonical(obj: Any) -> bytes:
    """The bytes a JSON object is hashed and signed as (sorted keys, no spaces)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# -- what the owner and the device say ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Consent:
    """The owner's explicit consent to send their samples' embeddings and features (never images).

    The app records it when the owner agrees (``granted_utc``, the text shown); it is kept in the
    enrollment report and in the user's record. Without it the policy never chooses the cloud.
    """

    user: str
    granted_utc: str
    text: str = "send my face's embeddings and features (not images) to train my profile"
    sends: str = "embeddings"

    def __post_init__(self) -> None:
        if not self.user or not self.granted_utc:
            raise EnrollmentError("consent needs the user and the time it was granted (UTC).")

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Offload:
    """Where to offload, with whose consent, and the device's situation.

    Attributes:
      url: the service (``https://host:port``; ``http://`` only on loopback tests).
      token: this device's bearer token.
      service_key: the service's Ed25519 public key (PEM path, bytes or key): the app ships it.
      consent: the owner's recorded consent, or None (then nothing leaves the device).
      connectivity, battery_level, charging, battery_joules: see :class:`devices.policy.Situation`.
      deadline_s: the whole offload attempt, from the request to the verified reply; past it the
        device trains locally.
      cafile: the certificate (self-signed) or CA bundle the service's TLS certificate must chain
        to; default the system's.
      scope: the scope to ask for; default the widest the artifact exports.
      policy: the policy's thresholds.
    """

    url: str
    token: str
    service_key: Any
    consent: Consent | None
    connectivity: str = "unmetered"
    battery_level: float = 1.0
    charging: bool = False
    battery_joules: float | None = None
    deadline_s: float = DEFAULT_DEADLINE_S
    cafile: str | None = None
    scope: str | None = None
    policy: PolicyConfig | None = None


@dataclasses.dataclass(frozen=True)
class Remote:
    """The service's verified answer."""

    scope: str
    weights: dict[str, np.ndarray]
    fit: TailFit
    job: str
    steps: int
    key_id: str


@dataclasses.dataclass
class OffloadOutcome:
    """What the offload attempt did: the policy's decision, and the fallback's reason if any."""

    decision: str = ""
    reason: str = ""
    remote: Remote | None = None
    fell_back: bool = False
    fallback_reason: str = ""
    consent: dict[str, str] | None = None
    latency_ms: float = 0.0
    scope: str = ""

    def to_dict(self) -> dict[str, Any]:
        if not self.decision:
            return {}
        return {
            "decision": self.decision,
            "reason": self.reason,
            "fell_back": self.fell_back,
            "fallback_reason": self.fallback_reason,
            "consent": self.consent,
            "latency_ms": self.latency_ms,
            "asked_scope": self.scope,
            "job": self.remote.job if self.remote else None,
            "service_key_id": self.remote.key_id if self.remote else None,
            "steps": self.remote.steps if self.remote else None,
        }

    @property
    def where(self) -> str:
        """Who trained the weights installed: ``cloud`` or ``device``."""
        return "cloud" if self.remote is not None else "device"

    def meta(self) -> dict[str, Any]:
        """What the user's record keeps: who trained it; the decision, consent and job."""
        out = self.to_dict()
        keep = ("decision", "consent", "fell_back", "job")
        return {"trained_by": self.where, **({"offload": {k: out[k] for k in keep}} if out else {})}


# -- the policy's inputs --------------------------------------------------------------------------
def local_cost(
    device: Any, scope: str, samples: int, steps: int, negatives: int
) -> tuple[float, float]:
    """Estimated ``(seconds, joules)`` of training ``scope`` for ``steps`` steps and calibrating
    its threshold on ``device``'s profile (:func:`devices.estimate`).

    Args:
      device: a :class:`personalize.Device`.
      negatives: background negatives per step.
    """
    graph, profile, stats = device.graph, device.profile, device.model_stats
    name = device.manifest["scopes"][scope]["signature"]
    step = dataclasses.replace(graph.signature(name), batch=samples + negatives)
    one = estimate(graph, step, profile, model_stats=stats)
    rows = device.background_count - device.background_count // 2
    calls = -(-rows // 64)
    seconds, joules = steps * one.latency_s, steps * one.energy_j
    sigs = [INFER, REFINE] if train_input(scope) == FEATURES else [INFER]
    for sig in sigs:
        e = estimate(
            graph, dataclasses.replace(graph.signature(sig), batch=64), profile, model_stats=stats
        )
        seconds, joules = seconds + calls * e.latency_s, joules + calls * e.energy_j
    return seconds, joules


def situation(
    offload: Offload, peak_bytes: int, budget: int, seconds: float, joules: float
) -> Situation:
    """The policy's view of one enrollment."""
    return Situation(
        connectivity=offload.connectivity,
        battery_level=offload.battery_level,
        charging=offload.charging,
        consent_embeddings=offload.consent is not None,
        local_latency_s=seconds,
        local_energy_j=joules,
        local_peak_bytes=peak_bytes,
        free_bytes=budget,
        battery_joules=offload.battery_joules,
    )


# -- the exchange ---------------------------------------------------------------------------------
def build_request(
    artifact_id: str,
    scope: str,
    embedded: Mapping[str, np.ndarray],
    sgd: Any,
    target_far: float,
    seed: int,
    consent: Consent,
) -> bytes:
    """The job's body: the samples' embed outputs the scope needs, never images or names."""
    inputs = {EMBEDDINGS: encode_array(embedded[EMBEDDINGS])}
    if train_input(scope) == FEATURES:
        inputs[FEATURES] = encode_array(embedded[FEATURES])
    body = {
        "format": FORMAT,
        "artifact": artifact_id,
        "scope": scope,
        "sgd": dataclasses.asdict(sgd),
        "target_far": target_far,
        "seed": seed,
        "consent": {"granted_utc": consent.granted_utc, "sends": consent.sends},
        "inputs": inputs,
    }
    return canonical(body)


def _post(url: str, token: str, body: bytes, timeout: float, cafile: str | None) -> bytes:
    request = urllib.request.Request(
        url.rstrip("/") + JOBS_PATH,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as reply:
            return bytes(reply.read(MAX_REPLY_BYTES + 1))
    except urllib.error.HTTPError as err:
        with err:  # an HTTPError holds the connection open until closed
            detail = err.read(300).decode(errors="replace").strip()
        kind = "service error" if err.code >= 500 else "refused"
        raise OffloadError(f"{kind}: HTTP {err.code} {detail}") from None
    except (TimeoutError, ssl.SSLError, urllib.error.URLError, OSError) as err:
        cause = getattr(err, "reason", err)
        if isinstance(cause, TimeoutError) or "timed out" in str(cause):
            raise OffloadError(f"timeout: no reply within {timeout:.1f} s") from None
        raise OffloadError(f"no network: {cause}") from None


def exchange(offload: Offload, body: bytes) -> bytes:
    """POSTs the job and returns the raw reply, within ``offload.deadline_s`` (the socket's
    timeout bounds each read; a worker thread bounds the whole exchange)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["reply"] = _post(
                offload.url, offload.token, body, offload.deadline_s, offload.cafile
            )
        except OffloadError as err:
            box["error"] = err
        except Exception as err:  # anything the stack raises is a failed offload, not a crash
            box["error"] = OffloadError(f"client error: {type(err).__name__}: {err}")

    worker = threading.Thread(target=run, name="pocketfit-offload", daemon=True)
    worker.start()
    worker.join(offload.deadline_s)
    if worker.is_alive():
        raise OffloadError(f"timeout: no reply within the {offload.deadline_s:g} s deadline")
    if "error" in box:
        raise box["error"]
    return bytes(box["reply"])


def read_reply(reply: bytes, key: Any, *, request: bytes, artifact_id: str, scope: str) -> Remote:
    """The service's reply, verified: signature first, then what it answers.

    Raises:
      OffloadError: a bad signature, another request's or artifact's answer, or a malformed one.
    """
    if len(reply) > MAX_REPLY_BYTES:
        raise OffloadError(f"bad reply: over {MAX_REPLY_BYTES:,} bytes")
    try:
        outer = json.loads(reply)
        payload = base64.b64decode(outer["payload"], validate=True)
        signature = bytes.fromhex(outer["signature"])
    except (ValueError, KeyError, TypeError):
        raise OffloadError("bad reply: not a signed offload reply") from None
    try:
        verify_file(key, payload, signature, what="offload reply")
    except TrustError as err:
        raise OffloadError(f"bad signature: {err}") from None
    try:
        body = json.loads(payload)
        if body.get("format") != FORMAT:
            raise ValueError(f"format {body.get('format')!r}, expected {FORMAT}")
        if body["request_sha256"] != hashlib.sha256(request).hexdigest():
            raise ValueError("it answers another request")
        if body["artifact"] != artifact_id or body["scope"] != scope:
            raise ValueError(f"it is for artifact {body['artifact']}, scope {body['scope']}")
        weights = {
            str(k): decode_array(v, f"weights[{k}]") for k, v in dict(body["weights"]).items()
        }
        t = body["threshold"]
        fit = TailFit(
            float(t["threshold"]),
            str(t["method"]),
            int(t["impostors"]),
            int(t["tail"]),
            float(t["xi"]),
            float(t["sigma"]),
            float(t["u"]),
        )
        if not np.isfinite(fit.threshold):
            raise ValueError("non-finite threshold")
        return Remote(
            scope, weights, fit, str(body["job"]), int(body["steps"]), signature[:8].hex()
        )
    except (ValueError, KeyError, TypeError) as err:
        raise OffloadError(f"bad reply: {err}") from None


def offload_enrollment(
    device: Any,
    offload: Offload,
    request: Any,
    embedded: Mapping[str, np.ndarray],
    plans: Mapping[str, Any],
    seed: int,
) -> OffloadOutcome:
    """Consults the policy and, on ``cloud``, runs the exchange; never raises for a failed
    offload (the outcome says why it fell back), only for a deferral.

    Args:
      device: the :class:`personalize.Device` enrolling.
      request: the enrollment's checked arguments (user, scope, target_far, sgd).
      plans: the predicted peak of each trainable scope.

    Raises:
      EnrollmentError: the policy defers (e.g. critical battery) although the step fits.
    """
    scope = request.scope or offload.scope or device.trainable_scopes()[-1]
    if scope not in plans:
        raise EnrollmentError(
            f"offload scope {scope!r} is not trainable with this artifact ({', '.join(plans)})."
        )
    peak = plans[scope].peak_bytes
    negatives = request.sgd.batch_negatives(
        embedded[EMBEDDINGS].shape[0], device.background_count // 2
    )
    seconds, joules = local_cost(
        device, scope, embedded[EMBEDDINGS].shape[0], request.sgd.max_steps, negatives
    )
    where = decide(situation(offload, peak, device.budget, seconds, joules), offload.policy)
    consent = offload.consent.to_dict() if offload.consent else None
    outcome = OffloadOutcome(where.where, where.reason, consent=consent, scope=scope)
    if where.where == "defer" and peak <= device.budget:
        raise EnrollmentError(f"enrollment deferred: {where.reason}; nothing was changed.")
    if where.where != "cloud":
        return outcome
    assert offload.consent is not None  # the policy sends nothing without it
    t0 = time.perf_counter()
    try:
        key = public_key(offload.service_key)
        body = build_request(
            device.artifact_id,
            scope,
            embedded,
            request.sgd,
            request.target_far,
            seed,
            offload.consent,
        )
        reply = exchange(offload, body)
        remote = read_reply(reply, key, request=body, artifact_id=device.artifact_id, scope=scope)
        got = {k: v.shape for k, v in remote.weights.items()}
        if got != device.trained_tensors(scope):
            raise OffloadError(
                f"bad reply: tensors {got}, this artifact's {scope} trains "
                f"{device.trained_tensors(scope)}"
            )
        outcome.remote = remote
    except TrustError as err:
        outcome.fell_back, outcome.fallback_reason = True, f"bad service key: {err}"
    except OffloadError as err:
        outcome.fell_back, outcome.fallback_reason = True, str(err)
    outcome.latency_ms = 1e3 * (time.perf_counter() - t0)
    return outcome
