"""Migrates a user store of format 1 (its key beside the records, user names in the file names)
to format 2 (the key in the per-user key folder, keyed-hash file names, rollback counters), and
the records of a format-2 store from record format 2 to 3 (room for the owner's templates).

Command:
  python -m personalize migrate --store DIR [--keys KEYDIR]

Steps, each safe to kill: every format-1 record is read and authenticated with the old key and
written again under a fresh key (new file names); the new key check then replaces the old one
(the switch: before it the store is still format 1, and a second run starts over); last the old
records and the old key are deleted (a store whose switch is done but whose old key is still
there is refused until the migration is run again, which finishes it).

Records of format 2 are re-sealed one by one as format 3 (same key, same file, one version newer;
no templates: they were never stored, the user gains them by enrolling again). Each rewrite is
atomic, so a killed run leaves some of each; the store is refused until a second run finishes.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devices.files import atomic_write, fsync_dir
from personalize.errors import StoreError
from personalize.keystore import SECRET_MODE, FileKeyStore, key_dir
from personalize.store import (
    CHECK_MAGIC,
    FORMAT2_MAGIC,
    ID_BYTES,
    NONCE,
    OLD_CHECK_MAGIC,
    OLD_KEY,
    OLD_MAGIC,
    SUFFIX,
    RecordStore,
    UserRecord,
    decode_record,
    encode_record,
    file_id,
    key_check,
    open_sealed,
    seal,
    subkey,
)

OLD_CHECK_TEXT = b"pocketfit store key check"


def _old_user(path: Path) -> str | None:
    stem = path.name[: -len(SUFFIX)]
    try:
        return base64.urlsafe_b64decode(stem + "=" * (-len(stem) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _old_records(directory: Path, key: bytes) -> list[tuple[Path, UserRecord]]:
    """Every format-1 record, authenticated with the old key."""
    aead = AESGCM(key)
    out = []
    for path in sorted((directory / "users").glob(f"*{SUFFIX}")):
        data = path.read_bytes()
        user = _old_user(path)
        if not data.startswith(OLD_MAGIC) or user is None:
            continue  # a format-2 record of an interrupted run, rewritten below
        head = len(OLD_MAGIC)
        try:
            plain = aead.decrypt(
                data[head : head + NONCE],
                data[head + NONCE :],
                OLD_MAGIC + b"user:" + user.encode(),
            )
        except InvalidTag:
            raise StoreError(
                f"{path}: fails authentication with {OLD_KEY}; not migrated."
            ) from None
        out.append((path, decode_record(plain)))
    return out


def _check_old_key(directory: Path, key: bytes) -> None:
    data = (directory / "keycheck").read_bytes()
    head = len(OLD_CHECK_MAGIC)
    try:
        ok = AESGCM(key).decrypt(data[head : head + NONCE], data[head + NONCE :], OLD_CHECK_MAGIC)
    except InvalidTag:
        ok = b""
    if ok != OLD_CHECK_TEXT:
        raise StoreError(f"{directory}: {OLD_KEY} does not open this store; not migrated.")


def _finish(directory: Path) -> None:
    """Deletes the format-1 records and the old key (after the switch)."""
    for path in (directory / "users").glob(f"*{SUFFIX}"):
        with path.open("rb") as f:
            if f.read(len(OLD_MAGIC)) == OLD_MAGIC:
                path.unlink()
    fsync_dir(directory / "users")
    (directory / OLD_KEY).unlink(missing_ok=True)
    fsync_dir(directory)


def migrate_records(
    directory: str | os.PathLike[str], *, keys: str | os.PathLike[str] | None = None
) -> int:
    """Re-seals a format-2 store's records of format 2 as format 3; returns how many.

    Raises:
      StoreError: a record fails authentication or is older than its rollback counter (nothing
        more is changed then; the records already re-sealed stay valid).
    """
    store = RecordStore(directory, keys=keys, create=False, allow_format_2=True)
    paths = store.format_2_records()
    for path in paths:
        version, plain = open_sealed(store._aead, path, path.read_bytes(), FORMAT2_MAGIC)
        record = decode_record(plain)
        stem = path.name[: -len(SUFFIX)]
        if not store.is_file_of(record.user, stem):
            raise StoreError(f"{path}: record names {record.user!r}, another file; not migrated.")
        name = f"record:{stem}"
        newest = store.keystore.counter(name)
        if version < newest:
            raise StoreError(
                f"{path}: version {version} but this store has seen {newest} (restored from a "
                "backup); not migrated. Remove it and enroll the user again."
            )
        atomic_write(path, store.seal(stem, newest + 1, encode_record(record)), mode=SECRET_MODE)
        store.keystore.advance(name, newest + 1)
    return len(paths)


def migrate_store(
    directory: str | os.PathLike[str], *, keys: str | os.PathLike[str] | None = None
) -> int:
    """Migrates a format-1 store, or a format-2 store's format-2 records, in place; returns
    how many records were migrated (0: the store is already current, nothing changed).

    Args:
      directory: the store.
      keys: the key folder the new key goes to (default :func:`personalize.keystore.key_dir`).

    Raises:
      StoreError: no store of a known format here, or its key does not open it (nothing is
        changed then).
    """
    base = Path(directory)
    old_key_path = base / OLD_KEY
    check = base / "keycheck"
    if check.exists() and check.read_bytes().startswith(CHECK_MAGIC):
        if old_key_path.exists():
            _finish(base)  # a run killed after the switch
            return 0
        return migrate_records(base, keys=keys)  # 0: already current, as a second run finds it
    if not old_key_path.exists() or not check.exists():
        raise StoreError(f"{base}: no format-1 store here ({OLD_KEY} or keycheck missing).")
    old_key = FileKeyStore(old_key_path).key()  # its mode and size checked
    _check_old_key(base, old_key)
    records = _old_records(base, old_key)
    for path in (base / "users").glob(f"*{SUFFIX}"):  # format-2 leftovers of a killed run
        with path.open("rb") as f:
            if f.read(len(OLD_MAGIC)) != OLD_MAGIC:
                path.unlink()
    store_id = secrets.token_hex(ID_BYTES)
    folder = Path(keys).expanduser() if keys is not None else key_dir()
    keystore = FileKeyStore(folder / f"store-{store_id}.key")
    key = keystore.key()
    aead, names = AESGCM(subkey(key, b"records")), subkey(key, b"names")
    for _, record in records:
        stem = file_id(names, record.user)
        version = keystore.counter(f"record:{stem}") + 1
        data = seal(aead, stem, version, encode_record(record))
        atomic_write(base / "users" / (stem + SUFFIX), data, mode=SECRET_MODE)
        keystore.advance(f"record:{stem}", version)
    atomic_write(check, key_check(aead, store_id), mode=SECRET_MODE)  # the switch
    _finish(base)
    return len(records)
