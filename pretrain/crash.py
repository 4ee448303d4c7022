"""Crash injection targets of the pretraining writers (run by :func:`devices.crash.crash`).

``final_model``: a trained model's ``params.npz`` + ``model.json`` replaced by another
(:func:`pretrain.save_model`), read back with :func:`pretrain.load_model`; ``checkpoint``: the
next epoch's Orbax checkpoint written beside the previous one (keeping one, so the previous is
deleted once the new is complete), read back with :class:`pretrain.train.checkpoint.Checkpointer`
and written again after the kill, as ``--resume`` does. Orbax writes its own files, so the
checkpoint is killed after a random delay; the model's writes go through ``devices.files``.
The seed parameters are the committed ``lenet300`` model's.

:func:`resume_equal`: a pretraining run SIGKILLed inside an epoch and continued with ``--resume``
ends with the parameters of the same run uninterrupted.
"""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from flax import traverse_util

from devices.crash import CrashTarget
from pretrain.train.artifacts import load_model, save_model

# A run of seconds: LeNet-300-100 on 12,000 MNIST digits, 4 epochs of 750 steps.
RESUME_OVERRIDES = ("train_size=12000", "val_size=500", "epochs=4", "batch_size=16")
ROOT = Path(__file__).resolve().parents[1]
SEED_MODEL = ROOT / "notebooks/results/models/lenet300"


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


class ResumeCheck(NamedTuple):
    """A run killed mid-epoch and resumed, against the same run uninterrupted.

    Attributes:
      equal: every final parameter bitwise equal, and every epoch's training loss.
      max_abs_diff: the largest parameter difference (0.0 when equal).
      kills: per kill, the epoch it aimed at, how far into it (seconds after the previous
        epoch's checkpoint was complete) and where it landed (``"inside the epoch"``).
      epochs: epochs of each run.
      command: the uninterrupted run's command.
    """

    equal: bool
    max_abs_diff: float
    kills: list[dict[str, Any]]
    epochs: int
    command: list[str]


def _checkpointed(workdir: Path, epoch: int) -> bool:
    return (workdir / "checkpoints" / str(epoch) / "_CHECKPOINT_METADATA").exists()


def _losses(workdir: Path) -> list[float]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["train_loss"] for line in lines]


def _kill_in_epoch(
    command: list[str], workdir: Path, epoch: int, fraction: float, epoch_s: float
) -> float:
    """Runs ``command`` until ``fraction`` of an epoch after checkpoint ``epoch - 1``, SIGKILLs it;
    returns how far after that checkpoint it fell (seconds)."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    try:
        while not _checkpointed(workdir, epoch - 1):
            if process.poll() is not None:
                raise RuntimeError(f"the run ended before epoch {epoch}: {process.stderr.read()}")
            time.sleep(0.002)
        start = time.perf_counter()
        time.sleep(fraction * epoch_s)
        process.send_signal(signal.SIGKILL)
        process.wait()
        into = time.perf_counter() - start
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    return into


def _landed(workdir: Path, epoch: int) -> str:
    """Where a kill aimed inside ``epoch`` fell (a loaded machine may run the epoch faster or
    slower than measured)."""
    done = len(_losses(workdir))
    if done == epoch - 1 and not _checkpointed(workdir, epoch):
        return "inside the epoch"
    return f"after {done} epochs"


def resume_equal(
    workdir: Path,
    *,
    config: str = str(ROOT / "pretrain/configs/lenet300.py"),
    overrides: tuple[str, ...] = RESUME_OVERRIDES,
    kill_epochs: tuple[int, ...] = (2, 3),
    seed: int = 0,
) -> ResumeCheck:
    """Trains ``config`` twice: straight through, and SIGKILLed inside each of ``kill_epochs``
    then continued with ``--resume``; compares the final models bitwise.

    Args:
      workdir: scratch folder (two run folders go in it).
      config: the config file (``python -m pretrain --config``).
      overrides: its ``--set`` values (small data, so a run takes seconds).
      kill_epochs: the epochs to kill inside (each after the previous epoch's checkpoint).
      seed: chooses how far into each epoch the kill falls (20-80% of its measured length).
    """
    base = [sys.executable, "-m", "pretrain", "--config", config, "--no-progress"]
    for value in overrides:
        base += ["--set", value]
    straight, killed = workdir / "straight", workdir / "killed"
    command = [*base, "--workdir", str(straight)]
    subprocess.run(command, check=True, capture_output=True)
    records = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    epoch_s = min(r["epoch_s"] for r in records[1:])  # the first epoch compiles
    rng = random.Random(seed)
    kills: list[dict[str, Any]] = []
    for epoch in kill_epochs:
        resume = ["--resume"] if kills else []
        fraction = rng.uniform(0.2, 0.8)
        into = _kill_in_epoch(
            [*base, "--workdir", str(killed), *resume], killed, epoch, fraction, epoch_s
        )
        kills.append(
            {
                "epoch": epoch,
                "seconds_in": round(into, 3),
                "epoch_s": round(epoch_s, 3),
                "landed": _landed(killed, epoch),
            }
        )
    subprocess.run([*base, "--workdir", str(killed), "--resume"], check=True, capture_output=True)
    a, b = load_model(straight / "model"), load_model(killed / "model")
    fa, fb = _flat(a.params), _flat(b.params)
    diff = (
        max(float(np.max(np.abs(fa[k] - fb[k]))) for k in fa)
        if fa.keys() == fb.keys()
        else math.inf
    )
    equal = (
        fa.keys() == fb.keys()
        and all(np.array_equal(fa[k], fb[k]) for k in fa)
        and _losses(straight) == _losses(killed)
    )
    return ResumeCheck(equal, diff, kills, len(records), command)
