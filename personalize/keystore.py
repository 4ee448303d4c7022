"""Where the store's AES-256 key lives: a small interface, and a file implementation.

On a phone, :class:`KeyStore` is where the platform keystore plugs in (Android Keystore, iOS
Keychain/Secure Enclave): implement :meth:`KeyStore.key` to return the 32-byte key it guards.
:class:`FileKeyStore` keeps a random key in a file only the owner may read (mode 0600), for
development machines and tests.
"""

from __future__ import annotations

import abc
import os
import secrets
import stat
from pathlib import Path

from devices.files import atomic_write
from personalize.errors import StoreError

KEY_BYTES = 32
SECRET_MODE = 0o600  # keys and records: owner read/write only


class KeyStore(abc.ABC):
    """Supplies the store's AES-256-GCM key."""

    @abc.abstractmethod
    def key(self) -> bytes:
        """The 32-byte key, created on first use."""


class FileKeyStore(KeyStore):
    """A random 32-byte key in a file of mode 0600.

    Created atomically (written to a temp file, fsynced, then hard-linked into place, which fails
    if another process created it first). A key file readable or writable by group or others is
    refused, as is one of the wrong size.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def key(self) -> bytes:
        if not self.path.exists():
            self._create()
        try:
            mode = self.path.stat().st_mode
        except OSError as err:
            raise StoreError(f"key file {self.path}: cannot stat ({err}).") from None
        if not stat.S_ISREG(mode):
            raise StoreError(f"key file {self.path}: not a regular file.")
        if mode & 0o077:
            raise StoreError(
                f"key file {self.path}: mode {stat.S_IMODE(mode):04o} lets other users read or "
                f"change it; refusing it (expected 0600: chmod 600 {self.path})."
            )
        data = self.path.read_bytes()
        if len(data) != KEY_BYTES:
            raise StoreError(
                f"key file {self.path}: {len(data)} bytes, expected {KEY_BYTES} (corrupt?)."
            )
        return data

    def _create(self) -> None:
        # Linked into place, so a key another process created first wins (and is used).
        atomic_write(self.path, secrets.token_bytes(KEY_BYTES), mode=SECRET_MODE, exclusive=True)
