"""Loading an exported artifact on the device: verify, then hand verified bytes to LiteRT.

Order matters: ``manifest.sig`` is checked against a key the app already trusts, then every file
the manifest lists is checked against its SHA-256, and only the verified bytes (never a second
read from disk) reach the interpreter.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from personalize.trust import TrustError, public_key, verify

FORMAT = "pocketfit-artifact/1"
MODEL, MANIFEST, SIGNATURE, BACKGROUND = (
    "model.tflite",
    "manifest.json",
    "manifest.sig",
    "background.npy",
)


class ArtifactError(ValueError):
    """An artifact the device refuses to load; the message names the file and the reason."""


class Artifact(NamedTuple):
    """A verified artifact.

    Attributes:
      directory: where it was read from.
      manifest: the parsed, verified manifest.
      model: the verified ``model.tflite`` bytes.
      background: ``(n, d)`` float32 background embeddings.
    """

    directory: Path
    manifest: dict[str, Any]
    model: bytes
    background: np.ndarray

    def interpreter(self, num_threads: int = 1) -> Any:
        """A LiteRT interpreter over the verified model bytes."""
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_content=self.model, num_threads=num_threads)


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (an artifact has {MODEL}, {MANIFEST}, {SIGNATURE}).")
    return path.read_bytes()


def load_artifact(directory: str | os.PathLike[str], trusted_key: Any) -> Artifact:
    """Verifies and loads an artifact directory.

    Args:
      directory: the artifact directory.
      trusted_key: the publisher's Ed25519 public key (PEM path, PEM bytes or key object) that
        the app ships with; a key found inside the artifact is never trusted.

    Raises:
      ArtifactError: anything missing, modified, signed by another key, or of an unknown format.
    """
    base = Path(directory)
    if not base.is_dir():
        raise ArtifactError(f"{base}: not an artifact directory.")
    manifest_bytes = _read(base / MANIFEST)
    try:
        verify(
            public_key(trusted_key),
            manifest_bytes,
            _read(base / SIGNATURE),
            what=str(base / MANIFEST),
        )
    except TrustError as err:
        raise ArtifactError(str(err)) from None
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") != FORMAT:
        raise ArtifactError(
            f"{base / MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT}."
        )
    verified = {}
    for name, entry in manifest["files"].items():
        data = _read(base / name)
        if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ArtifactError(
                f"{base / name}: contents differ from the signed manifest (modified or truncated)."
            )
        verified[name] = data
    if MODEL not in verified or BACKGROUND not in verified:
        raise ArtifactError(f"{base / MANIFEST}: lists no {MODEL} or no {BACKGROUND}.")
    background = np.load(io.BytesIO(verified[BACKGROUND]), allow_pickle=False).astype(np.float32)
    return Artifact(base, manifest, verified[MODEL], background)
