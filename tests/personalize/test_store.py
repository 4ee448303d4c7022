"""The user store: AES-GCM records, authenticated, atomic under SIGKILL; the key file's rules."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from personalize import (
    FileKeyStore,
    MemoryKeyStore,
    RecordStore,
    StoreError,
    UnknownUserError,
    UserRecord,
    key_dir,
)

WRITER = Path(__file__).with_name("store_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _record(user: str = "alice", value: float = 1.0) -> UserRecord:
    weights = {"head__kernel": np.full((16, 4), value, np.float32)}
    return UserRecord(user, 0.5 + value, "head", weights, {"samples": 5})


def test_round_trip_and_nothing_in_clear(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = _record(value=0.25)
    path = store.save(rec)
    back = store.load("alice")
    assert back.threshold == rec.threshold and back.scope == "head" and back.meta == rec.meta
    np.testing.assert_array_equal(back.weights["head__kernel"], rec.weights["head__kernel"])
    raw = path.read_bytes()
    assert rec.weights["head__kernel"].tobytes()[:16] not in raw and b"samples" not in raw
    assert store.users() == ["alice"]


def test_the_key_is_outside_the_store_and_names_are_hashed(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "store", keys=tmp_path / "keys")
    path = store.save(_record("alice"))
    inside = [p.name for p in (tmp_path / "store").rglob("*")]
    assert sorted(inside) == sorted(["keycheck", "users", path.name])
    assert (
        "alice" not in path.name
        and base64.urlsafe_b64encode(b"alice")[:5].decode() not in path.name
    )
    assert len(path.stem) == 32 and all(c in "0123456789abcdef" for c in path.stem)
    key = tmp_path / "keys" / f"store-{store.store_id}.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    # the same name hashes differently in another store (another key)
    assert RecordStore(tmp_path / "s2", keys=tmp_path / "keys").path("alice").name != path.name
    # a copy of the store's folder opens nothing without the key folder (and mints no key)
    shutil.copytree(tmp_path / "store", tmp_path / "copy")
    with pytest.raises(StoreError, match="missing, so it cannot open its store"):
        RecordStore(tmp_path / "copy", keys=tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


def test_the_default_key_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POCKETFIT_KEYS", str(tmp_path / "k"))
    assert key_dir() == tmp_path / "k"
    monkeypatch.delenv("POCKETFIT_KEYS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert key_dir() == tmp_path / "cfg" / "pocketfit" / "keys"
    store = RecordStore(tmp_path / "store")
    assert (tmp_path / "cfg/pocketfit/keys" / f"store-{store.store_id}.key").is_file()


def test_names_round_trip_and_are_checked(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    names = ["bob", "Ã©lise / 2", "a" * 100]
    for n in names:
        store.save(_record(n))
    assert store.users() == sorted(names)
    for bad in ["", "   ", "a" * 101, "tab\there", 7]:
        with pytest.raises(ValueError, match="user name"):
            store.save(_record(bad))  # type: ignore[arg-type]


def test_wrong_key_is_refused(tmp_path: Path) -> None:
    RecordStore(tmp_path).save(_record())
    other = FileKeyStore(tmp_path / "other.key")
    with pytest.raises(StoreError, match="does not open this store"):
        RecordStore(tmp_path, other)


def test_a_platform_keystore_plugs_in_and_a_record_needs_its_key(tmp_path: Path) -> None:
    keystore = MemoryKeyStore(b"k" * 32)
    RecordStore(tmp_path, keystore).save(_record())
    assert RecordStore(tmp_path, keystore).load("alice").threshold == 1.5
    # A record moved into another key's store is caught by the record's own authentication.
    path = RecordStore(tmp_path, keystore).path("alice")
    other = RecordStore(tmp_path / "other", MemoryKeyStore(b"x" * 32))
    path.rename(other.path("alice"))  # where the other key looks for alice
    with pytest.raises(StoreError, match="fails authentication"):
        other.load("alice")
    with pytest.raises(StoreError, match="32"):
        RecordStore(tmp_path / "s2", MemoryKeyStore(b"short"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: _flip(p, -5), "fails authentication"),  # the tag
        (lambda p: _flip(p, 40), "fails authentication"),  # the ciphertext
        (lambda p: _flip(p, 20), "fails authentication"),  # the nonce
        (lambda p: _flip(p, 9), "fails authentication"),  # the version
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "fails authentication"),
        (lambda p: p.write_bytes(p.read_bytes()[:20]), "not a pocketfit user record"),
        (lambda p: p.write_bytes(b""), "not a pocketfit user record"),
    ],
)
def test_tampered_records_are_refused(tmp_path: Path, mutate, message: str) -> None:
    store = RecordStore(tmp_path)
    path = store.save(_record())
    store.load("alice")  # the store now remembers the authentic bytes
    mutate(path)
    with pytest.raises(StoreError, match=message):
        store.load("alice")


def test_the_same_bytes_are_decrypted_once_and_loads_are_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import personalize.store as store_module

    opened = [0]
    real = store_module.open_sealed

    def counting(*args, **kwargs):
        opened[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "open_sealed", counting)
    store = RecordStore(tmp_path)
    store.save(_record(value=0.25))
    first = store.load("alice")
    first.weights["head__kernel"][:] = 9.0  # a caller's changes stay in its copy
    first.meta["samples"] = 0
    for _ in range(3):
        back = store.load("alice")
        np.testing.assert_array_equal(back.weights["head__kernel"], np.float32(0.25))
        assert back.meta == {"samples": 5}
    assert store.users() == ["alice"]
    assert opened[0] == 1
    store.save(_record(value=0.5))  # other bytes: authenticated and decoded again
    assert store.load("alice").threshold == 1.0
    assert opened[0] == 2


def test_a_record_renamed_to_another_user_is_refused(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.save(_record("alice"))
    store.path("alice").rename(store.path("mallory"))
    with pytest.raises(StoreError, match="fails authentication"):
        store.load("mallory")


def test_unsafe_or_corrupt_key_files_are_refused(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "s", keys=tmp_path / "keys")
    store.save(_record())
    key = tmp_path / "keys" / f"store-{store.store_id}.key"
    key.chmod(0o644)
    with pytest.raises(StoreError, match="0644 lets other users read"):
        RecordStore(tmp_path / "s", keys=tmp_path / "keys")
    key.chmod(0o600)
    counters = key.with_name(key.name + ".counters")
    counters.chmod(0o664)
    with pytest.raises(StoreError, match=r"counter file .* 0664"):
        RecordStore(tmp_path / "s", keys=tmp_path / "keys").load("alice")
    counters.chmod(0o600)
    key.write_bytes(b"short")
    with pytest.raises(StoreError, match="5 bytes, expected 32"):
        RecordStore(tmp_path / "s", keys=tmp_path / "keys")


def test_remove_wipe_and_unknown_users(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    for n in ("a", "b", "c"):
        store.save(_record(n))
    store.remove("b")
    assert store.users() == ["a", "c"]
    with pytest.raises(UnknownUserError, match="no enrolled user 'b'"):
        store.load("b")
    with pytest.raises(UnknownUserError):
        store.remove("b")
    assert store.wipe() == 2 and store.users() == []
    with pytest.raises(StoreError, match="no user store"):
        RecordStore(tmp_path / "missing", create=False)


def test_sigkill_while_saving_never_loses_the_record(tmp_path: Path) -> None:
    """Kill a writer at random moments of its save loop, 20 times: the record always reads back
    whole (threshold i and every weight i), never older than the last save it reported."""
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    last = 0
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # one full save done
        assert first.strip(), "writer died before saving"
        time.sleep(float(rng.uniform(0.0, 0.03)))
        proc.send_signal(signal.SIGKILL)
        reported = [int(x) for x in [first, *proc.stdout.read().split()] if str(x).strip()]
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        rec = RecordStore(tmp_path).load("alice")
        i = int(rec.threshold)
        assert rec.meta["i"] == i and i >= max(reported) >= 1
        np.testing.assert_array_equal(rec.weights["w"], np.full((256, 1024), i, np.float32))
        assert i >= last
        last = i
    leftovers = list((tmp_path / "users").glob(".*.tmp"))
    assert len(leftovers) <= 20  # a kill inside a write leaves a temp file; never the record


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_store_folders_are_owner_only_even_when_they_existed(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        (tmp_path / "s" / "users").mkdir(parents=True, mode=0o755)
        store = RecordStore(tmp_path / "s")
        store.save(_record())
    finally:
        os.umask(old)
    for folder in (tmp_path / "s", tmp_path / "s" / "users"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert store.path("alice").stat().st_mode & 0o777 == 0o600
