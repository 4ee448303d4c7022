"""Opening a store: reading never writes, a key is only minted with a new store, the key folder
stays outside the store, and records that do not read are named rather than dropped."""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from personalize import RecordStore, StoreError, UserRecord
from personalize.store import encode_record


def _record(user: str, value: float = 1.0) -> UserRecord:
    return UserRecord(user, value, "head", {"w": np.full((4, 3), value, np.float32)}, {})


def _store(tmp_path: Path, **kwargs) -> RecordStore:
    return RecordStore(tmp_path / "store", keys=tmp_path / "keys", **kwargs)


def _snapshot(*folders: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under ``folders``: (mode, mtime, contents): any write changes one."""
    out = {}
    for folder in folders:
        for p in [folder, *sorted(folder.rglob("*"))]:
            st = p.stat()
            out[str(p)] = (st.st_mode, st.st_mtime_ns, p.read_bytes() if p.is_file() else b"")
    return out


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _read_only_media(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, every ``os`` call that would write fails as on read-only media (EROFS)."""
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def refusing(name: str):
        real = getattr(os, name)

        def call(*args, **kwargs):
            if name != "open" or args[1] & writes:
                raise OSError(errno.EROFS, f"Read-only file system (simulated {name})")
            return real(*args, **kwargs)

        return call

    for name in ("mkdir", "chmod", "unlink", "rename", "replace", "link", "rmdir", "open"):
        monkeypatch.setattr(os, name, refusing(name))


def test_records_without_a_keycheck_are_refused_and_nothing_changes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.save(_record("alice"))
    (tmp_path / "store" / "keycheck").unlink()
    before = _snapshot(tmp_path)
    for read_only in (True, False):
        with pytest.raises(StoreError, match=r"1 user record.* but no keycheck file"):
            _store(tmp_path, read_only=read_only)
    assert _snapshot(tmp_path) == before  # no new key, no new keycheck


def test_a_wrong_key_folder_gets_no_key(tmp_path: Path) -> None:
    _store(tmp_path).save(_record("alice"))
    (tmp_path / "other").mkdir()
    for read_only in (True, False):
        with pytest.raises(StoreError, match="missing, so it cannot open its store"):
            RecordStore(tmp_path / "store", keys=tmp_path / "other", read_only=read_only)
    assert not list((tmp_path / "other").iterdir())


def test_reading_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On (simulated) read-only media a store opens, lists and loads; changes are refused."""
    store = _store(tmp_path)
    path = store.save(_record("alice"))
    store.save(_record("bob"))
    stale = path.with_name(".old.tmp")  # a killed writer's temp file, which a writer removes
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))
    before = _snapshot(tmp_path)
    _read_only_media(monkeypatch)
    ro = _store(tmp_path, read_only=True)
    assert ro.users() == ["alice", "bob"] and ro.load("bob").threshold == 1.0
    for change in (lambda: ro.save(_record("carol")), lambda: ro.remove("alice"), ro.wipe):
        with pytest.raises(StoreError, match="opened read-only; nothing was changed"):
            change()
    with pytest.raises(StoreError, match="no user store here"):
        RecordStore(tmp_path / "nowhere", keys=tmp_path / "nokeys", read_only=True)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "nokeys").exists()


def test_a_key_folder_inside_the_store_is_refused(tmp_path: Path) -> None:
    for keys in (tmp_path / "store" / "keys", tmp_path / "store", tmp_path / "store" / "users"):
        with pytest.raises(StoreError, match=r"key folder .* is inside the store"):
            RecordStore(tmp_path / "store", keys=keys)
    assert not (tmp_path / "store").exists()


def test_records_that_do_not_read_are_named_not_dropped(tmp_path: Path) -> None:
    """A tampered record and a rolled-back one are refused alike: listed as unreadable, with
    the reason, while the others list as users; loading either is an error."""
    store = _store(tmp_path)
    tampered = store.save(_record("alice"))
    rolled = store.save(_record("bob", 1.0))
    old = rolled.read_bytes()
    store.save(_record("bob", 2.0))
    store.save(_record("carol"))
    _flip(tampered, 40)
    rolled.write_bytes(old)  # an authentic older record put back
    fresh = _store(tmp_path)
    listing = fresh.listing()
    assert listing.users == ["carol"] and fresh.users() == ["carol"]
    assert len(listing.unreadable) == 2
    assert any(str(tampered) in r and "fails authentication" in r for r in listing.unreadable)
    assert any(str(rolled) in r and "rollback" in r for r in listing.unreadable)
    for user, reason in (("alice", "fails authentication"), ("bob", "rollback")):
        with pytest.raises(StoreError, match=reason):
            fresh.load(user)
    shutil.rmtree(tmp_path / "store" / "users")
    (tmp_path / "store" / "users").mkdir()
    assert fresh.listing() == ([], [])


def test_the_composed_and_decomposed_spellings_are_one_user(tmp_path: Path) -> None:
    composed, decomposed = "\u00e9lise", "e\u0301lise"
    store = _store(tmp_path)
    path = store.save(_record(decomposed, 1.0))
    assert store.users() == [composed] and store.path(decomposed) == store.path(composed) == path
    assert store.load(decomposed).user == store.load(composed).user == composed
    store.save(_record(composed, 2.0))  # the same user enrolled again
    assert store.users() == [composed] and store.load(decomposed).threshold == 2.0


def test_a_record_written_before_names_were_normalised_still_loads(tmp_path: Path) -> None:
    """An older store hashed the spelling it was given: its NFD record is found by either
    spelling, and enrolling the user again replaces it (no second record)."""
    composed, decomposed = "\u00e9lise", "e\u0301lise"
    store = _store(tmp_path)
    stem = hmac.new(store._names, decomposed.encode(), hashlib.sha256).hexdigest()[:32]
    older = store.users_dir / f"{stem}.rec"
    older.write_bytes(store.seal(stem, 1, encode_record(_record(decomposed, 1.0))))
    assert older != store.path(composed)
    assert store.listing() == ([decomposed], [])
    for spelling in (composed, decomposed):
        assert store.has(spelling) and store.load(spelling).threshold == 1.0
    store.save(_record(composed, 2.0))
    assert not older.exists() and store.listing() == ([composed], [])
    older.write_bytes(store.seal(stem, 1, encode_record(_record(decomposed, 1.0))))
    users, unreadable = store.listing()  # put back: refused, its deletion advanced its counter
    assert users == [composed] and len(unreadable) == 1 and "rollback" in unreadable[0]
    assert store.load(decomposed).threshold == 2.0
