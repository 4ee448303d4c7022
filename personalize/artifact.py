"""Loading an exported artifact on the device: verify, then hand verified bytes to LiteRT.

Order matters: ``manifest.sig`` is checked against a key the app already trusts, then every file
the manifest lists is checked against its SHA-256, and only the verified bytes (never a second
read from disk) reach the interpreter.

The background's front features, which only the wider scopes read, are hashed at load with the
rest but decoded only when asked for (:meth:`Artifact.features`): their file is read again then
and verified against the signed manifest a second time, so the bytes decoded are the bytes
hashed even if the file was swapped after loading, and a device that never trains a wider scope
never holds them (the face artifact's: 12.3 MB decoded, 0.2 s).

A holder of a verified artifact (the :class:`~personalize.Device`) asks :func:`unchanged` before
using it again: each file's stat (device, inode, size, mtime and ctime in ns), taken on the open
file before its bytes were read, must be as it was, else the artifact is verified again in full.
A rewrite keeps every one of them only within one tick of the file system's clock, so a file
written less than :data:`RACY_NS` before it was verified has no stamp and is always verified
again (git's "racily clean" entries). Changing ctime needs the clock, not write access.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from devices import coded_features, npy
from devices.contract import (
    BACKGROUND,
    BACKGROUND_FEATURES,
    BACKGROUND_FEATURES_NPY,
    BACKGROUND_MINUTIAE,
    FORMAT,
    MANIFEST,
    MODEL,
    SIGNATURE,
    ArtifactError,
)
from devices.print_minutiae import PrintSet, PrintSetError, read_prints
from devices.trust import TrustError, public_key, verify_file

# Files modified this recently are verified again on every use: above the timestamp tick of any
# file system a phone or host writes to (ext4/f2fs: a kernel clock tick of 1-10 ms; FAT: 2 s).
RACY_NS = 2_000_000_000

FileStamp = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


class Artifact(NamedTuple):
    """A verified artifact.

    Attributes:
      directory: where it was read from.
      manifest: the parsed, verified manifest.
      model: the verified ``model.tflite`` bytes.
      background: ``(n, d)`` float32 background embeddings.
      stamps: ``(file name, stamp)`` of every file read (the manifest, its signature and each
        file it lists), each taken before the file was read; a stamp is None for a file
        modified within :data:`RACY_NS` of being read (see :func:`unchanged`).
      prints: the background people's prints for the fingerprint fusion, row for row
        ``background`` (:mod:`devices.print_minutiae`), or None: the artifact ships none.
    """

    directory: Path
    manifest: dict[str, Any]
    model: bytes
    background: np.ndarray
    stamps: tuple[tuple[str, FileStamp | None], ...] = ()
    prints: PrintSet | None = None

    @property
    def features_file(self) -> str | None:
        """The file of the background people's front features the manifest lists (coded, or an
        older exporter's plain ``.npy``), or None: the artifact ships none, so only the ``head``
        scope can train."""
        listed = (BACKGROUND_FEATURES, BACKGROUND_FEATURES_NPY)
        return next((name for name in listed if name in self.manifest["files"]), None)

    def features(self) -> np.ndarray | None:
        """The background people's ``(n, *features)`` float16 front features (as stored; the
        wider scopes widen them a batch at a time), or None when the artifact ships none.

        Read from :attr:`features_file` now, verified against the signed manifest again and
        decoded on every call (the face artifact's: 3.4 MB read, 12.3 MB decoded, 0.2 s): the
        caller keeps them as long as it needs them.

        Raises:
          ArtifactError: the file is missing, differs from the signed manifest (changed since
            the artifact was loaded), is malformed, or has another number of rows than
            ``background``.
        """
        name = self.features_file
        if name is None:
            return None
        path = self.directory / name
        if not path.is_file():
            raise ArtifactError(f"{path}: missing (listed in the signed manifest).")
        features = _verified_array(path, self.manifest["files"][name], {}, np.float16)
        if len(features) != len(self.background):
            raise ArtifactError(
                f"{path}: {len(features)} rows, {BACKGROUND} has {len(self.background)}."
            )
        return features

    def interpreter(self, num_threads: int = 1) -> Any:
        """A LiteRT interpreter over the verified model bytes, its tensors allocated.

        Raises:
          ArtifactError: the runtime refuses the model (unknown ops, corrupt flatbuffer).
        """
        return open_model(self.model, num_threads, where=str(self.directory / MODEL))


def open_model(model: bytes, num_threads: int = 1, *, where: str = MODEL) -> Any:
    """A LiteRT interpreter over ``model`` with its tensors allocated; refusals as ArtifactError."""
    try:
        interpreter = load_runtime()(model_content=model, num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:  # what the runtime raises for a model it refuses
        text = str(err).strip().splitlines()
        reason = text[0] if text else repr(err)
        raise ArtifactError(f"{where}: LiteRT refuses the model ({reason}).") from None
    return interpreter


def load_runtime() -> Any:
    """The LiteRT ``Interpreter`` class (imports the runtime library on first use)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


def _fields(st: os.stat_result) -> FileStamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _stamp(st: os.stat_result) -> FileStamp | None:
    """The stamp of a file about to be read; None if it was modified within RACY_NS of now."""
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
        return None
    return _fields(st)


def unchanged(artifact: Artifact) -> bool:
    """Whether every file of a verified artifact is still the one that was verified, by its stat
    alone (microseconds; no file is read). False: verify it again (:func:`load_artifact`).

    False too when a file has no stamp (modified within :data:`RACY_NS` of being verified) or
    the artifact came without stamps.
    """
    if not artifact.stamps:
        return False
    for name, stamp in artifact.stamps:
        try:
            if stamp is None or _fields((artifact.directory / name).stat()) != stamp:
                return False
        except OSError:
            return False
    return True


def _sha256() -> Any:
    """A SHA-256 hasher (every file hash of this module goes through here; tests count them)."""
    return hashlib.sha256()


def _read(path: Path, stamps: dict[str, FileStamp | None]) -> bytes:
    """``path``'s bytes, its stamp (taken on the open file, before reading) into ``stamps``."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (an artifact has {MODEL}, {MANIFEST}, {SIGNATURE}).")
    try:
        with path.open("rb") as f:
            stamps[path.name] = _stamp(os.fstat(f.fileno()))
            return f.read()
    except OSError as err:  # gone or unreadable since the check above
        raise ArtifactError(f"{path}: not readable ({err.strerror or err}).") from None


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
    stamps: dict[str, FileStamp | None] = {}
    manifest_bytes = _read(base / MANIFEST, stamps)
    try:
        verify_file(
            public_key(trusted_key),
            manifest_bytes,
            _read(base / SIGNATURE, stamps),
            what=str(base / MANIFEST),
        )
    except TrustError as err:
        raise ArtifactError(str(err)) from None
    manifest = parse_manifest(manifest_bytes, where=str(base / MANIFEST))
    names = manifest["files"]
    listed = [n for n in (BACKGROUND_FEATURES, BACKGROUND_FEATURES_NPY) if n in names]
    if len(listed) > 1:
        raise ArtifactError(f"{base / MANIFEST}: lists both {' and '.join(reversed(listed))}.")
    # One file at a time, each dropped once used, so that loading holds at most one file's
    # bytes beside the arrays made so far; files the device does not use now (the background
    # features: Artifact.features reads them again) are hashed streaming.
    read_now = (MODEL, BACKGROUND, BACKGROUND_MINUTIAE)
    for name, entry in names.items():
        if name not in read_now:
            _check(base / name, entry, _hash_file(base / name, stamps))
    prints = _verified_prints(base, manifest, stamps)
    model = _read(base / MODEL, stamps)
    _check(base / MODEL, names[MODEL], _digest(model))
    background = _verified_array(base / BACKGROUND, names[BACKGROUND], stamps)
    return Artifact(base, manifest, model, background, tuple(stamps.items()), prints)


def _verified_prints(
    base: Path, manifest: dict[str, Any], stamps: dict[str, FileStamp | None]
) -> PrintSet | None:
    """The background people's prints the manifest lists, verified and decoded (None when it
    lists none).

    Raises:
      ArtifactError: the file differs from the signed manifest or does not decode, or the
        manifest lists it without a ``minutiae`` entry (or the other way round).
    """
    listed = BACKGROUND_MINUTIAE in manifest["files"]
    if listed != ("minutiae" in manifest):
        raise ArtifactError(
            f"{base / MANIFEST}: {BACKGROUND_MINUTIAE} and the minutiae entry come together."
        )
    if not listed:
        return None
    path = base / BACKGROUND_MINUTIAE
    data = _read(path, stamps)
    _check(path, manifest["files"][BACKGROUND_MINUTIAE], _digest(data))
    try:
        return read_prints(data, str(path))
    except PrintSetError as err:
        raise ArtifactError(str(err)) from None


def parse_manifest(data: bytes, *, where: str = MANIFEST) -> dict[str, Any]:
    """The manifest's JSON, with the fields the loader reads checked (format, files,
    artifact_id).

    Raises:
      ArtifactError: not JSON, another format, a file list that is malformed or names a file
        outside the artifact directory, or a kept ``artifact_id`` that is not 16 hex digits.
    """
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ArtifactError(f"{where}: not a readable JSON manifest ({err}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ArtifactError(f"{where}: format {found!r}, expected {FORMAT}.")
    names = manifest.get("files")
    if not isinstance(names, dict) or MODEL not in names or BACKGROUND not in names:
        raise ArtifactError(f"{where}: lists no {MODEL} or no {BACKGROUND}.")
    kept = manifest.get("artifact_id")
    if kept is not None and not (
        isinstance(kept, str) and len(kept) == 16 and all(c in "0123456789abcdef" for c in kept)
    ):
        raise ArtifactError(f"{where}: artifact_id {kept!r} is not 16 lowercase hex digits.")
    for name, entry in names.items():
        plain = name not in ("", ".", "..") and "/" not in name and "\\" not in name
        ok = isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
        if not (plain and ok and isinstance(entry.get("sha256"), str)):
            raise ArtifactError(
                f"{where}: file entry {name!r} is not a plain file name with bytes and sha256."
            )
    return manifest


def _check(path: Path, entry: dict[str, Any], got: tuple[int, str]) -> None:
    if got != (entry["bytes"], entry["sha256"]):
        raise ArtifactError(
            f"{path}: contents differ from the signed manifest (modified or truncated)."
        )


def _digest(data: bytes) -> tuple[int, str]:
    digest = _sha256()
    digest.update(data)
    return len(data), digest.hexdigest()


def _hash_file(path: Path, stamps: dict[str, FileStamp | None]) -> tuple[int, str]:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (listed in the signed manifest).")
    digest, size = _sha256(), 0
    try:
        with path.open("rb") as f:
            stamps[path.name] = _stamp(os.fstat(f.fileno()))
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as err:  # gone or unreadable since the check above
        raise ArtifactError(f"{path}: not readable ({err.strerror or err}).") from None
    return size, digest.hexdigest()


def _verified_array(
    path: Path,
    entry: dict[str, Any],
    stamps: dict[str, FileStamp | None],
    dtype: Any = np.float32,
) -> np.ndarray:
    """A verified ``.npy`` file (or coded features, ``.xz``: :mod:`devices.coded_features`) as
    ``dtype``, without a second copy of its stored values."""
    data = _read(path, stamps)
    _check(path, entry, _digest(data))
    coded = path.name == BACKGROUND_FEATURES
    try:
        if coded:  # decoded into an array of its own: no second copy
            return coded_features.decode(data).astype(dtype, copy=False)
        return npy.read(data)[0].astype(dtype)  # a copy: never a view of the file's bytes
    except ValueError as err:
        what = "coded features file" if coded else ".npy array"
        raise ArtifactError(f"{path}: not a readable {what} ({err}).") from None
