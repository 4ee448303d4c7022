"""Where the store's key and its rollback counters live: an interface, and a file implementation.

The key and the counters sit *outside* the store they protect: whoever can copy or restore the
store's folder (a backup, a second account, a cloud sync) must not get the key with it, nor be
able to turn the counters back. On a phone, :class:`KeyStore` is where the platform keystore
plugs in (Android Keystore, iOS Keychain/Secure Enclave): :meth:`KeyStore.key` returns the
32-byte key it guards, :meth:`KeyStore.counter` / :meth:`KeyStore.advance` keep monotonic
counters beside it (a replay-protected memory block, or a Keychain item). :class:`FileKeyStore`
keeps them in files only the owner may read (mode 0600) in a per-user key folder
(:func:`key_dir`), for development machines and tests.
"""

from __future__ import annotations

import abc
import json
import os
import secrets
import stat
from pathlib import Path

from devices.files import atomic_write
from personalize.errors import StoreError

KEY_BYTES = 32
SECRET_MODE = 0o600  # keys, counters and records: owner read/write only
KEY_DIR_MODE = 0o700
KEYS_ENV = "POCKETFIT_KEYS"


def key_dir() -> Path:
    """The per-user key folder: ``$POCKETFIT_KEYS``, else ``$XDG_CONFIG_HOME/pocketfit/keys``,
    else ``~/.config/pocketfit/keys``."""
    if os.environ.get(KEYS_ENV):
        return Path(os.environ[KEYS_ENV]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "pocketfit" / "keys"


class KeyStore(abc.ABC):
    """Supplies the store's AES-256 key and keeps its monotonic counters."""

    @abc.abstractmethod
    def key(self) -> bytes:
        """The 32-byte key, created on first use."""

    @abc.abstractmethod
    def counter(self, name: str) -> int:
        """Counter ``name``'s value (0 if it was never advanced)."""

    @abc.abstractmethod
    def advance(self, name: str, value: int) -> None:
        """Raises counter ``name`` to ``value`` (a lower value leaves it as it is)."""


class MemoryKeyStore(KeyStore):
    """A key and counters in memory (tests, fuzzing): nothing survives the process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = secrets.token_bytes(KEY_BYTES) if key is None else key
        self._counters: dict[str, int] = {}

    def key(self) -> bytes:
        return self._key

    def counter(self, name: str) -> int:
        return self._counters.get(name, 0)

    def advance(self, name: str, value: int) -> None:
        self._counters[name] = max(self.counter(name), int(value))


def _check_secret_file(path: Path, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise StoreError(f"{what} {path}: cannot stat ({err}).") from None
    if not stat.S_ISREG(mode):
        raise StoreError(f"{what} {path}: not a regular file.")
    if mode & 0o077:
        raise StoreError(
            f"{what} {path}: mode {stat.S_IMODE(mode):04o} lets other users read or change it; "
            f"refusing it (expected 0600: chmod 600 {path})."
        )


class FileKeyStore(KeyStore):
    """A random 32-byte key in a file of mode 0600, its counters in ``<key>.counters`` (JSON,
    0600) beside it.

    The key is created atomically (written to a temp file, fsynced, then hard-linked into place,
    which fails if another process created it first); the counters are rewritten atomically. A
    key or counter file readable or writable by group or others is refused, as is a key of the
    wrong size. With ``create=False`` (the store already exists, so its key must too) a missing
    key is refused instead of created: a new key would open none of the store's records.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        self.counters_path = self.path.with_name(self.path.name + ".counters")
        self.create = create

    def key(self) -> bytes:
        if not self.path.exists():
            if not self.create:
                raise StoreError(
                    f"key file {self.path}: missing, so it cannot open its store (another key "
                    "folder, or the key was lost); nothing was created."
                )
            self._create()
        _check_secret_file(self.path, "key file")
        data = self.path.read_bytes()
        if len(data) != KEY_BYTES:
            raise StoreError(
                f"key file {self.path}: {len(data)} bytes, expected {KEY_BYTES} (corrupt?)."
            )
        return data

    def _create(self) -> None:
        self.path.parent.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)
        # Linked into place, so a key another process created first wins (and is used).
        atomic_write(self.path, secrets.token_bytes(KEY_BYTES), mode=SECRET_MODE, exclusive=True)

    def _counters(self) -> dict[str, int]:
        if not self.counters_path.exists():
            return {}
        _check_secret_file(self.counters_path, "counter file")
        try:
            counters = json.loads(self.counters_path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise StoreError(f"counter file {self.counters_path}: not JSON ({err}).") from None
        if not isinstance(counters, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in counters.values()
        ):
            raise StoreError(f"counter file {self.counters_path}: not a map of integers.")
        return counters

    def counter(self, name: str) -> int:
        return self._counters().get(name, 0)

    def advance(self, name: str, value: int) -> None:
        counters = self._counters()
        if int(value) <= counters.get(name, 0):
            return
        counters[name] = int(value)
        text = json.dumps(counters, sort_keys=True).encode()
        atomic_write(self.counters_path, text, mode=SECRET_MODE)
