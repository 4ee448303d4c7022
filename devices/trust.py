"""Ed25519 trust: key ids, public keys and signature checks, for bundles and artifacts alike.

A signature travels with the signer's 8-byte key id (first bytes of the SHA-256 of its raw public
key), so a mismatch can say "signed by another key" rather than just "invalid". Signing happens on
the server (:mod:`export.bundle.signing`); checking happens here, where a device can read it.

References:
  Bernstein, Duif, Lange, Schwabe, Yang, "High-speed high-security signatures", CHES 2011.
  RFC 8032, "Edwards-Curve Digital Signature Algorithm (EdDSA)".
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
    """A key or a signature that is refused; the message says why."""


def public_key(source: Any) -> ed25519.Ed25519PublicKey:
    """An Ed25519 public key from a PEM file path, PEM bytes, a public or a private key object."""
    if isinstance(source, ed25519.Ed25519PublicKey):
        return source
    if isinstance(source, ed25519.Ed25519PrivateKey):
        return source.public_key()
    where = "key bytes"
    if isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        if path.is_dir():
            raise TrustError(f"public key {path} is a directory; give its PEM file (signing.pub).")
        if not path.is_file():
            raise TrustError(f"public key {path} not found.")
        where, source = str(path), path.read_bytes()
    try:
        key = serialization.load_pem_public_key(bytes(source))
    except (ValueError, TypeError) as err:
        raise TrustError(f"{where} is not a readable PEM public key: {err}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise TrustError(f"{where} holds a {type(key).__name__}, not an Ed25519 public key.")
    return key


def key_id(key: Any) -> bytes:
    """The 8-byte id of a public key (SHA-256 of its raw bytes, truncated)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KEY_ID_BYTES]


def verify(key: Any, message: bytes, signature: bytes, signer_id: bytes, *, what: str) -> None:
    """Checks that ``key`` (whose id must be ``signer_id``) signed ``message``.

    Raises:
      TrustError: signed by another key, or ``message`` modified after signing.
    """
    expected = key_id(key)
    if signer_id != expected:
        raise TrustError(
            f"{what}: signed by another key (key id {signer_id.hex()}), not the trusted one "
            f"(key id {expected.hex()})."
        )
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise TrustError(f"{what}: signature does not match: modified after signing.") from None


def verify_file(key: Any, message: bytes, signature_file: bytes, *, what: str) -> None:
    """Checks a key id + signature blob (a ``.sig`` file) over ``message``; see :func:`verify`."""
    if len(signature_file) != KEY_ID_BYTES + SIGNATURE_BYTES:
        raise TrustError(
            f"{what}: signature is {len(signature_file)} bytes, expected "
            f"{KEY_ID_BYTES + SIGNATURE_BYTES}."
        )
    signer, signature = signature_file[:KEY_ID_BYTES], signature_file[KEY_ID_BYTES:]
    verify(key, message, signature, signer, what=what)
