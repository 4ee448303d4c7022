"""Ed25519 verification of what the server signed (the device never holds a signing key).

A signature file is the signer's 8-byte key id (first bytes of the SHA-256 of its raw public key)
followed by the 64-byte Ed25519 signature, so a mismatch can say "signed by another key".
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

KEY_ID_BYTES, SIGNATURE_BYTES = 8, 64


class TrustError(ValueError):
    """A key or a signature the device refuses; the message says why."""


def public_key(source: Any) -> ed25519.Ed25519PublicKey:
    """A trusted Ed25519 public key from a PEM file path, PEM bytes, or a key object."""
    if isinstance(source, ed25519.Ed25519PublicKey):
        return source
    where = "key bytes"
    if isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        if not path.is_file():
            raise TrustError(f"trusted public key {path} not found.")
        where, source = str(path), path.read_bytes()
    try:
        key = serialization.load_pem_public_key(bytes(source))
    except (ValueError, TypeError) as err:
        raise TrustError(f"{where} is not a PEM public key: {err}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise TrustError(f"{where} is not an Ed25519 public key.")
    return key


def key_id(key: ed25519.Ed25519PublicKey) -> bytes:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KEY_ID_BYTES]


def verify(
    key: ed25519.Ed25519PublicKey, message: bytes, signature_file: bytes, *, what: str
) -> None:
    """Checks a key id + signature blob over ``message``; raises :class:`TrustError`."""
    if len(signature_file) != KEY_ID_BYTES + SIGNATURE_BYTES:
        raise TrustError(
            f"{what}: signature is {len(signature_file)} bytes, expected "
            f"{KEY_ID_BYTES + SIGNATURE_BYTES}."
        )
    signer, signature = signature_file[:KEY_ID_BYTES], signature_file[KEY_ID_BYTES:]
    if signer != key_id(key):
        raise TrustError(
            f"{what}: signed by another key (id {signer.hex()}), not the trusted one "
            f"(id {key_id(key).hex()})."
        )
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise TrustError(f"{what}: signature does not match: modified after signing.") from None
