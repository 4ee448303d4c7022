"""The pretraining job: epochs, plateau learning-rate cuts, early stopping, checkpoints, resume."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from devices.files import atomic_write
from pretrain.config import TrainConfig
from pretrain.train.artifacts import params_digest, save_model
from pretrain.train.checkpoint import Checkpointer, CheckpointError
from pretrain.train.datasets import Splits, load_splits
from pretrain.train.optim import make_plateau, plateau_step
from pretrain.train.trainer import Trainer

log = logging.getLogger("pocketfit.pretrain")

# Keys that may differ between a run and its resumption; any other difference is refused.
RESUMABLE_CHANGES = frozenset({"epochs", "early_stop_patience", "keep_checkpoints"})


class FitResult(NamedTuple):
    """What a finished run produced.

    Attributes:
      params: the model parameters with the best validation error (last epoch's if no
        validation); a task's own parameters (a classifier over identities) are not included.
      val_error: their validation error (0..1; the task's error: EER for embedding tasks), or NaN
        without validation.
      test_error: their test error (0..1).
      epochs: epochs completed.
      wall_s: wall time of this invocation.
      images_per_s: median training throughput over this invocation's epochs.
      history: one dict per epoch, as written to ``metrics.jsonl``.
      model_dir: where the final model was written.
    """

    params: Any
    val_error: float
    test_error: float
    epochs: int
    wall_s: float
    images_per_s: float
    history: list[dict[str, Any]]
    model_dir: Path


class _MetricsLog:
    """``metrics.jsonl``: one JSON line per epoch; on resume, lines after the resumed epoch go."""

    def __init__(self, path: Path, keep_through_epoch: int, enabled: bool) -> None:
        self.path, self.enabled = path, enabled
        self.lines: list[dict[str, Any]] = []
        if enabled and path.exists():
            for text in path.read_text(errors="replace").splitlines():
                record = _parse_line(text)
                if record is not None and record["epoch"] <= keep_through_epoch:
                    self.lines.append(record)
        if enabled:
            self._rewrite()

    def _rewrite(self) -> None:
        text = "".join(json.dumps(r) + "\n" for r in self.lines)
        atomic_write(self.path, text.encode())

    def add(self, record: dict[str, Any]) -> None:
        self.lines.append(record)
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def _parse_line(text: str) -> dict[str, Any] | None:
    """One metrics record, or None for a line a kill tore mid-write (it is rewritten on resume)."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
        return None
    return record


def _copy(tree: Any) -> Any:
    return jax.tree.map(jnp.copy, tree)


def improved(error: float, best: Any) -> bool:
    """Whether a validation ``error`` is a new best against ``best``, kept in float32 in the run
    state. Both sides are compared in float32: comparing the float64 error with the float32 best
    made an exact tie an improvement whenever float32 rounded that value up (0.07 -> 0.0700000003),
    and not otherwise, so ties reset early stopping or not depending on the value."""
    return bool(np.float32(error) < np.float32(best))


def moved_with_the_run(old: str, new: str, where: Path) -> bool:
    """Whether ``init_from`` changed only because the run's folder moved: ``new`` lies in the
    staged run's folder (``where``'s parent) and ``old`` ends with the same path inside it (a
    later stage starts from an earlier stage's model, recorded as an absolute path)."""
    if not old or not new:
        return False
    try:
        inside = Path(new).resolve().relative_to(Path(where).resolve().parent)
    except ValueError:
        return False
    return Path(old).parts[-len(inside.parts) :] == inside.parts


def _check_resumable(saved: dict[str, Any], config: TrainConfig, where: Path) -> None:
    now = config.to_dict()
    # A key added to TrainConfig after the checkpoint was written had its default then.
    defaults = TrainConfig().to_dict()
    saved = {**{f.name: defaults[f.name] for f in dataclasses.fields(TrainConfig)}, **saved}
    if moved_with_the_run(saved.get("init_from", ""), now["init_from"], where):
        log.info(
            "init_from moved with the run folder: %s -> %s", saved["init_from"], now["init_from"]
        )
        saved["init_from"] = now["init_from"]
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k])
    if changed:
        diffs = "; ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        raise CheckpointError(
            f"cannot resume {where}: the config changed ({diffs}). Only "
            f"{', '.join(sorted(RESUMABLE_CHANGES))} may change on resume."
        )


def _stopped_early(run: dict[str, Any], config: TrainConfig, *, say: bool = False) -> bool:
    """Whether ``run`` has met an early-stopping rule (no better epoch for
    ``early_stop_patience`` epochs, or the rate cut below ``min_lr_scale``)."""
    if int(run["epochs_since_best"]) >= config.early_stop_patience:
        if say:
            log.info("early stop: no improvement for %d epochs", config.early_stop_patience)
        return True
    if float(run["plateau"].scale) < config.min_lr_scale:
        if say:
            log.info("early stop: learning rate cut below %g of the base", config.min_lr_scale)
        return True
    return False


def fit(
    config: TrainConfig,
    workdir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    splits: Splits | None = None,
    task: Any = None,
) -> FitResult:
    """Trains ``config`` in ``workdir``: checkpoints every epoch, writes the best model at the end.

    Args:
      config: the run.
      workdir: holds ``checkpoints/``, ``metrics.jsonl`` and, at the end, ``model/``.
      resume: continue from the newest checkpoint in ``workdir`` (exactly: same batches, same
        state); without it, a workdir that already has checkpoints is refused.
      progress: show a progress bar (process 0 only).
      splits: preloaded data; loaded from ``config.dataset`` when omitted.
      task: a built task instead of ``config.task`` (:class:`Trainer`'s ``task``); a resumed run
        must be given the same one.

    Returns:
      A :class:`FitResult`.
    """
    started = time.perf_counter()
    workdir = Path(workdir)
    primary = jax.process_index() == 0
    splits = splits or load_splits(config)
    num_classes = int(splits.train.labels.max()) + 1 if len(splits.train) else 0
    trainer = Trainer(config, splits.train.images, num_classes=num_classes, task=task)
    init_key, data_key = jax.random.split(jax.random.key(config.seed))
    plateau = make_plateau(config)

    state = trainer.init_state(init_key, splits.train)
    # read now, beside the weights init_state loaded: the folder may be gone when the run ends
    started_from = (
        {"init_from_params_sha256": params_digest(config.init_from)} if config.init_from else {}
    )
    # The train step donates its state, so nothing else may hold the state's buffers: copies.
    run: dict[str, Any] = trainer.replicate(
        {
            "train": state,
            "plateau": plateau.init(state.params),
            "best_params": _copy(state.params),
            "best_val_error": jnp.asarray(jnp.inf, jnp.float32),
            "epochs_since_best": jnp.zeros((), jnp.int32),
            "epoch": jnp.zeros((), jnp.int32),
        }
    )
    ckpt = Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints)
    latest = ckpt.latest()
    if latest is not None and not resume:
        raise CheckpointError(
            f"{workdir} already has checkpoints (newest: epoch {latest}). Pass --resume to "
            f"continue that run, or choose a new --workdir."
        )
    if resume and latest is not None:
        run, meta = ckpt.restore(latest, run)
        _check_resumable(meta["config"], config, workdir)
        log.info("resumed %s at epoch %d", workdir, latest)
    elif resume:
        log.info("nothing to resume in %s; starting fresh", workdir)
    start_epoch = int(run["epoch"])
    if _stopped_early(run, config):  # a run that stopped early stays stopped when resumed
        start_epoch = config.epochs
    if primary:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    metrics = _MetricsLog(workdir / "metrics.jsonl", start_epoch, enabled=primary)

    rates = []
    for epoch in range(start_epoch, config.epochs):
        state, stats = trainer.train_epoch(
            run["train"], splits.train, key=data_key, epoch=epoch, progress=progress
        )
        monitored = stats.error
        val_loss = val_error = math.nan
        if splits.val is not None:
            val = trainer.evaluate(state.params, splits.val)
            val_loss, val_error, monitored = val.loss, val.error, val.error
        run["plateau"] = plateau_step(plateau, run["plateau"], monitored)
        run["train"] = state._replace(lr_scale=_copy(run["plateau"].scale))
        if improved(monitored, run["best_val_error"]):
            run["best_params"] = _copy(state.params)
            run["best_val_error"] = jnp.asarray(monitored, jnp.float32)
            run["epochs_since_best"] = jnp.zeros((), jnp.int32)
        else:
            run["epochs_since_best"] = run["epochs_since_best"] + 1
        run["epoch"] = jnp.asarray(epoch + 1, jnp.int32)
        run = trainer.replicate(run)
        record = {
            "epoch": epoch + 1,
            "step": int(state.step),
            "lr": float(f"{config.learning_rate * float(state.lr_scale):.6g}"),
            "train_loss": stats.loss,
            "train_error": stats.error,
            **{f"train_{k}": v for k, v in stats.extra.items()},
            "val_loss": val_loss,
            "val_error": val_error,
            "epoch_s": stats.seconds,
            "images_per_s": stats.images_per_s,
        }
        metrics.add(record)
        rates.append(stats.images_per_s)
        log.info(
            "epoch %d/%d  loss %.4f  train err %.2f%%  val err %.2f%%  lr %.2e  %.0f img/s",
            epoch + 1,
            config.epochs,
            stats.loss,
            100 * stats.error,
            100 * val_error,
            record["lr"],
            stats.images_per_s,
        )
        ckpt.save(epoch + 1, run, {"config": config.to_dict(), "record": record})
        if _stopped_early(run, config, say=True):
            break
    ckpt.close()

    best = trainer.task.model_params(run["best_params"])
    best_val = float(run["best_val_error"]) if splits.val is not None else math.nan
    test = trainer.evaluate(run["best_params"], splits.test)
    epochs_done = int(run["epoch"])
    model_dir = workdir / "model"
    if primary:
        save_model(
            model_dir,
            model=config.model,
            model_options=dict(config.model_options),
            params=best,
            info={
                "config": config.to_dict(),
                "task": config.task,
                "error_kind": trainer.task.error_name,
                "epochs": epochs_done,
                "steps": int(run["train"].step),
                "wall_s": time.perf_counter() - started,
                "val_error_pct": 100 * best_val,
                "test_error_pct": 100 * test.error,
                **started_from,
            },
        )
    rates_sorted = sorted(r for r in rates if not math.isnan(r))
    median = rates_sorted[len(rates_sorted) // 2] if rates_sorted else math.nan
    return FitResult(
        params=best,
        val_error=best_val,
        test_error=test.error,
        epochs=epochs_done,
        wall_s=time.perf_counter() - started,
        images_per_s=median,
        history=metrics.lines,
        model_dir=model_dir,
    )
