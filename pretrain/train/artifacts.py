"""Trained models on disk: ``params.npz`` (flattened parameter tree) + ``model.json``.

The format is plain numpy and JSON so any later stage (compression, export, notebooks) reads it
without the training state, and the committed models under ``notebooks/results/models/`` stay small.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import numpy as np
from flax import traverse_util

from devices.files import atomic_write_dir, check_replaceable
from pretrain.models import build_model, count_params

FORMAT = "pocketfit-model/1"


class SavedModel(NamedTuple):
    """A model read back from disk: the built module, its parameters and its metadata."""

    module: nn.Module
    params: dict[str, Any]
    info: dict[str, Any]


def save_model(
    directory: str | os.PathLike[str],
    *,
    model: str,
    model_options: dict[str, Any],
    params: Any,
    info: dict[str, Any] | None = None,
) -> Path:
    """Writes ``params.npz`` and ``model.json`` into ``directory``, swapped in together
    (:func:`devices.files.atomic_write_dir`; other files in ``directory`` are kept); the pair is
    checked on load (``model.json`` records the SHA-256 of its ``params.npz``).

    Args:
      directory: created if missing.
      model: registered model name.
      model_options: its options, so :func:`load_model` rebuilds the same module.
      params: parameter pytree (nested dicts of arrays).
      info: anything else worth keeping (metrics, config, data).

    Raises:
      devices.files.FolderError: ``directory`` is a file, or a folder with subfolders (a
        training run's: the swap would drop them); nothing is written.
    """
    out = Path(directory)
    check_replaceable(out, None)  # a run's folder (checkpoints/, model/): never written over
    out.mkdir(parents=True, exist_ok=True)
    flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in flat.items()}
    meta = {
        "format": FORMAT,
        "model": model,
        "model_options": {
            k: list(v) if isinstance(v, tuple) else v for k, v in model_options.items()
        },
        "params": count_params(arrays),
        "info": info or {},
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    blob = buffer.getvalue()
    # model.json names the params.npz it belongs to, so load_model refuses a pair of two saves;
    # the pair is swapped in as one folder, so a killed save leaves the previous model readable
    # (found by devices.crash: 4 of 300 kills between two per-file renames lost the model).
    meta["params_sha256"] = hashlib.sha256(blob).hexdigest()
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}  # what else is there
    files["params.npz"] = blob
    files["model.json"] = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
    return atomic_write_dir(out, files, marker=None)  # its other files are carried over


def load_model(directory: str | os.PathLike[str]) -> SavedModel:
    """Reads a model written by :func:`save_model`.

    Raises:
      FileNotFoundError: a file is missing (the message names it).
      ValueError: the files are not a pocketfit model or do not fit the named architecture.
    """
    base = Path(directory)
    for name in ("model.json", "params.npz"):
        if not (base / name).is_file():
            raise FileNotFoundError(f"{base / name} not found: not a pocketfit model directory.")
    try:
        meta = json.loads((base / "model.json").read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{base / 'model.json'} is not valid JSON: {err}") from err
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{base / 'model.json'}: format {meta.get('format')!r}, expected {FORMAT}."
        )
    blob = (base / "params.npz").read_bytes()
    expected = meta.get("params_sha256")  # absent in models saved before it was recorded
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise ValueError(
            f"{base}: params.npz is not the one model.json was saved with (a save was "
            "interrupted between its two files, or a file was replaced); save the model again."
        )
    with np.load(io.BytesIO(blob)) as npz:
        flat = {k: npz[k] for k in npz.files}
    params = traverse_util.unflatten_dict(flat, sep="/")
    module = build_model(meta["model"], **meta["model_options"])
    if count_params(params) != meta["params"]:
        raise ValueError(
            f"{base}: params.npz holds {count_params(params)} parameters, model.json says "
            f"{meta['params']}."
        )
    return SavedModel(module, params, meta)


def params_digest(directory: str | os.PathLike[str]) -> str | None:
    """The SHA-256 of a saved model's ``params.npz`` as its ``model.json`` records it (None for
    a model saved before it was recorded): which weights a run started from, wherever the
    folder it named has gone since."""
    meta = json.loads((Path(directory) / "model.json").read_text())
    return meta.get("params_sha256")
