"""The enrolled users: one AES-GCM-encrypted record per user, written atomically.

Layout of a store directory::

    keycheck          a known plaintext under the store key: tells "wrong key" from "tampered"
    users/<name>.rec  one record per user; <name> is the user name in URL-safe base64

A record file is ``MAGIC | 12-byte nonce | AES-256-GCM(ciphertext + tag)``; the associated data
is the magic and the user name, so a record renamed to another user fails authentication. The
plaintext is a JSON header (threshold, scope, metadata) and an ``.npz`` of the user's trained
weights (head, and the last block's when a wider scope trained it). No capture image is stored,
but a record *is a biometric template*: the user's head column starts as the mean of their
embeddings and stays close to it, so it can be matched against new captures of the same face or
finger, and must be protected like the biometric data it was derived from (GDPR art. 9). The
store's folders are mode 0700 and its records and key 0600.

Writes go to a temp file in the same directory, are fsynced, renamed over the old record and
the directory fsynced, so a killed process leaves either the old or the new record, never a
mix. Stale temp files of killed writers are removed when the store is opened.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import secrets
import struct
import time
import zipfile
from pathlib import Path
from tokenize import TokenError
from typing import Any, NamedTuple

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devices.files import atomic_write, fsync_dir
from personalize.errors import StoreError, UnknownUserError
from personalize.keystore import SECRET_MODE, FileKeyStore, KeyStore

MAGIC = b"PFUSER1\n"
CHECK_MAGIC = b"PFKEYC1\n"
CHECK_TEXT = b"pocketfit store key check"
NONCE = 12
MAX_NAME = 100
SUFFIX = ".rec"
STALE_TMP_S = 600.0
STORE_MODE = 0o700  # the store's folders: only the owner lists or enters them


class UserRecord(NamedTuple):
    """What the device keeps about one user: a biometric template (see the module docstring).

    Attributes:
      user: the user name.
      threshold: accept when the score is at least this.
      scope: the training scope the weights come from (``"none"`` for imprinting only).
      weights: ``{artifact tensor name: array}`` of the variables enrollment changed.
      meta: everything else worth keeping (target FAR, samples, artifact id, times).
    """

    user: str
    threshold: float
    scope: str
    weights: dict[str, np.ndarray]
    meta: dict[str, Any]


def check_name(user: Any) -> str:
    """A valid user name: a non-empty string of printable characters, at most 100."""
    if not isinstance(user, str) or not user.strip():
        raise ValueError(f"user name must be a non-empty string, got {user!r}.")
    if len(user) > MAX_NAME or not user.isprintable():
        raise ValueError(f"user name {user!r}: at most {MAX_NAME} printable characters.")
    return user


def _file_name(user: str) -> str:
    return base64.urlsafe_b64encode(user.encode()).decode().rstrip("=") + SUFFIX


def _user_of(file: Path) -> str | None:
    stem = file.name[: -len(SUFFIX)]
    try:
        return base64.urlsafe_b64decode(stem + "=" * (-len(stem) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _aad(user: str) -> bytes:
    return MAGIC + b"user:" + user.encode()


def encode_record(record: UserRecord) -> bytes:
    """The plaintext of a record: 4-byte header length, JSON header, npz of the weights."""
    header = {
        "user": record.user,
        "threshold": float(record.threshold),
        "scope": record.scope,
        "meta": record.meta,
    }
    text = json.dumps(header, sort_keys=True).encode()
    buffer = io.BytesIO()
    save: Any = np.savez  # the stubs reserve keyword names for options
    save(buffer, **{k: np.asarray(v, np.float32) for k, v in record.weights.items()})
    return struct.pack("<I", len(text)) + text + buffer.getvalue()


# What reading a malformed plaintext raises: struct, JSON, zip and the .npy header reader.
_MALFORMED = (
    struct.error,
    ValueError,
    KeyError,
    TypeError,
    EOFError,
    OSError,
    SyntaxError,
    TokenError,
    RecursionError,
    zipfile.BadZipFile,
    NotImplementedError,  # zipfile: unsupported versions, flags
    RuntimeError,  # zipfile: "encrypted, password required"
)


def decode_record(plain: bytes) -> UserRecord:
    """The record of a plaintext :func:`encode_record` wrote.

    Raises:
      StoreError: the plaintext is not a record (an authentic file can still hold one if its
        writer was faulty or the store key leaked).
    """
    try:
        (size,) = struct.unpack("<I", plain[:4])
        header = json.loads(plain[4 : 4 + size])
        with np.load(io.BytesIO(plain[4 + size :]), allow_pickle=False) as npz:
            weights = {k: np.asarray(npz[k], np.float32) for k in npz.files}
        record = UserRecord(
            header["user"], float(header["threshold"]), header["scope"], weights, header["meta"]
        )
    except _MALFORMED as err:
        raise StoreError(f"not a user record ({type(err).__name__}: {err})"[:300]) from None
    ok = isinstance(record.user, str) and isinstance(record.scope, str)
    if not (ok and isinstance(record.meta, dict) and np.isfinite(record.threshold)):
        raise StoreError("not a user record (header fields of the wrong type).")
    return record


class RecordStore:
    """Encrypted per-user records in a directory (see the module docstring).

    Args:
      directory: the store directory (created if missing).
      keystore: supplies the key; default a :class:`FileKeyStore` at ``<directory>/store.key``.
      create: create the store if it does not exist (otherwise a missing store is an error).

    Raises:
      StoreError: the key is refused or does not open this store, or no store (``create=False``).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        keystore: KeyStore | None = None,
        *,
        create: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.users_dir = self.directory / "users"
        if not create and not self.users_dir.is_dir():
            raise StoreError(f"{self.directory}: no user store here.")
        for folder in (self.directory, self.users_dir):
            folder.mkdir(mode=STORE_MODE, parents=True, exist_ok=True)
            folder.chmod(STORE_MODE)  # the umask may widen nothing, but older stores were 0755
        self.keystore = keystore or FileKeyStore(self.directory / "store.key")
        key = self.keystore.key()
        if len(key) != 32:
            raise StoreError(f"the keystore returned a {len(key)}-byte key; AES-256 needs 32.")
        self._aead = AESGCM(key)
        self._check_key()
        self._remove_stale()

    def _check_key(self) -> None:
        path = self.directory / "keycheck"
        if not path.exists():
            nonce = secrets.token_bytes(NONCE)
            check = CHECK_MAGIC + nonce + self._aead.encrypt(nonce, CHECK_TEXT, CHECK_MAGIC)
            atomic_write(path, check, mode=SECRET_MODE)
            return
        data = path.read_bytes()
        try:
            ok = (
                data.startswith(CHECK_MAGIC)
                and self._aead.decrypt(
                    data[len(CHECK_MAGIC) : len(CHECK_MAGIC) + NONCE],
                    data[len(CHECK_MAGIC) + NONCE :],
                    CHECK_MAGIC,
                )
                == CHECK_TEXT
            )
        except InvalidTag:
            ok = False
        if not ok:
            raise StoreError(
                f"{self.directory}: the key from {type(self.keystore).__name__} does not open "
                "this store (wrong key, or the store's keycheck file was modified)."
            )

    def _remove_stale(self) -> None:
        now = time.time()
        for tmp in self.users_dir.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    tmp.unlink()
            except OSError:
                pass

    def path(self, user: str) -> Path:
        return self.users_dir / _file_name(check_name(user))

    def save(self, record: UserRecord) -> Path:
        """Encrypts and atomically writes (or replaces) ``record.user``'s record."""
        path = self.path(record.user)
        nonce = secrets.token_bytes(NONCE)
        blob = self._aead.encrypt(nonce, encode_record(record), _aad(record.user))
        atomic_write(path, MAGIC + nonce + blob, mode=SECRET_MODE)
        return path

    def load(self, user: str) -> UserRecord:
        """Reads and authenticates ``user``'s record.

        Raises:
          UnknownUserError: no record.
          StoreError: the record was modified, truncated, renamed or written with another key.
        """
        path = self.path(user)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UnknownUserError(f"no enrolled user {user!r} in {self.directory}.") from None
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + NONCE + 16:
            raise StoreError(f"{path}: not a pocketfit user record (truncated or foreign file).")
        nonce = data[len(MAGIC) : len(MAGIC) + NONCE]
        try:
            plain = self._aead.decrypt(nonce, data[len(MAGIC) + NONCE :], _aad(user))
        except InvalidTag:
            raise StoreError(
                f"{path}: record of {user!r} fails authentication (modified, truncated or "
                "renamed from another user's record); refusing it."
            ) from None
        try:
            record = decode_record(plain)
        except StoreError as err:
            raise StoreError(f"{path}: {err}; refusing it.") from None
        if record.user != user:  # the associated data binds the name; a faulty writer may not
            raise StoreError(f"{path}: record names {record.user!r}, not {user!r}.")
        return record

    def users(self) -> list[str]:
        """Names of the users with a record, sorted."""
        names = (
            _user_of(p) for p in self.users_dir.glob(f"*{SUFFIX}") if not p.name.startswith(".")
        )
        return sorted(n for n in names if n is not None)

    def remove(self, user: str) -> None:
        """Deletes ``user``'s record.

        Raises:
          UnknownUserError: no record.
        """
        path = self.path(user)
        try:
            path.unlink()
        except FileNotFoundError:
            raise UnknownUserError(f"no enrolled user {user!r} in {self.directory}.") from None
        fsync_dir(self.users_dir)

    def wipe(self) -> int:
        """Deletes every record (and temp file); returns how many records were deleted."""
        count = 0
        for p in self.users_dir.iterdir():
            if p.name.endswith((SUFFIX, ".tmp")):
                count += p.name.endswith(SUFFIX) and not p.name.startswith(".")
                p.unlink(missing_ok=True)
        fsync_dir(self.users_dir)
        return count
