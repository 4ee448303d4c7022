"""Fuzz targets of the device's parsers (run by :func:`devices.fuzz.fuzz`).

An artifact's manifest, signature and background arrays (the embeddings' ``.npy`` and the front
features' file of :mod:`devices.coded_features`, both as the XZ file and as the codebook and
codes inside it), its model (the LiteRT interpreter: native code, so the worker process counts a
segfault rather than dying with it), user records and continual buffers (the encrypted file, and
its plaintext encrypted under the right key so the decoder behind the authentication sees the
mutation) and capture image files. Manifest and arrays are re-signed with a key the target
trusts, so the mutations reach the parsers behind the signature check (as from a compromised or
buggy publisher); ``artifact_signature`` mutates the signature itself.

The seed artifact is ``$POCKETFIT_FUZZ_ARTIFACT`` (default: the committed
``notebooks/results/artifacts/lenet300``). Numpy, LiteRT, Pillow and ``cryptography`` only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from devices import coded_features, xz
from devices.contract import (
    BACKGROUND,
    BACKGROUND_FEATURES,
    MANIFEST,
    MODEL,
    SIGNATURE,
    ArtifactError,
)
from devices.fuzz import Target, image_file_runner, seed_images
from devices.trust import key_id
from personalize.artifact import load_artifact, open_model
from personalize.continual import Buffer, BufferStore, encode_buffer
from personalize.errors import PersonalizeError
from personalize.images import read_images
from personalize.keystore import MemoryKeyStore
from personalize.store import RecordStore, UserRecord, encode_record

SEED_ARTIFACT = Path(__file__).resolve().parents[1] / "notebooks/results/artifacts/lenet300"


def _sign(key: Any, data: bytes) -> bytes:
    return key_id(key.public_key()) + key.sign(data)


def _artifact_targets(workdir: Path) -> dict[str, Target]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    source = Path(os.environ.get("POCKETFIT_FUZZ_ARTIFACT", SEED_ARTIFACT))
    art = workdir / "artifact"
    shutil.copytree(source, art)
    key = ed25519.Ed25519PrivateKey.generate()
    manifest = json.loads((art / MANIFEST).read_bytes())
    public = key.public_key()

    def signed(text: bytes) -> None:
        (art / MANIFEST).write_bytes(text)
        (art / SIGNATURE).write_bytes(_sign(key, text))

    def with_manifest(data: bytes) -> Any:
        signed(data)
        return load_artifact(art, public)

    def with_file(name: str) -> Any:
        def run(data: bytes) -> Any:
            (art / name).write_bytes(data)
            entry = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            files = {**manifest["files"], name: entry}
            signed(json.dumps({**manifest, "files": files}).encode())
            artifact = load_artifact(art, public)
            # the features are decoded when a wider scope first asks for them, not at load
            return artifact.features() if name == BACKGROUND_FEATURES else artifact

        return run

    # Front features of the background's people on an int8 activation's grid (as export writes).
    rows = len(np.load(art / BACKGROUND))
    levels = np.random.default_rng(0).integers(0, 40, (rows, 2, 2, 8)) * np.float32(0.0234375)
    features = coded_features.encode(levels)
    # ... and what the XZ stream holds: its check rejects nearly every mutated byte, so this
    # target mutates the codebook and codes themselves and compresses them again
    body = xz.decompress(features, coded_features.MAX_INFLATED)
    with_features = with_file(BACKGROUND_FEATURES)

    original = (art / MANIFEST).read_bytes()
    good_signature = _sign(key, original)

    def with_signature(data: bytes) -> Any:
        (art / MANIFEST).write_bytes(original)
        (art / SIGNATURE).write_bytes(data)
        return load_artifact(art, public)

    refused = (ArtifactError,)
    return {
        "artifact_manifest": Target([original], with_manifest, refused),
        "artifact_background": Target(
            [(art / BACKGROUND).read_bytes()], with_file(BACKGROUND), refused
        ),
        "artifact_features": Target([features], with_features, refused),
        "artifact_features_body": Target(
            [body], lambda data: with_features(xz.compress(data)), refused
        ),
        "artifact_signature": Target([good_signature], with_signature, refused),
        "litert_model": Target([(art / MODEL).read_bytes()], open_model, refused),
    }


def _record_targets(workdir: Path) -> dict[str, Target]:
    key = bytes(range(32))
    store = RecordStore(workdir / "store", MemoryKeyStore(key))
    rng = np.random.default_rng(0)
    record = UserRecord(
        "alice",
        0.42,
        "last_block",
        {"head__kernel": rng.standard_normal((8, 4)), "last__dense__bias": rng.standard_normal(4)},
        {"target_far": 0.01, "samples": 5, "artifact": "abc"},
        rng.standard_normal((5, 8)).astype(np.float32),  # templates (record format 3)
    )
    path = store.save(record)

    def raw(data: bytes) -> Any:
        path.write_bytes(data)
        return store.load("alice")

    def plaintext(data: bytes) -> Any:
        path.write_bytes(store.seal(store.file_id("alice"), 1, data))
        return store.load("alice")

    buffers = BufferStore(store)
    meta = {
        "record_version": 1,
        "updates": 1,
        "day": 20000,
        "updates_today": 1,
        "pending": 0,
        "scores": [0.7, 0.8],
        "added": [1.0, 2.0],
    }
    anchors = {"embeddings": rng.standard_normal((3, 8)), "features": rng.standard_normal((3, 6))}
    recent = {"embeddings": rng.standard_normal((2, 8)), "features": rng.standard_normal((2, 6))}
    buffer = Buffer("alice", anchors, recent, meta)
    buffer_path = buffers.save(buffer)

    def buffer_raw(data: bytes) -> Any:
        buffer_path.write_bytes(data)
        return buffers.load("alice")

    def buffer_plaintext(data: bytes) -> Any:
        buffer_path.write_bytes(buffers.seal(store.file_id("alice"), 1, data))
        return buffers.load("alice")

    refused = (PersonalizeError,)
    return {
        "record_file": Target([path.read_bytes()], raw, refused),
        "record_plaintext": Target([encode_record(record)], plaintext, refused),
        "continual_file": Target([buffer_path.read_bytes()], buffer_raw, refused),
        "continual_plaintext": Target([encode_buffer(buffer)], buffer_plaintext, refused),
    }


def targets(workdir: Path) -> dict[str, Target]:
    """Every device-side target, built in ``workdir``."""
    images = Target(seed_images(), image_file_runner(workdir, read_images), (PersonalizeError,))
    return {**_artifact_targets(workdir), **_record_targets(workdir), "image_file": images}
