"""A chosen :class:`~pretrain.compression.structured.Structure` on disk, so that a resumed run
reads its particle filters' choice back instead of running them again.

One ``.npz`` of the boolean masks (``{field}/{layer}``) and one ``.json`` beside it with what
made the choice (the recipe) and its log; :func:`load_structure` returns None when either is
missing or the recipe differs (the choice is then made again).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from devices.files import atomic_write
from pretrain.compression.base import named_leaves
from pretrain.compression.structured import Structure


def params_digest(params: Any) -> str:
    """SHA-256 of a parameter tree's leaves (names, shapes, dtypes, bytes; tree order): which
    network a saved choice was made on."""
    h = hashlib.sha256()
    for name, leaf in named_leaves(params).items():
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{name}:{a.shape}:{a.dtype};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_structure(path: str | Path, structure: Structure, made_by: Any, log: Any) -> None:
    """Writes ``structure`` to ``path`` (``.npz``) and ``made_by`` / ``log`` beside it
    (``.json``; anything JSON can hold, numbers as floats)."""
    path = Path(path)
    arrays: dict[str, Any] = {
        f"{field}/{layer}": np.asarray(mask, bool)
        for field, masks in structure._asdict().items()
        for layer, mask in masks.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, buffer.getvalue())
    meta = {"made_by": made_by, "log": log}
    atomic_write(path.with_suffix(".json"), json.dumps(meta, default=float).encode())


def load_structure(path: str | Path, made_by: Any) -> tuple[Structure, Any] | None:
    """The structure saved at ``path`` and its log, if it was made by ``made_by`` (compared
    through JSON); otherwise None."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta["made_by"] != json.loads(json.dumps(made_by, default=float)):
        return None
    fields: dict[str, dict[str, np.ndarray]] = {f: {} for f in Structure._fields}
    with np.load(path) as data:
        for key in data.files:
            field, layer = key.split("/", 1)
            fields[field][layer] = np.asarray(data[key], bool)
    return Structure(**fields), meta["log"]
