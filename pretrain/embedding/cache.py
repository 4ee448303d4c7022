"""An on-disk cache of generated arrays, keyed by everything they depend on.

Synthetic fingerprints take minutes per thousand identities to generate; a training run and the
evaluation that follows it read the same prints, so they are generated once. Each entry is an
``.npz`` of arrays and a ``.json`` that names its key and the SHA-256 of the ``.npz``. Both are
written atomically (temp file, fsync, rename), the ``.json`` last, so an entry either validates
completely or is rebuilt; a stale entry (other key, other code) is never read, because the key
is part of the file name and is compared again on load.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from devices.files import atomic_write

log = logging.getLogger("pocketfit.cache")

ENV_VAR = "POCKETFIT_CACHE"
FORMAT = "pocketfit-cache/1"


def cache_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """``directory``, else ``$POCKETFIT_CACHE``, else ``runs/cache`` (never committed)."""
    if directory:
        return Path(directory)
    return Path(os.environ.get(ENV_VAR) or "runs/cache")


def key_digest(key: Mapping[str, Any]) -> str:
    """A short stable digest of a JSON-able key."""
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def code_digest(sources: Iterable[ModuleType | Path]) -> str:
    """16 hex digits of the code in ``sources`` (modules or ``.py`` files), for cache keys: their
    syntax trees without docstrings, so a comment, a docstring or a reformatting keeps every
    entry (a figure updated in a docstring no longer rebuilds 30,000 prints), while a change to
    what runs rebuilds them."""
    digest = hashlib.sha256()
    for source in sources:
        path = source if isinstance(source, Path) else Path(inspect.getsourcefile(source) or "")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # a bare string (a docstring, a constant's note) does nothing
            for field in ("body", "orelse", "finalbody"):
                statements = getattr(node, field, None)
                if isinstance(statements, list) and any(map(_is_docstring, statements)):
                    kept = [st for st in statements if not _is_docstring(st)]
                    setattr(node, field, kept or [ast.Pass()])
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:16]


def _load(npz_path: Path, meta_path: Path, key: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The entry's arrays, or None (with the reason logged) if it is missing or invalid."""
    if not (npz_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        data = npz_path.read_bytes()
        if meta.get("format") != FORMAT or meta.get("key") != json.loads(json.dumps(key)):
            raise ValueError("its key differs")
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise ValueError("its checksum differs (truncated or modified)")
        with np.load(io.BytesIO(data)) as npz:
            arrays = {k: npz[k] for k in npz.files}
        shapes = {k: list(v.shape) for k, v in arrays.items()}
        if shapes != meta.get("shapes"):
            raise ValueError(f"its arrays have shapes {shapes}, expected {meta.get('shapes')}")
    except (ValueError, OSError, json.JSONDecodeError) as err:
        log.warning("cache entry %s is invalid (%s); rebuilding it", npz_path, err)
        return None
    return arrays


def _paths(
    key: Mapping[str, Any], directory: str | os.PathLike[str] | None, prefix: str
) -> tuple[Path, Path]:
    name = f"{prefix}-{key_digest(key)}"
    folder = cache_dir(directory)
    return folder / f"{name}.npz", folder / f"{name}.json"


def lookup(
    key: Mapping[str, Any],
    *,
    directory: str | os.PathLike[str] | None = None,
    prefix: str = "entry",
) -> dict[str, np.ndarray] | None:
    """The arrays of a valid entry for ``key``, or None (missing, stale or damaged)."""
    return _load(*_paths(key, directory, prefix), key)


def store(
    key: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    directory: str | os.PathLike[str] | None = None,
    prefix: str = "entry",
) -> None:
    """Writes ``arrays`` as the entry of ``key`` (atomically, the ``.json`` last)."""
    npz_path, meta_path = _paths(key, directory, prefix)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    stored: dict[str, Any] = dict(arrays)
    np.savez(buffer, **stored)
    data = buffer.getvalue()
    meta = {
        "format": FORMAT,
        "key": key,
        "sha256": hashlib.sha256(data).hexdigest(),
        "shapes": {k: list(v.shape) for k, v in arrays.items()},
    }
    atomic_write(npz_path, data)
    atomic_write(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())


def cached(
    key: Mapping[str, Any],
    build: Callable[[], dict[str, np.ndarray]],
    *,
    directory: str | os.PathLike[str] | None = None,
    prefix: str = "entry",
) -> dict[str, np.ndarray]:
    """The arrays ``build()`` returns for ``key``, from the cache when a valid entry exists.

    Args:
      key: everything the arrays depend on (JSON-able); compared exactly on load.
      build: makes the arrays when the cache has no valid entry.
      directory: cache folder (see :func:`cache_dir`).
      prefix: file name prefix, for people looking at the folder.
    """
    arrays = lookup(key, directory=directory, prefix=prefix)
    if arrays is not None:
        return arrays
    arrays = build()
    store(key, arrays, directory=directory, prefix=prefix)
    return arrays
