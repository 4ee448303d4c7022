"""Arrays a training command draws once and keeps in its work folder: named by a digest of the
settings that drew them, written whole or not at all (a stopped run leaves no half file)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def settings_digest(settings: Any) -> str:
    """16 hex digits of the JSON of ``settings`` (keys sorted; ranges and tuples as lists)."""
    text = json.dumps(settings, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_npz(path: Path, **arrays: Any) -> None:
    """Writes ``arrays`` to ``path`` through a ``.partial.npz`` beside it, renamed when done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)
