"""Durable file writes: a reader sees the old file or the new one, never a torn one.

One recipe for every writer (records and keys on the device, bundles, artifacts, checkpoints and
bench results on the server): write a temp file beside the target, fsync it, rename (or link) it
into place, fsync the folder so the rename itself survives a power cut. A folder is replaced by
exchanging it with a finished sibling in one ``renameat2(RENAME_EXCHANGE)`` (Linux), so there is
no moment without it. Standard library only.

Every step calls :func:`crash_point`: :mod:`devices.crash` arms it in a child process to SIGKILL
the writer at the N-th step, which is how the torn states are tested (a no-op otherwise).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

STALE_S = 600.0  # a temp folder this old is a killed writer's, removed by the next write
CRASH_CHUNK = 4096  # bytes per write while crash injection is armed (a kill may tear a file)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class _Crash:
    """Crash injection state: ``after`` steps to take before the SIGKILL (None: disarmed)."""

    after: int | None = None
    steps = 0


def arm_crash(after: int | None) -> None:
    """Kills this process (SIGKILL) at write step ``after`` (0 = the first); None disarms and
    resets the step count. For :mod:`devices.crash` only."""
    _Crash.after, _Crash.steps = after, 0


def crash_steps() -> int:
    """How many write steps ran since :func:`arm_crash` (a dry run counts a writer's steps)."""
    return _Crash.steps


def crash_point() -> None:
    """A point between two write steps where an armed crash injection kills the process."""
    if _Crash.after is not None and _Crash.steps >= _Crash.after:
        os.kill(os.getpid(), signal.SIGKILL)
    _Crash.steps += 1


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Makes a rename or link inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    crash_point()


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    crash_point()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        if _Crash.after is None:
            f.write(data)
        else:  # unbuffered pieces, so a kill leaves a partly written file
            for start in range(0, len(data), CRASH_CHUNK):
                os.write(f.fileno(), data[start : start + CRASH_CHUNK])
                crash_point()
        f.flush()
        os.fsync(f.fileno())
    crash_point()
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
        crash_point()
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(out.parent)
    return out


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one step (Linux ``renameat2``); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def check_replaceable(out: Path, marker: str | None) -> None:
    """Raises FolderError unless :func:`atomic_write_dir` may replace ``out`` (missing, an empty
    folder, or one holding ``marker`` (any file, for None) and no subfolder)."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise FolderError(f"{out} is a file, not a folder. Nothing was written.")
    entries = list(out.iterdir())
    folders = sorted(p.name for p in entries if p.is_dir())
    if entries and (folders or (marker is not None and not (out / marker).is_file())):
        held = f"holds folders ({', '.join(folders[:3])})" if folders else f"has no {marker}"
        raise FolderError(
            f"{out} {held}: it is not a folder this writes, and replacing it would delete what "
            "it holds. Nothing was written; choose a new or empty folder."
        )


def _remove_stale(out: Path) -> None:
    """Removes the temp folders writers of ``out`` left when killed (older than STALE_S)."""
    now = time.time()
    for stale in out.parent.glob(f".{out.name}.*"):
        with contextlib.suppress(OSError):
            if stale.is_dir() and now - stale.stat().st_mtime > STALE_S:
                shutil.rmtree(stale)


class FolderError(OSError):
    """A folder write refused: ``path`` holds something other than the kind of folder the writer
    replaces (nothing was written)."""


def atomic_write_dir(
    path: str | os.PathLike[str],
    files: Mapping[str, bytes],
    *,
    marker: str | None,
    mode: int = 0o644,
) -> Path:
    """Writes a folder of ``{name: bytes}``: a fresh sibling folder (every file fsynced) swapped
    into place, so ``path`` holds the old set of files or the new one.

    The swap is one atomic exchange where the system has it (Linux); elsewhere the old folder is
    renamed aside first, leaving a moment without ``path`` (``.<name>.old`` holds it then).

    Args:
      marker: the file that marks the kind of folder this writer writes (an artifact's
        ``manifest.json``). The swap drops whatever the old folder held, so an existing ``path``
        is replaced only if it is an empty folder, or one that holds ``marker`` and no
        subfolder: a user's folder of documents, a training run or a backbone given where an
        artifact belongs stays as it was. None: a writer that carries the old folder's files
        over into ``files`` (a model's save), so any folder without subfolders may be replaced.

    Raises:
      FolderError: ``path`` is a file, or a folder of another kind; nothing is written.
    """
    out = Path(path).expanduser()
    check_replaceable(out, marker)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    old = out.with_name(f".{out.name}.old")
    try:
        for name, data in files.items():
            _write_synced(tmp / name, data, mode)
        tmp.chmod(0o755)
        fsync_dir(tmp)
        if out.exists() and _exchange(tmp, out):
            old = tmp  # the old files, now under the temp name
        else:
            if out.exists():
                shutil.rmtree(old, ignore_errors=True)
                out.rename(old)
                crash_point()
            tmp.rename(out)
        crash_point()
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # the new files, or the old ones once exchanged
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out
