"""Key rotation: moves signed artifacts and ``.pfb`` bundles from one publisher key to another.

A publisher signs again when its private key is lost (a machine reset: the key lives outside
the repository on purpose) or may have leaked. What the old key signed is trusted through the old
key's *public* half, which the publisher still has (it ships with the app):

1. Everything named is verified against the old public key first: an artifact's manifest
   signature, every file's size and SHA-256, the signature of each bundle in it; a bundle's
   signature, and for a download bundle (``pocketfit-download/1``) the manifest it carries and
   the files it rebuilds. One failure and nothing is written: the error names the file.
2. Each ``.pfb`` the old key signed gets a new trailer (the new key's id and signature); its
   signed body, the compressed weights, is unchanged byte for byte, except that a download's
   copy of its manifest signature is the new key's too.
3. Each artifact directory gets a manifest that lists its re-signed bundles, names the new
   bundle key, records the rotation (``rekeyed``), and keeps the artifact's id
   (:func:`personalize.device.artifact_id`): users enrolled before the rotation keep their
   records. The folder is swapped in whole (:func:`devices.files.atomic_write_dir`); files the
   manifest does not list are carried over as they are.

What a third key signed (the trailer names its id) is reported and left alone; inside an
artifact the manifest's hash still covers it. Items already signed by the new key are left alone
too, so a rotation that was interrupted is finished by running it again. The model, its
background and every other file are copied as they are: a rotation cannot change what a device
computes.

Example:
  >>> rekey(["notebooks/results/artifacts"], old_key="signing.pub", new_key=private_key)
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import devices.bundle.container as container
from devices.bundle.download import FORMAT as DOWNLOAD_FORMAT
from devices.bundle.download import SIGNATURE_RECORD
from devices.bundle.errors import BundleError
from devices.contract import MANIFEST, SIGNATURE, ArtifactError
from devices.files import atomic_write, atomic_write_dir
from devices.trust import KEY_ID_BYTES, TrustError, key_id, public_key, verify_file
from export.artifact.build import signed_manifest
from export.bundle import signing

SUFFIX = ".pfb"


class RekeyError(ValueError):
    """A rotation refused: something named is not what its key signed, or not signed at all."""


@dataclasses.dataclass(frozen=True)
class Rekeyed:
    """One item of a rotation.

    Attributes:
      path: the artifact directory or the ``.pfb`` file.
      kind: ``"artifact"`` or ``"bundle"``.
      action: ``"signed"`` (moved to the new key), ``"kept"`` (already signed by it), ``"other"``
        (signed by a third key, left alone) or ``"verified"`` (a dry run: would be signed).
      signer: hex id of the key that signed it before.
    """

    path: Path
    kind: str
    action: str
    signer: str


def find_signed(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """The artifacts and bundles under ``paths``: a folder with a ``manifest.json`` is an
    artifact (its bundles go with it), a ``.pfb`` file a bundle; other folders are searched.

    Raises:
      RekeyError: a path is missing, or holds nothing signed.
    """
    found: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise RekeyError(f"{path}: not found.")
        before = len(found)
        _collect(path, found)
        if len(found) == before:
            raise RekeyError(
                f"{path}: no artifact directory ({MANIFEST}) or {SUFFIX} bundle in it."
            )
    return list(dict.fromkeys((kind, p.resolve()) for kind, p in found))


def _collect(path: Path, found: list[tuple[str, Path]]) -> None:
    if path.is_file():
        if path.suffix == SUFFIX:
            found.append(("bundle", path))
    elif (path / MANIFEST).is_file():
        found.append(("artifact", path))
    elif path.is_dir():
        for child in sorted(path.iterdir()):
            if not child.name.startswith("."):
                _collect(child, found)


def rekey(
    paths: Iterable[str | os.PathLike[str]],
    *,
    old_key: Any,
    new_key: Any,
    dry_run: bool = False,
) -> list[Rekeyed]:
    """Signs every artifact and bundle under ``paths`` that ``old_key`` signed with ``new_key``
    (see the module docstring).

    Args:
      paths: artifact directories, ``.pfb`` files, or folders holding them.
      old_key: the public key (PEM path, PEM bytes or key) that signed them.
      new_key: the Ed25519 private key to sign with.
      dry_run: verify everything and report, write nothing.

    Raises:
      RekeyError: a file fails verification, the old key is unreadable, or the two keys are the
        same; nothing has been written then.
    """
    try:
        old = public_key(old_key)
    except TrustError as err:
        raise RekeyError(f"the old key: {err}") from None
    keys = {"old": key_id(old), "new": key_id(new_key.public_key())}
    if keys["old"] == keys["new"]:
        raise RekeyError(f"the old and the new key are the same key (id {keys['new'].hex()}).")
    verifier = {keys["old"]: old, keys["new"]: new_key.public_key()}
    plans = []
    for kind, path in find_signed(paths):
        signer = _signer(kind, path)
        if signer in verifier:
            try:
                _verify(kind, path, verifier[signer])
            except RekeyError as err:
                raise RekeyError(f"{err} Nothing was signed.") from None
        plans.append((kind, path, signer))
    if not any(signer in verifier for _, _, signer in plans):
        found = ", ".join(sorted({signer.hex() for _, _, signer in plans}))
        raise RekeyError(
            f"nothing named is signed by the old key (id {keys['old'].hex()}) or the new one; "
            f"signed by another key ({found}). Nothing was signed."
        )
    done: list[Rekeyed] = []
    for kind, path, signer in plans:
        if signer == keys["old"]:
            action = "verified" if dry_run else "signed"
            if not dry_run:
                try:
                    _sign(kind, path, old, new_key)
                except RekeyError as err:
                    signed = sum(d.action == "signed" for d in done)
                    raise RekeyError(
                        f"{err} {signed} items before it were signed; the rest were not (run "
                        "rekey again once it is restored: what is signed already is kept)."
                    ) from None
        else:
            action = "kept" if signer == keys["new"] else "other"
        done.append(Rekeyed(path, kind, action, signer.hex()))
    return done


# -- verification ---------------------------------------------------------------------------------
def _trailer_signer(data: bytes) -> bytes:
    """The key id a ``.pfb``'s trailer names."""
    return data[len(data) - container.TRAILER_BYTES :][:KEY_ID_BYTES]


def _signer(kind: str, path: Path) -> bytes:
    """The key id an item's signature names (unauthenticated: only chooses the key to verify
    with, and whether the item is the old key's to move)."""
    try:
        if kind == "artifact":
            return (path / SIGNATURE).read_bytes()[:KEY_ID_BYTES]
        data = path.read_bytes()
    except OSError as err:
        raise RekeyError(f"{path}: {err}") from None
    if len(data) < container.TRAILER_BYTES:
        raise RekeyError(f"{path}: {len(data)} bytes, too short for a signed bundle.")
    return _trailer_signer(data)


def _verify(kind: str, path: Path, key: Any) -> None:
    """As a device would: an artifact by :func:`personalize.load_artifact` (manifest signature,
    every file's size and SHA-256) plus the signature of each bundle in it that ``key`` signed; a
    download by :func:`personalize.install.verified_download`; a weights bundle by its
    signature."""
    from personalize.artifact import load_artifact
    from personalize.install import verified_download

    try:
        if kind == "artifact":
            for name in load_artifact(path, key).manifest["files"]:
                data = (path / name).read_bytes()
                if name.endswith(SUFFIX) and _trailer_signer(data) == key_id(key):
                    container.read(data, key, where=str(path / name))
            return
        data = path.read_bytes()
        if container.read(data, key, where=str(path)).options.get("format") == DOWNLOAD_FORMAT:
            verified_download(data, key, where=str(path))
    except (TrustError, BundleError, ArtifactError, OSError) as err:
        raise RekeyError(f"{path}: {err}") from None


def _check(where: str, data: bytes, entry: dict[str, Any]) -> None:
    if (len(data), hashlib.sha256(data).hexdigest()) != (entry["bytes"], entry["sha256"]):
        raise RekeyError(f"{where}: contents differ from the signed manifest.")


# -- signing --------------------------------------------------------------------------------------
def resign_bundle(data: bytes, old: Any, private_key: Any) -> bytes:
    """A bundle the ``old`` public key signed, signed by ``private_key``: the same body with a
    new trailer; a download's manifest signature record is signed again first."""
    parsed = container.read(data, old)
    if parsed.options.get("format") != DOWNLOAD_FORMAT:
        body = data[: len(data) - container.TRAILER_BYTES]
        return body + key_id(private_key.public_key()) + signing.sign(private_key, body)
    from personalize.install import verified_download

    manifest = verified_download(data, old).files[MANIFEST]
    signature = key_id(private_key.public_key()) + signing.sign(private_key, manifest)
    records = [
        r._replace(sections=(signature,)) if r.name == SIGNATURE_RECORD else r
        for r in parsed.records
    ]
    return container.write(parsed.model, parsed.options, records, private_key)


def _sign(kind: str, path: Path, old: Any, private_key: Any) -> None:
    try:
        if kind == "bundle":
            atomic_write(path, resign_bundle(path.read_bytes(), old, private_key))
        else:
            _sign_artifact(path, old, private_key)
    except (TrustError, BundleError, ArtifactError, OSError) as err:
        raise RekeyError(f"{path}: changed since it was verified: {err}") from None


def _sign_artifact(path: Path, old: Any, private_key: Any) -> None:
    from personalize.device import artifact_id

    # Verified again on the very bytes signed below: a file changed since the first check is
    # refused, not signed.
    text = (path / MANIFEST).read_bytes()
    verify_file(old, text, (path / SIGNATURE).read_bytes(), what=str(path / MANIFEST))
    manifest = json.loads(text)
    rotated = copy.deepcopy(manifest)
    rotated["artifact_id"] = artifact_id(manifest)
    old_id, new_id = key_id(old), key_id(private_key.public_key())
    files = {}
    others = [p.name for p in sorted(path.iterdir()) if p.name not in (MANIFEST, SIGNATURE)]
    for name in dict.fromkeys([*manifest["files"], *others]):
        if not (path / name).is_file():
            raise RekeyError(f"{path / name}: not a file; an artifact directory holds only files.")
        data = (path / name).read_bytes()
        if name in manifest["files"]:
            _check(str(path / name), data, manifest["files"][name])
        ours = _trailer_signer(data) == old_id
        if name in manifest["files"] and name.endswith(SUFFIX) and ours:
            data = resign_bundle(data, old, private_key)
            rotated["files"][name] = {
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            source = rotated.get("source")
            if isinstance(source, dict) and source.get("bundle_key_id") == old_id.hex():
                source["bundle_key_id"] = new_id.hex()
        files[name] = data
    utc = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    step = {"from": old_id.hex(), "to": new_id.hex(), "utc": utc}
    rotated["rekeyed"] = [*rotated.get("rekeyed", []), step]
    atomic_write_dir(path, {**files, **signed_manifest(rotated, private_key)}, marker=MANIFEST)
