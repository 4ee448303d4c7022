"""Where the store's AES-256 key lives: a small interface, and a file implementation.

On a phone, :class:`KeyStore` is where the platform keystore plugs in (Android Keystore, iOS
Keychain/Secure Enclave): implement :meth:`KeyStore.key` to return the 32-byte key it guards.
:class:`FileKeyStore` keeps a random key in a file only the owner may read (mode 0600), for
development machines and tests.
"""

from __future__ import annotations

import abc
import contextlib
import os
import secrets
import stat
from pathlib import Path

from personalize.errors import StoreError

KEY_BYTES = 32


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            # Fails if another process created the key first: then its key is used.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.path)
            fsync_dir(self.path.parent)
        finally:
            tmp.unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    """Makes a rename or link inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
