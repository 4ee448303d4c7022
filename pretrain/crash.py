"""Crash injection targets of the pretraining writers (run by :func:`devices.crash.crash`).

``final_model``: a trained model's ``params.npz`` + ``model.json`` replaced by another
(:func:`pretrain.save_model`), read back with :func:`pretrain.load_model`; ``checkpoint``: the
next epoch's Orbax checkpoint written beside the previous one (keeping one, so the previous is
deleted once the new is complete), read back with :class:`pretrain.train.checkpoint.Checkpointer`
and written again after the kill, as ``--resume`` does. Orbax writes its own files, so the
checkpoint is killed after a random delay; the model's writes go through ``devices.files``.
The seed parameters are the committed ``lenet300`` model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from flax import traverse_util

from devices.crash import CrashTarget
from pretrain.train.artifacts import load_model, save_model

SEED_MODEL = Path(__file__).resolve().parents[1] / "notebooks/results/models/lenet300"


def _flat(params: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def _versions() -> tuple[Any, list[dict[str, Any]]]:
    seed = load_model(SEED_MODEL)
    old = seed.params
    new = traverse_util.unflatten_dict({k: -v for k, v in _flat(old).items()}, sep="/")
    return seed, [old, new]


def _which(found: dict[str, np.ndarray], versions: list[dict[str, Any]]) -> str:
    for name, params in zip(("old", "new"), versions, strict=True):
        expected = _flat(params)
        if found.keys() == expected.keys() and all(
            np.array_equal(found[k], expected[k]) for k in found
        ):
            return name
    return "parameters that are neither"


def _model_target() -> CrashTarget:
    seed, versions = _versions()

    def save(folder: Path, which: int) -> None:
        save_model(
            folder / "model",
            model=seed.info["model"],
            model_options=seed.info["model_options"],
            params=versions[which],
        )

    return CrashTarget(
        lambda f: save(f, 0),
        lambda f: save(f, 1),
        lambda f: _which(_flat(load_model(f / "model").params), versions),
    )


def _checkpoint_target() -> CrashTarget:
    import jax.numpy as jnp

    from pretrain.train.checkpoint import Checkpointer

    _, versions = _versions()
    states: list[Any] = []  # built on first use: JAX starts threads, and steps targets fork

    def run_state(which: int) -> Any:
        if not states:
            states.extend(
                {"params": v, "momentum": jnp.zeros(1), "epoch": jnp.asarray(e, jnp.int32)}
                for e, v in enumerate(versions, 1)
            )
        return states[which]

    def save(folder: Path, which: int) -> None:
        ckpt = Checkpointer(folder / "checkpoints", keep=1)
        ckpt.save(which + 1, run_state(which), {"epoch": which + 1})
        ckpt.close()

    def state(folder: Path) -> str:
        ckpt = Checkpointer(folder / "checkpoints", keep=1)
        latest = ckpt.latest()
        if latest not in (1, 2):
            return f"newest checkpoint {latest}"
        restored, _ = ckpt.restore(latest, run_state(0))
        ckpt.close()
        found = _which(_flat(restored["params"]), versions)
        if found != ("old", "new")[latest - 1]:
            return f"epoch {latest} holds {found}"
        if found == "old":  # what --resume does next: write the epoch the kill interrupted
            save(folder, 1)
            if state(folder) != "new":
                return "the checkpoint written after the kill does not read back"
        return found

    return CrashTarget(
        lambda f: save(f, 0), lambda f: save(f, 1), state, kill="delay", warm=lambda: run_state(0)
    )


def targets(workdir: Path) -> dict[str, CrashTarget]:
    """The model and checkpoint writers (``workdir`` is unused)."""
    return {"final_model": _model_target(), "checkpoint": _checkpoint_target()}
