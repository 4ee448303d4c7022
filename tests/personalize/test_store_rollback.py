"""Rollback protection (records and artifacts) and the migration of format-1 stores."""

from __future__ import annotations

import base64
import secrets
import shutil
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from personalize import (
    ArtifactError,
    RecordStore,
    StoreError,
    UnknownUserError,
    UserRecord,
    migrate_store,
)
from personalize.cli import main as cli_main
from personalize.store import encode_record


def _record(user: str = "alice", value: float = 1.0) -> UserRecord:
    return UserRecord(user, value, "head", {"w": np.full((4, 3), value, np.float32)}, {})


def _store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "store", keys=tmp_path / "keys")


def test_an_older_authentic_record_put_back_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = store.save(_record(value=1.0))
    backup = path.read_bytes()
    store.save(_record(value=2.0))
    assert store.load("alice").threshold == 2.0
    path.write_bytes(backup)
    with pytest.raises(StoreError, match="version 1, but this store has seen version 2"):
        _store(tmp_path).load("alice")
    store.save(_record(value=3.0))  # enrolling again is the way back
    assert _store(tmp_path).load("alice").threshold == 3.0


def test_an_older_record_put_back_is_refused_by_a_store_that_read_it(tmp_path: Path) -> None:
    # The reader remembers the bytes of version 1 it decoded; the counter is read at every load.
    reader, writer = _store(tmp_path), _store(tmp_path)
    path = writer.save(_record(value=1.0))
    backup = path.read_bytes()
    assert reader.load("alice").threshold == 1.0
    writer.save(_record(value=2.0))  # e.g. another process enrolls alice again
    path.write_bytes(backup)
    with pytest.raises(StoreError, match="version 1, but this store has seen version 2"):
        reader.load("alice")


def test_a_removed_users_record_put_back_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    backup = store.save(_record()).read_bytes()
    store.remove("alice")
    store.path("alice").write_bytes(backup)
    with pytest.raises(StoreError, match="rollback"):
        store.load("alice")
    store.wipe()
    with pytest.raises(UnknownUserError):
        store.load("alice")


def test_a_record_newer_than_its_counter_is_a_killed_save_and_advances_it(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    store.save(_record(value=1.0))
    file_id = store.file_id("alice")
    # a save killed after its rename, before the counter moved: version 2 on disk, counter 1
    store.path("alice").write_bytes(store.seal(file_id, 2, encode_record(_record(value=2.0))))
    assert store.keystore.counter(f"record:{file_id}") == 1
    assert store.load("alice").threshold == 2.0
    assert store.keystore.counter(f"record:{file_id}") == 2


def test_the_version_is_authenticated(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = store.save(_record())
    data = bytearray(path.read_bytes())
    data[8] = 9  # claim version 9
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="fails authentication"):
        store.load("alice")


def test_an_older_signed_artifact_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    new = {"source": {"name": "face"}, "created_utc": "2026-12-01T10:00:00+00:00"}
    old = {"source": {"name": "face"}, "created_utc": "2026-11-01T10:00:00+00:00"}
    store.admit_artifact(new)
    store.admit_artifact(new)  # the same one again
    store.admit_artifact({**old, "source": {"name": "fingerprint"}})  # another artifact
    with pytest.raises(ArtifactError, match="older artifact put back"):
        _store(tmp_path).admit_artifact(old)
    with pytest.raises(ArtifactError, match="no creation time"):
        store.admit_artifact({"source": {"name": "face"}})


def _format_1_store(directory: Path, records: list[UserRecord]) -> bytes:
    """A store as pocketfit wrote it before format 2 (key beside it, base64 names)."""
    key = secrets.token_bytes(32)
    aead = AESGCM(key)
    (directory / "users").mkdir(parents=True)
    (directory / "store.key").write_bytes(key)
    (directory / "store.key").chmod(0o600)
    nonce = secrets.token_bytes(12)
    check = b"PFKEYC1\n" + nonce + aead.encrypt(nonce, b"pocketfit store key check", b"PFKEYC1\n")
    (directory / "keycheck").write_bytes(check)
    for record in records:
        name = base64.urlsafe_b64encode(record.user.encode()).decode().rstrip("=") + ".rec"
        nonce = secrets.token_bytes(12)
        aad = b"PFUSER1\n" + b"user:" + record.user.encode()
        blob = b"PFUSER1\n" + nonce + aead.encrypt(nonce, encode_record(record), aad)
        (directory / "users" / name).write_bytes(blob)
    return key


def test_a_format_1_store_is_refused_then_migrated(tmp_path: Path, capsys) -> None:
    store_dir = tmp_path / "store"
    _format_1_store(store_dir, [_record("alice", 1.0), _record("bob", 2.0)])
    with pytest.raises(StoreError, match=r"format 1.*python -m personalize migrate --store"):
        _store(tmp_path)
    args = ["migrate", "--store", str(store_dir), "--keys", str(tmp_path / "keys")]
    assert cli_main(args) == 0
    assert "migrated 2 record(s)" in capsys.readouterr().out
    store = _store(tmp_path)
    assert store.users() == ["alice", "bob"] and store.load("bob").threshold == 2.0
    inside = sorted(p.name for p in store_dir.rglob("*"))
    assert "store.key" not in inside and not any("YWxpY2U" in n for n in inside)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in store_dir.rglob("*"))
    assert migrate_store(store_dir, keys=tmp_path / "keys") == 0  # a second run: nothing to do
    assert sorted((p.name, p.stat().st_mtime_ns) for p in store_dir.rglob("*")) == before


def test_an_interrupted_migration_is_finished_by_running_it_again(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    key = _format_1_store(store_dir, [_record("alice", 1.0)])
    old_files = {p.name: p.read_bytes() for p in (store_dir / "users").iterdir()}
    migrate_store(store_dir, keys=tmp_path / "keys")
    # killed after the switch: the old key and records are still there
    (store_dir / "store.key").write_bytes(key)
    (store_dir / "store.key").chmod(0o600)
    for name, data in old_files.items():
        (store_dir / "users" / name).write_bytes(data)
    with pytest.raises(StoreError, match="migration to format 2 was interrupted"):
        _store(tmp_path)
    assert migrate_store(store_dir, keys=tmp_path / "keys") == 0
    assert _store(tmp_path).users() == ["alice"]


def test_a_migration_killed_before_the_switch_starts_over(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    _format_1_store(store_dir, [_record("alice", 1.0)])
    backup = tmp_path / "backup"
    shutil.copytree(store_dir, backup)
    migrate_store(store_dir, keys=tmp_path / "k1")
    new_records = {p.name: p.read_bytes() for p in (store_dir / "users").iterdir()}
    # as if killed before the switch: format-1 key check and key back, a format-2 record beside
    shutil.rmtree(store_dir)
    shutil.copytree(backup, store_dir)
    for name, data in new_records.items():
        (store_dir / "users" / name).write_bytes(data)
    assert migrate_store(store_dir, keys=tmp_path / "keys") == 1
    assert _store(tmp_path).load("alice").threshold == 1.0
    assert len(list((store_dir / "users").iterdir())) == 1
