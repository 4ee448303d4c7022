"""Offloaded enrollment training on the service: the device's own training code, signed replies.

A job is one request of :func:`personalize.offload.build_request`: the owner's ``embed`` outputs
for a scope. The service runs :meth:`personalize.Device.fit_embedded` on the same artifact (the
same imprinting, the same SGD with weight decay through the artifact's train signature in the
LiteRT interpreter, the same threshold calibration): one implementation, not two. The reply's
payload names the request's SHA-256, the artifact and the scope, and is signed with the
service's Ed25519 key; jobs are kept per device, and only their device may read them again.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import json
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from devices.contract import EMBED, EMBEDDINGS, FEATURES, MANIFEST, train_input
from devices.trust import key_id
from export.serve.tokens import Client
from personalize import Device, SgdConfig, load_artifact
from personalize.device import artifact_id
from personalize.offload import FORMAT, canonical, decode_array, encode_array

MAX_SAMPLES = 64  # an enrollment's samples; a bigger job is refused (422)
KEPT_JOBS = 10_000  # replies kept for their devices to fetch again (oldest dropped)


class JobError(ValueError):
    """A job request that is refused (HTTP 422 or 404); the message says why."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class _Loaded:
    device: Device
    artifact: Any
    lock: threading.Lock


def find_artifacts(root: str | os.PathLike[str]) -> dict[str, Path]:
    """Artifact directories under ``root`` (each holding a manifest), by artifact id."""
    out = {}
    for manifest in sorted(Path(root).glob(f"*/{MANIFEST}")):
        try:
            out[artifact_id(json.loads(manifest.read_text()))] = manifest.parent
        except (ValueError, KeyError, TypeError, OSError):
            continue  # not an artifact; its download would fail verification on the device too
    return out


class Trainer:
    """Runs jobs on the artifacts of one folder, signs the replies, keeps them per device.

    Args:
      artifacts: the folder of artifact directories the service distributes.
      signing_key: the service's Ed25519 private key (signs replies).
      artifact_key: the publisher's public key the artifacts must verify against.
    """

    def __init__(self, artifacts: str | os.PathLike[str], signing_key: Any, artifact_key: Any):
        self.root = Path(artifacts)
        self.signing_key, self.artifact_key = signing_key, artifact_key
        self.key_id = key_id(signing_key.public_key())
        self.artifacts = find_artifacts(self.root)
        self._loaded: dict[str, _Loaded] = {}
        self._load_lock = threading.Lock()
        self._jobs: collections.OrderedDict[str, tuple[Client, bytes]] = collections.OrderedDict()
        self._jobs_lock = threading.Lock()
        self._state = tempfile.TemporaryDirectory(prefix="pocketfit-serve-")

    def close(self) -> None:
        self._state.cleanup()

    def _device(self, artifact: str) -> _Loaded:
        with self._load_lock:
            if artifact not in self._loaded:
                if artifact not in self.artifacts:
                    raise JobError(
                        f"unknown artifact {artifact}; this service has "
                        f"{', '.join(sorted(self.artifacts)) or 'none'}.",
                        404,
                    )
                folder = self.artifacts[artifact]
                store = Path(self._state.name) / artifact
                dev = Device(folder, store, profile="host", trusted_key=self.artifact_key)
                self._loaded[artifact] = _Loaded(
                    dev, load_artifact(folder, self.artifact_key), threading.Lock()
                )
            return self._loaded[artifact]

    def _parse(self, body: bytes) -> tuple[dict[str, Any], _Loaded, dict[str, np.ndarray]]:
        try:
            job = json.loads(body)
            if not isinstance(job, dict) or job.get("format") != FORMAT:
                raise ValueError(f"format {job.get('format') if isinstance(job, dict) else None!r}")
            if not isinstance(job.get("consent"), dict) or not job["consent"].get("granted_utc"):
                raise JobError("the owner's consent (granted_utc) is required.")
            loaded = self._device(str(job["artifact"]))
            dev, scope = loaded.device, job["scope"]
            if scope not in dev.trainable_scopes():
                raise JobError(
                    f"scope {scope!r}: this artifact trains {', '.join(dev.trainable_scopes())}."
                )
            inputs = job["inputs"]
            names = [EMBEDDINGS] + ([FEATURES] if train_input(scope) == FEATURES else [])
            embedded = {n: decode_array(inputs[n], f"inputs.{n}") for n in names}
        except JobError:
            raise
        except (ValueError, KeyError, TypeError) as err:
            raise JobError(f"not a {FORMAT} job: {err}") from None
        outputs = dev.manifest["signatures"][EMBED]["outputs"]
        n = len(embedded[EMBEDDINGS])
        for name, x in embedded.items():
            want = tuple(outputs[name]["shape"][1:])
            if x.ndim < 1 or x.shape[1:] != want or len(x) != n or not 1 <= n <= MAX_SAMPLES:
                raise JobError(
                    f"inputs.{name} has shape {x.shape}; expected (n, {', '.join(map(str, want))}) "
                    f"with 1 <= n <= {MAX_SAMPLES}, the same n for every input."
                )
        return job, loaded, embedded

    def run(self, client: Client, body: bytes) -> tuple[str, bytes]:
        """Trains one job for ``client``; returns its id and the signed reply (JSON bytes).

        Raises:
          JobError: a malformed or unsatisfiable job (nothing was trained).
        """
        job, loaded, embedded = self._parse(body)
        try:
            sgd = SgdConfig(**job["sgd"])
            target_far, seed = float(job["target_far"]), int(job["seed"])
            if not 0.0 < target_far < 1.0:
                raise ValueError(f"target_far {target_far} not in (0, 1)")
        except (ValueError, TypeError) as err:
            raise JobError(f"bad training settings: {err}") from None
        with loaded.lock:  # one interpreter per artifact
            fitted = loaded.device.fit_embedded(
                embedded, job["scope"], sgd, target_far, seed=seed, artifact=loaded.artifact
            )
        job_id = secrets.token_hex(12)
        payload = {
            "format": FORMAT,
            "job": job_id,
            "device": client.device,
            "artifact": job["artifact"],
            "scope": job["scope"],
            "request_sha256": hashlib.sha256(body).hexdigest(),
            "weights": {k: encode_array(v) for k, v in fitted.weights.items()},
            "threshold": fitted.fit._asdict(),
            "steps": fitted.result.steps if fitted.result else 0,
            "train_ms": fitted.train_ms,
            "calibrate_ms": fitted.calibrate_ms,
        }
        message = canonical(payload)
        signature = self.key_id + bytes(self.signing_key.sign(message))
        reply = canonical(
            {
                "job": job_id,
                "payload": base64.b64encode(message).decode(),
                "signature": signature.hex(),
            }
        )
        with self._jobs_lock:
            self._jobs[job_id] = (client, reply)
            while len(self._jobs) > KEPT_JOBS:
                self._jobs.popitem(last=False)
        return job_id, reply

    def fetch(self, client: Client, job_id: str) -> bytes:
        """A job's reply, for the device that ran it only (any other: 'no such job')."""
        with self._jobs_lock:
            owner, reply = self._jobs.get(job_id, (None, b""))
        if owner != client:
            raise JobError(f"no job {job_id[:32]!r} for this device.", 404)
        return reply
