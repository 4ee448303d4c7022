"""Durable file writes: a reader sees the old file or the new one, never a torn one.

One recipe for every writer (records and keys on the device, bundles, artifacts, checkpoints and
bench results on the server): write a temp file beside the target, fsync it, rename (or link) it
into place, fsync the folder so the rename itself survives a power cut. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Makes a rename or link inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    path.chmod(mode)  # the umask may have narrowed it


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644, exclusive: bool = False
) -> Path:
    """Writes ``data`` to ``path``: temp file + fsync, rename over ``path``, fsync the folder.

    Args:
      path: the target; its folder is created if missing.
      data: the bytes.
      mode: the file's permission bits (e.g. ``0o600`` for secrets).
      exclusive: link instead of rename, so an existing ``path`` is kept (the caller reads
        whichever file won: e.g. a key two processes create at once).

    Returns:
      ``path`` as a :class:`~pathlib.Path`.
    """
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    try:
        _write_synced(tmp, data, mode)
        if exclusive:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, out)
        else:
            tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(out.parent)
    return out


def atomic_write_dir(
    path: str | os.PathLike[str], files: Mapping[str, bytes], *, mode: int = 0o644
) -> Path:
    """Writes a folder of ``{name: bytes}``: a fresh sibling folder (every file fsynced) swapped
    into place, so ``path`` holds the old set of files or the new one."""
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    old = out.with_name(f".{out.name}.old")
    try:
        for name, data in files.items():
            _write_synced(tmp / name, data, mode)
        tmp.chmod(0o755)
        fsync_dir(tmp)
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        tmp.rename(out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out
