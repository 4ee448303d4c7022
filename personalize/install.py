"""``python -m personalize install``: an artifact installed from its signed download bundle.

Order of checks (nothing is written before all pass): the bundle's Ed25519 signature on its raw
bytes with the key the app trusts (:func:`devices.bundle.download.read_download`, which then
decodes the compressed backbone and rebuilds the files), the manifest's own signature with the
same key, then every file's size and SHA-256 against the signed manifest. The artifact folder is
then written as a new sibling folder renamed into place (:func:`devices.files.atomic_write_dir`):
an artifact already installed there stays as it was on any failure.

Example:
  >>> install("face.pfb", "artifacts/face", "signing.pub")["files"]
  {'background.npy': 256128, 'manifest.json': 61003, 'manifest.sig': 72, 'model.tflite': 694760}
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from devices.bundle.download import Download, read_download
from devices.bundle.errors import BundleError
from devices.contract import MANIFEST, SIGNATURE, ArtifactError
from devices.files import atomic_write_dir, check_replaceable
from devices.trust import TrustError, public_key, verify_file
from personalize.artifact import parse_manifest


def install(
    bundle: str | os.PathLike[str], artifact: str | os.PathLike[str], trusted_key: Any
) -> dict[str, Any]:
    """Verifies ``bundle``, rebuilds its artifact and writes it to ``artifact`` atomically.

    Args:
      bundle: the download (``.pfb``) path.
      artifact: the artifact directory to create or replace.
      trusted_key: the publisher's Ed25519 public key (PEM path, PEM bytes or key object).

    Returns:
      ``{"artifact", "bundle_bytes", "files": {name: bytes}, "key_id"}``.

    Raises:
      ArtifactError: unreadable, wrongly signed, truncated or tampered bundle, or files that
        differ from the signed manifest; ``artifact`` is then left untouched.
      FolderError: ``artifact`` is a file, or a folder that holds no artifact (a user's folder,
        a model): never replaced.
    """
    path = Path(bundle)
    check_replaceable(Path(artifact).expanduser(), MANIFEST)  # before the bundle's decoding
    if not path.is_file():
        raise ArtifactError(f"{path}: no such bundle.")
    try:
        download = verified_download(path.read_bytes(), trusted_key, where=str(path))
    except ArtifactError as err:
        raise ArtifactError(f"{err} Nothing was installed.") from None
    files = download.files
    out = atomic_write_dir(artifact, files, marker=MANIFEST)
    return {
        "artifact": str(out),
        "bundle_bytes": download.nbytes,
        "files": {n: len(d) for n, d in sorted(files.items())},
        "key_id": download.key_id,
    }


def verified_download(data: bytes, trusted_key: Any, *, where: str = "download") -> Download:
    """A download bundle's bytes verified as :func:`install` does before it writes: the bundle's
    signature with ``trusted_key``, the manifest it carries signed by that key, and every file it
    rebuilds against that manifest (exactly the files listed, each of the signed size and
    SHA-256).

    Raises:
      ArtifactError: any of those checks failing.
    """
    try:
        key = public_key(trusted_key)
        download = read_download(data, public_key=key, where=where)
        files = download.files
        verify_file(key, files[MANIFEST], files[SIGNATURE], what=f"{where}: {MANIFEST}")
    except (BundleError, TrustError) as err:
        raise ArtifactError(str(err)) from None
    manifest = parse_manifest(files[MANIFEST], where=f"{where}: {MANIFEST}")
    listed = set(manifest["files"])
    carried = set(files) - {MANIFEST, SIGNATURE}
    if listed != carried:
        raise ArtifactError(
            f"{where}: the signed manifest lists {sorted(listed)}, the bundle rebuilds "
            f"{sorted(carried)}."
        )
    for name in sorted(listed):
        entry, blob = manifest["files"][name], files[name]
        if (len(blob), hashlib.sha256(blob).hexdigest()) != (entry["bytes"], entry["sha256"]):
            raise ArtifactError(
                f"{where}: rebuilt {name} differs from the signed manifest ({len(blob)} bytes, "
                f"signed {entry['bytes']})."
            )
    return download
