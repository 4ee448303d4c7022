"""Crash injection targets of the device's writers (run by :func:`devices.crash.crash`).

``store_create``: the first enrollment into a new store (key, keycheck, record, counter);
``record_save``: a user's record replaced by a newer one (then its rollback counter advanced);
``record_remove``: a record deleted (then its counter advanced past it); ``artifact_install``:
an installed artifact folder replaced by a newer signed one (``devices.files.atomic_write_dir``,
what installing does on main). Each is read back with the device's own readers
(:class:`~personalize.store.RecordStore`, :func:`~personalize.artifact.load_artifact`); a state
counts as old only if the store still takes a new enrollment after it.

``continual_update``: a continual update (:func:`personalize.continual.commit_update`: the
user's record, then the encrypted buffer that follows it; a kill between the two is rolled
forward when the buffer is read); ``continual_buffer``: a capture added to the buffer (old: the
buffer without it, new: with it).

``install``: ``python -m personalize install``'s function (:data:`INSTALL_HOOK`) replacing an
installed artifact with the one rebuilt from the committed fingerprint download
(:data:`SEED_DOWNLOAD`, signed by the repository's key): old verifies with the fixture's key,
new with the repository's.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from devices.contract import BACKGROUND, MANIFEST, SIGNATURE, ArtifactError
from devices.crash import CrashTarget
from devices.files import atomic_write_dir
from devices.trust import key_id
from personalize.artifact import load_artifact
from personalize.continual import Buffer, BufferStore, commit_update, current
from personalize.errors import StoreError, UnknownUserError
from personalize.store import RecordStore, UserRecord

SEED_ARTIFACT = Path(__file__).resolve().parents[1] / "notebooks/results/artifacts/lenet300"
# "module:function" of the bundle installer, called as function(bundle, directory, trusted_key)
INSTALL_HOOK = "personalize.install:install"
SEED_DOWNLOAD = SEED_ARTIFACT.parent / "fingerprint.pfb"
SEED_DOWNLOAD_KEY = SEED_ARTIFACT.parent / "signing.pub"
USER = "alice"


def _record(version: int) -> UserRecord:
    rng = np.random.default_rng(version)
    weights = {"head__kernel": rng.standard_normal((64, 3)), "head__bias": rng.standard_normal(3)}
    return UserRecord(USER, 0.1 * version, "head", weights, {"version": version})


def _store(folder: Path, *, create: bool = True) -> RecordStore:
    return RecordStore(folder / "store", create=create, keys=folder / "keys")


def _which_record(store: RecordStore) -> str:
    """``"old"`` (version 1), ``"new"`` (version 2) or ``"none"`` (no record)."""
    try:
        record = store.load(USER)
    except UnknownUserError:
        return "none"
    version = record.meta.get("version")
    expected = _record(version) if version in (1, 2) else None
    if expected is None or any(
        not np.array_equal(record.weights[k], np.float32(v)) for k, v in expected.weights.items()
    ):
        return f"a record that is neither version 1 nor 2 ({version!r})"
    return "old" if version == 1 else "new"


def _still_enrolls(folder: Path) -> None:
    """The store after a kill takes a new enrollment (else the kill lost the store)."""
    store = _store(folder)
    store.save(_record(2))
    if _which_record(_store(folder)) != "new":
        raise StoreError("an enrollment after the kill did not read back.")


def _store_create_state(folder: Path) -> str:
    try:
        found = _which_record(_store(folder, create=False))
    except StoreError as err:
        if "no user store here" not in str(err):
            raise
        found = "none"
    if found == "none":
        _still_enrolls(folder)
        return "old"
    return found


def _record_state(folder: Path, *, none_is: str) -> str:
    found = _which_record(_store(folder, create=False))
    if found == "none":
        found = none_is
    if found == "old":
        _still_enrolls(folder)
    return found


def _buffer(updates: int, recent: int) -> Buffer:
    rng = np.random.default_rng(100 + recent)
    meta = {
        "record_version": 0,
        "updates": updates,
        "day": 7,
        "updates_today": updates,
        "pending": 0 if updates else recent,
        "scores": [0.5] * recent,
        "added": [float(i) for i in range(recent)],
    }
    anchors = {"embeddings": np.ones((3, 64), np.float32)}
    return Buffer(USER, anchors, {"embeddings": rng.standard_normal((recent, 64))}, meta)


def _continual_record(updates: int) -> UserRecord:
    record = _record(1 + updates)
    meta = {**record.meta, "continual": {"updates": updates, "day": 7}} if updates else record.meta
    return record._replace(meta=meta)


def _continual_prepare(folder: Path) -> None:
    store = _store(folder)
    store.save(_continual_record(0))
    buffer = _buffer(0, 2)
    meta = {
        **buffer.meta,
        "record_version": store.keystore.counter(f"record:{store.file_id(USER)}"),
    }
    BufferStore(store).save(buffer._replace(meta=meta))


def _continual_state(folder: Path, *, recent_new: int) -> str:
    store = _store(folder, create=False)
    record = store.load(USER)
    buffer = current(BufferStore(store), record)
    if buffer is None:
        return "lost: no buffer for the record"
    version, updates = record.meta.get("version"), buffer.meta["updates"]
    recent = len(buffer.meta["scores"])
    if version == 1 and updates == 0 and recent == 2:
        return "old"
    if (version, updates, recent) in ((2, 1, 2), (1, 0, recent_new)):
        return "new"
    return f"record {version}, buffer of {updates} update(s) and {recent} capture(s)"


def _continual_targets() -> dict[str, CrashTarget]:
    def update(folder: Path) -> None:
        store = _store(folder)
        commit_update(BufferStore(store), _continual_record(1), _buffer(1, 2))

    def add(folder: Path) -> None:
        store = _store(folder)
        buffers = BufferStore(store)
        buffer = current(buffers, store.load(USER))
        assert buffer is not None
        grown = _buffer(0, 3)
        buffers.save(
            grown._replace(meta={**grown.meta, "record_version": buffer.meta["record_version"]})
        )

    return {
        "continual_update": CrashTarget(
            _continual_prepare, update, lambda f: _continual_state(f, recent_new=2)
        ),
        "continual_buffer": CrashTarget(
            _continual_prepare, add, lambda f: _continual_state(f, recent_new=3)
        ),
    }


def artifact_versions(source: Path, private_key: Any) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Two versions of the artifact in ``source`` signed by ``private_key``: the second has
    another background array (and so another manifest), so a mix of the two fails its hashes."""
    files = {p.name: p.read_bytes() for p in source.iterdir() if p.is_file()}
    manifest = json.loads(files[MANIFEST])
    background = np.load(io.BytesIO(files[BACKGROUND]), allow_pickle=False)
    buffer = io.BytesIO()
    np.save(buffer, background[::-1].copy(), allow_pickle=False)
    versions = []
    for created, array_bytes in (
        ("2000-01-01", files[BACKGROUND]),
        ("2000-01-02", buffer.getvalue()),
    ):
        entry = {"bytes": len(array_bytes), "sha256": hashlib.sha256(array_bytes).hexdigest()}
        signed = {
            **manifest,
            "created_utc": created,
            "files": {**manifest["files"], BACKGROUND: entry},
        }
        text = (json.dumps(signed, indent=1, sort_keys=True) + "\n").encode()
        signature = key_id(private_key.public_key()) + private_key.sign(text)
        versions.append({**files, BACKGROUND: array_bytes, MANIFEST: text, SIGNATURE: signature})
    return versions[0], versions[1]


def artifact_state(directory: Path, public_key: Any) -> str:
    """``"old"`` or ``"new"``: which of :func:`artifact_versions` ``directory`` verifies as."""
    created = load_artifact(directory, public_key).manifest["created_utc"]
    return {"2000-01-01": "old", "2000-01-02": "new"}.get(created, f"created {created!r}")


def _install_hook() -> Any:
    module, _, function = INSTALL_HOOK.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError):
        return None


def install_available() -> bool:
    """Whether ``personalize install`` (:data:`INSTALL_HOOK`) exists in this checkout."""
    return _install_hook() is not None


def targets(workdir: Path) -> dict[str, CrashTarget]:
    """Every device-side writer, its fixtures built in ``workdir``."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    old, new = artifact_versions(
        Path(os.environ.get("POCKETFIT_FUZZ_ARTIFACT", SEED_ARTIFACT)), key
    )

    def install_old(folder: Path) -> None:
        atomic_write_dir(folder / "artifact", old, marker=MANIFEST)

    out = {
        "store_create": CrashTarget(
            lambda f: None, lambda f: _store(f).save(_record(2)), _store_create_state
        ),
        "record_save": CrashTarget(
            lambda f: _store(f).save(_record(1)),
            lambda f: _store(f).save(_record(2)),
            lambda f: _record_state(f, none_is="lost: no record"),
        ),
        "record_remove": CrashTarget(
            lambda f: _store(f).save(_record(1)),
            lambda f: _store(f).remove(USER),
            lambda f: _record_state(f, none_is="new"),
        ),
        "artifact_install": CrashTarget(
            install_old,
            lambda f: atomic_write_dir(f / "artifact", new, marker=MANIFEST),
            lambda f: artifact_state(f / "artifact", key.public_key()),
        ),
    }
    out.update(_continual_targets())
    install = _install_hook()
    if install is not None and SEED_DOWNLOAD.is_file():  # a signed download into the folder
        bundle = workdir / "new.pfb"
        shutil.copyfile(SEED_DOWNLOAD, bundle)
        repo_key = SEED_DOWNLOAD_KEY.read_bytes()

        def installed_state(f: Path) -> str:
            try:
                return artifact_state(f / "artifact", key.public_key())
            except ArtifactError:
                load_artifact(f / "artifact", repo_key)
                return "new"

        out["install"] = CrashTarget(
            install_old, lambda f: install(bundle, f / "artifact", repo_key), installed_state
        )
    return out
