"""Per-device bearer tokens, hashed at rest: a tokens file never holds a usable credential.

The file (JSON, mode 0600) lists ``{"device", "tenant", "sha256"}`` per device; a token is 32
random bytes (URL-safe base64) shown once when it is issued, and the service keeps only its
SHA-256 (a random 256-bit secret needs no slow hash: there is nothing to guess from).

A running service follows the file: a token issued, re-issued or removed takes effect at the next
request (one ``stat`` a request tells whether the file changed), so revoking a device needs no
restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import threading
from pathlib import Path

from devices.files import atomic_write

TOKENS_FORMAT = "pocketfit-tokens/1"
LOG = logging.getLogger("pocketfit.serve")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenError(ValueError):
    """A tokens file or an entry that is refused; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Client:
    """Who a request comes from: one device of one tenant."""

    device: str
    tenant: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        entries = data["devices"]
        if data.get("format") != TOKENS_FORMAT or not isinstance(entries, list):
            raise ValueError(f"format {data.get('format')!r}, expected {TOKENS_FORMAT}")
        for e in entries:
            if not (NAME.match(e["device"]) and NAME.match(e["tenant"]) and len(e["sha256"]) == 64):
                raise ValueError(f"bad entry {e!r}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TokenError(
            f"{path}: not a readable tokens file ({err}); issue tokens with "
            "`python -m export serve --tokens FILE --issue DEVICE --tenant T`."
        ) from None
    return list(entries)


def _version(path: Path) -> tuple[int, ...] | None:
    """What changes when the file is rewritten (an atomic write is a new inode), or None."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


class Tokens:
    """The device registry: token hash -> :class:`Client`, re-read when the file changes.

    A file that turns unreadable (or is removed) while the service runs keeps the registry it
    last read, with a warning logged: a half-edited file must not lock every device out.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise TokenError(f"tokens file {self.path} is a directory; give the file's path.")
        if not self.path.is_file():
            raise TokenError(
                f"tokens file {self.path} not found; issue one with "
                "`python -m export serve --tokens FILE --issue DEVICE --tenant T`."
            )
        self._lock = threading.Lock()
        self._version = _version(self.path)
        self._by_hash = self._load()

    def _load(self) -> dict[str, Client]:
        return {e["sha256"]: Client(e["device"], e["tenant"]) for e in _read(self.path)}

    def _refresh(self) -> None:
        version = _version(self.path)
        if version == self._version:
            return
        with self._lock:
            if version == self._version:
                return
            self._version = version  # a bad file is reported once, not on every request
            if version is None:
                LOG.warning("tokens_missing", extra={"fields": {"path": str(self.path)}})
                return
            try:
                self._by_hash = self._load()
            except TokenError as err:
                LOG.warning("tokens_unreadable", extra={"fields": {"error": str(err)}})
                return
            LOG.info("tokens_reloaded", extra={"fields": {"devices": len(self._by_hash)}})

    def __len__(self) -> int:
        self._refresh()
        return len(self._by_hash)

    def lookup(self, token: str) -> Client | None:
        """The client a bearer token belongs to, or None (the file's current entries)."""
        self._refresh()
        return self._by_hash.get(token_hash(token)) if token else None


def tenant_of(path: str | os.PathLike[str], device: str) -> str | None:
    """The tenant ``device`` is registered under in the tokens file, or None."""
    file = Path(path).expanduser()
    return next((e["tenant"] for e in _read(file) if e["device"] == device), None)


def issue_token(path: str | os.PathLike[str], device: str, tenant: str) -> str:
    """Adds (or replaces) ``device``'s token in the tokens file; returns the token (shown once).

    Raises:
      TokenError: a bad device or tenant name, or an unreadable file.
    """
    for what, name in (("device", device), ("tenant", tenant)):
        if not NAME.match(name):
            raise TokenError(f"{what} name {name!r}: use 1-64 letters, digits, '.', '_' or '-'.")
    file = Path(path).expanduser()
    entries = [e for e in _read(file) if e["device"] != device]
    token = secrets.token_urlsafe(32)
    entries.append({"device": device, "tenant": tenant, "sha256": token_hash(token)})
    body = {"format": TOKENS_FORMAT, "devices": entries}
    atomic_write(file, json.dumps(body, indent=1).encode(), mode=0o600)
    return token
