"""A model from a run's checkpoint: the best parameters so far of a run that has not finished
(or an earlier epoch's), written as :func:`fit` writes its final model, without the run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pretrain.config import ConfigError, make_config
from pretrain.train.artifacts import save_model
from pretrain.train.checkpoint import Checkpointer, CheckpointError
from pretrain.train.tasks import build_task

SNAPSHOT = "snapshot"
"""The default folder (in the run's folder) a snapshot goes to: not ``model/``, whose presence
tells a staged run's resume that the stage finished."""


def run_folder(workdir: str | Path, stage: str | None = None) -> Path:
    """The folder holding ``checkpoints/``: ``workdir`` itself (a single run), ``workdir/stage``,
    or a staged run's only stage with checkpoints.

    Raises:
      CheckpointError: no such folder, or several stages and none named.
    """
    root = Path(workdir)
    if stage:
        folder = root / stage
        if not (folder / "checkpoints").is_dir():
            raise CheckpointError(f"{folder} has no checkpoints/ (is {stage!r} a stage here?).")
        return folder
    if (root / "checkpoints").is_dir():
        return root
    stages = sorted(p.parent.name for p in root.glob("*/checkpoints") if p.is_dir())
    if len(stages) == 1:
        return root / stages[0]
    if not stages:
        raise CheckpointError(f"{root} holds no checkpoints/ (nor does any stage folder in it).")
    raise CheckpointError(
        f"{root} has several stages with checkpoints ({', '.join(stages)}); name one (--stage)."
    )


def snapshot_model(
    workdir: str | Path,
    *,
    stage: str | None = None,
    epoch: int | None = None,
    out: str | Path | None = None,
) -> Path:
    """Writes the best parameters of a run's checkpoint as a model.

    Args:
      workdir: the run's ``--workdir`` (or a stage's folder in it).
      stage: the stage, for a staged run with several.
      epoch: the checkpoint (default: the newest); the model is the best of epochs 1..epoch by
        the run's own monitored error, as :func:`fit` would have written had it ended there.
      out: where (default: ``<run folder>/snapshot``).

    Returns:
      The model folder; its ``info`` is :func:`fit`'s (``config``, ``task``, ``epochs``,
      ``val_error_pct``...) plus ``snapshot`` (which checkpoint); no ``test_error_pct`` (that
      needs the run's test split: ``fit`` measures it at the end).

    Raises:
      CheckpointError: no checkpoint, or no such epoch.
    """
    folder = run_folder(workdir, stage)
    ckpt = Checkpointer(folder / "checkpoints")
    try:
        latest = ckpt.latest()
        if latest is None:
            raise CheckpointError(f"{folder / 'checkpoints'} holds no checkpoint yet.")
        epoch = latest if epoch is None else epoch
        saved = ckpt.epochs()
        if epoch not in saved:
            kept = ", ".join(str(e) for e in saved)
            raise CheckpointError(f"no checkpoint of epoch {epoch} in {folder} (kept: {kept}).")
        state, meta = ckpt.restore_saved(epoch)
    finally:
        ckpt.close()
    try:
        config = make_config(meta["config"], where=str(folder / "checkpoints"))
        task = build_task(config.task, config.task_options, seed=config.seed)
    except (KeyError, ValueError) as err:
        raise ConfigError(f"the checkpoint's config in {folder} cannot be rebuilt: {err}") from None
    best = float(state["best_val_error"])
    info: dict[str, Any] = {
        "config": config.to_dict(),
        "task": config.task,
        "error_kind": task.error_name,
        "epochs": int(state["epoch"]),
        "steps": int(state["train"]["step"]),
        "val_error_pct": 100 * best if math.isfinite(best) else math.nan,
        "snapshot": {"run": str(folder), "checkpoint": epoch},
    }
    return save_model(
        Path(out) if out else folder / SNAPSHOT,
        model=config.model,
        model_options=dict(config.model_options),
        params=task.model_params(state["best_params"]),
        info=info,
    )
