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

from devices.contract import (
    BACKGROUND,
    BACKGROUND_FEATURES,
    FORMAT,
    MANIFEST,
    MODEL,
    SIGNATURE,
    ArtifactError,
)
from devices.trust import TrustError, public_key, verify_file


class Artifact(NamedTuple):
    """A verified artifact.

    Attributes:
      directory: where it was read from.
      manifest: the parsed, verified manifest.
      model: the verified ``model.tflite`` bytes.
      background: ``(n, d)`` float32 background embeddings.
      background_features: ``(n, *features)`` float32 front features of the same people, or
        ``None`` when the artifact does not ship them (then only the ``head`` scope can train).
    """

    directory: Path
    manifest: dict[str, Any]
    model: bytes
    background: np.ndarray
    background_features: np.ndarray | None = None

    def interpreter(self, num_threads: int = 1) -> Any:
        """A LiteRT interpreter over the verified model bytes."""
        return load_runtime()(model_content=self.model, num_threads=num_threads)


def load_runtime() -> Any:
    """The LiteRT ``Interpreter`` class (imports the runtime library on first use)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


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
        verify_file(
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
    names = manifest["files"]
    if MODEL not in names or BACKGROUND not in names:
        raise ArtifactError(f"{base / MANIFEST}: lists no {MODEL} or no {BACKGROUND}.")
    # One file at a time, each dropped once used, so that loading holds at most one file's
    # bytes beside the arrays made so far; files the device does not use are hashed streaming.
    for name, entry in names.items():
        if name not in (MODEL, BACKGROUND, BACKGROUND_FEATURES):
            _check(base / name, entry, _hash_file(base / name))
    model = _read(base / MODEL)
    _check(base / MODEL, names[MODEL], (len(model), hashlib.sha256(model).hexdigest()))
    background = _verified_array(base / BACKGROUND, names[BACKGROUND])
    features = None
    if BACKGROUND_FEATURES in names:
        features = _verified_array(base / BACKGROUND_FEATURES, names[BACKGROUND_FEATURES])
        if len(features) != len(background):
            raise ArtifactError(
                f"{base / BACKGROUND_FEATURES}: {len(features)} rows, {BACKGROUND} has "
                f"{len(background)}."
            )
    return Artifact(base, manifest, model, background, features)


def _check(path: Path, entry: dict[str, Any], got: tuple[int, str]) -> None:
    if got != (entry["bytes"], entry["sha256"]):
        raise ArtifactError(
            f"{path}: contents differ from the signed manifest (modified or truncated)."
        )


def _hash_file(path: Path) -> tuple[int, str]:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (listed in the signed manifest).")
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _verified_array(path: Path, entry: dict[str, Any]) -> np.ndarray:
    """A verified ``.npy`` file as float32, without a second copy of its stored values."""
    data = _read(path)
    _check(path, entry, (len(data), hashlib.sha256(data).hexdigest()))
    try:
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version}")
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(stream)
        if dtype.hasobject:
            raise ValueError("object arrays are not allowed")
        count = int(np.prod(shape))
        flat = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
        values = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
        return values.astype(np.float32)
    except ValueError as err:
        raise ArtifactError(f"{path}: not a readable .npy array ({err}).") from None
