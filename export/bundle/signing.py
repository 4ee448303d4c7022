"""Ed25519 keys for signing bundles: generate, save, load, sign, verify.

Private keys are PEM (PKCS#8, unencrypted, file mode 0600, checked on every read) and stay
outside any repository; public keys are PEM (SubjectPublicKeyInfo) and are handed to readers,
who must name the one they trust (a key travelling beside a bundle proves nothing). A key's id is the first 8
bytes of the SHA-256 of its raw public key; a bundle records the id of the key that signed it, so
a reader can say "signed by another key" rather than just "invalid".

References:
  Bernstein, Duif, Lange, Schwabe, Yang, "High-speed high-security signatures", CHES 2011.
  RFC 8032, "Edwards-Curve Digital Signature Algorithm (EdDSA)".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devices.bundle.container import load_public_key as load_public_key  # re-exported
from devices.bundle.container import verify as verify  # re-exported
from devices.bundle.errors import BundleError
from devices.files import atomic_write
from devices.trust import KEY_ID_BYTES as KEY_ID_BYTES  # re-exported: the bundle's layout
from devices.trust import SIGNATURE_BYTES as SIGNATURE_BYTES
from devices.trust import key_id as key_id

DEFAULT_PRIVATE_KEY = Path("~/.config/pocketfit/signing.key")
PUBLIC_KEY_NAME = "signing.pub"
PRIVATE_MODE = 0o600
PUBLIC_PEM = b"-----BEGIN PUBLIC KEY-----"


def _ed25519() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519


def generate_key(private_path: str | os.PathLike[str], public_path: str | os.PathLike[str]) -> Any:
    """Creates an Ed25519 key pair; writes the private key (mode 0600) and the public key.

    Refuses to overwrite an existing private key, and a ``public_path`` that is the private
    key's own or another private key's (:func:`check_public_path`).

    Returns:
      The private key.

    Raises:
      FileExistsError: a private key is at ``private_path``.
      BundleError: ``public_path`` is ``private_path``, a folder, or a private key.
    """
    from cryptography.hazmat.primitives import serialization

    private_path, public_path = Path(private_path).expanduser(), Path(public_path).expanduser()
    check_public_path(public_path, private_path)
    if private_path.exists():
        raise FileExistsError(f"{private_path} exists; not overwriting a private key.")
    key = _ed25519().Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write(private_path, pem, mode=PRIVATE_MODE, exclusive=True)
    if load_private_key(private_path).public_key() != key.public_key():
        raise FileExistsError(f"{private_path} was created meanwhile; not overwriting it.")
    write_public_key(key.public_key(), public_path)
    return key


def check_public_path(
    path: str | os.PathLike[str], private: str | os.PathLike[str] | None = None
) -> Path:
    """``path`` as a place for a public key: refused (BundleError) where a private key is or will
    be (``private``), so a ``--public`` that names the signing key's own file cannot replace it
    with its public half (the key, and every signature it made, would be lost)."""
    out = Path(path).expanduser()
    if private is not None and out.resolve() == Path(private).expanduser().resolve():
        raise BundleError(f"--public names the private key's file {out}: give another file.")
    if out.is_dir():  # checked before a private key is written: a re-run would fail
        raise BundleError(
            f"public key path {out} is a directory; give a file, e.g. {out / PUBLIC_KEY_NAME}."
        )
    if out.is_file():
        with out.open("rb") as file:
            if b"PRIVATE KEY" in file.read(4096):
                raise BundleError(
                    f"{out} holds a private key; the public key is not written over it (give "
                    "--public another file, e.g. signing.pub)."
                )
    return out


def write_public_key(public_key: Any, path: str | os.PathLike[str]) -> Path:
    """Writes a public key as PEM (atomically: :func:`devices.files.atomic_write`); never over a
    private key (:func:`check_public_path`)."""
    from cryptography.hazmat.primitives import serialization

    path = check_public_path(path)
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return atomic_write(path, pem)


def replace_public_key(
    public_key: Any, path: str | os.PathLike[str], *, signed: Sequence[str] = ()
) -> Path:
    """Writes ``public_key`` at ``path`` unless another key's is there and ``signed`` names files
    that key signed and that stay: they would no longer verify against the key beside them.

    Raises:
      BundleError: ``path`` holds another key's public half while ``signed`` is not empty; the
        message names the key ids and the files (sign them again, or use the old private key).
    """
    path = Path(path)
    if path.is_file() and signed:
        old = key_id(load_public_key(path))
        new = key_id(public_key)
        if old != new:
            raise BundleError(
                f"{path} is the public half of another key (id {old.hex()}) than the signing "
                f"key's (id {new.hex()}), and {', '.join(signed)} signed by it would stay: they "
                "would no longer verify. Sign them again with this key too (`python -m export "
                "rekey PATH --old-key OLD.pub`), or use the key that signed them."
            )
    return write_public_key(public_key, path)


def _check_private_mode(file: Path) -> None:
    """Refuses a private key that others may read, as ssh does."""
    if os.name != "posix":
        return
    mode = file.stat().st_mode & 0o777
    if mode & 0o077:
        raise BundleError(
            f"private key {file} has mode {mode:04o}: readable by group or others; a signing key "
            f"must be {PRIVATE_MODE:04o} (run `chmod 600 {file}`, or make a new key if it leaked)."
        )


def load_private_key(path: str | os.PathLike[str]) -> Any:
    """Reads an Ed25519 private key (PEM) whose file only its owner may read (mode 0600).

    Raises:
      BundleError: missing file, readable by group or others, or not an Ed25519 private key.
    """
    from cryptography.hazmat.primitives import serialization

    file = Path(path).expanduser()
    if file.is_dir():
        raise BundleError(f"private key {file} is a directory; give the key's file.")
    if not file.is_file():
        raise BundleError(
            f"private key {file} not found; create one with `python -m export keygen`."
        )
    if file.read_bytes().lstrip().startswith(PUBLIC_PEM):  # before the mode: no chmod advice
        raise BundleError(
            f"{file} is a public key (the public half); signing needs its private key "
            f"(default {DEFAULT_PRIVATE_KEY})."
        )
    _check_private_mode(file)
    try:
        key = serialization.load_pem_private_key(file.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise BundleError(f"{file} is not a readable PEM private key: {err}") from None
    if not isinstance(key, _ed25519().Ed25519PrivateKey):
        raise BundleError(f"{file} holds a {type(key).__name__}, not an Ed25519 key.")
    return key


def sign(private_key: Any, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``message``."""
    return bytes(private_key.sign(message))
