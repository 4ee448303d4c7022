"""Retraining under a compressor, on the pretraining pipeline (same batches, optimizer, steps).

:class:`CompressedTrainer` is the pretraining :class:`~pretrain.train.Trainer` whose train step
computes the loss on ``compressor.apply(params, state)``: pruned weights get no gradient and stay
zero, shared weights move together with their summed gradient. Everything else (sharded batches,
SGD with momentum and weight decay, evaluation) is the pretraining code.

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016 (prune -> retrain -> quantize -> retrain).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from pretrain.compression.base import Compressor, Params
from pretrain.compression.schedules import Schedule, Sparsity
from pretrain.config import TrainConfig, make_config
from pretrain.data import ArrayDataset, train_batches
from pretrain.train.artifacts import SavedModel
from pretrain.train.datasets import Splits
from pretrain.train.parallel import batch_sharded, global_batch, replicated
from pretrain.train.steps import TrainState, init_state, train_step_fn
from pretrain.train.trainer import Trainer

LrScale = Callable[[int, int], float]  # (epoch, epochs of the phase) -> learning-rate multiplier


class RetrainResult(NamedTuple):
    """What a retraining phase produced.

    Attributes:
      params: the projected parameters of the best epoch (by validation error).
      state: the compressor state after projecting them.
      val_error: their validation error (0..1); NaN without a validation split.
      history: one dict per epoch (``epoch``, ``train_loss``, ``train_error``, ``val_error``).
    """

    params: Params
    state: Any
    val_error: float
    history: list[dict[str, Any]]


class CompressedTrainer(Trainer):
    """A :class:`Trainer` whose train step sees ``compressor.apply(params, state)``.

    Args:
      config: the retraining config (learning rate, weight decay, batch size ...).
      example: one batch of inputs.
      compressor: the compression in force.
      state: its state (masks, assignments), fixed for this trainer.
      task: the training loss (default: the config's task).
    """

    def __init__(
        self,
        config: TrainConfig,
        example: np.ndarray,
        compressor: Compressor,
        state: Any,
        *,
        task: Any = None,
    ) -> None:
        super().__init__(config, example, task=task)
        self.compressor = compressor
        self.state = self.replicate(state)
        module_apply, tx, task = self.module.apply, self.tx, self.task

        def step(train: TrainState, images: jax.Array, labels: jax.Array, cstate: Any) -> Any:
            def apply_fn(variables: dict[str, Any], x: jax.Array) -> Any:
                params, _ = compressor.apply(variables["params"], cstate)
                return module_apply({"params": params}, x)

            # the config's task: classification for the LeNets, the embedding task's margin
            # softmax (its classifier trained beside the model) for an embedding backbone
            return train_step_fn(apply_fn, tx, task)(train, images, labels)

        # The compressor state is an argument, not a closure: as a constant, XLA would fold
        # whole-layer scatters over it at every compile.
        rep, bat = replicated(self.mesh), batch_sharded(self.mesh)
        jitted = jax.jit(
            step, in_shardings=(rep, bat, bat, rep), out_shardings=(rep, rep), donate_argnums=0
        )
        self._train_step = lambda train, images, labels: jitted(train, images, labels, self.state)
        self._project = jax.jit(compressor.apply)

    def use_state(self, state: Any) -> None:
        """Put another compressor state in force (same shapes: the compiled step is reused)."""
        self.state = self.replicate(state)

    def train_steps(
        self,
        train: TrainState,
        dataset: ArrayDataset,
        *,
        steps: int,
        key: jax.Array,
        lr_scale: LrScale | None = None,
        desc: str = "steps",
        progress: bool = True,
    ) -> tuple[TrainState, float]:
        """``steps`` steps over shuffled passes of ``dataset`` (the last pass may stop part-way),
        the learning rate times ``lr_scale(step, steps)``; the state and the mean loss."""
        losses, done, epoch = [], 0, 0
        bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress, leave=False)
        while done < steps:
            for images, labels in train_batches(
                dataset, self.config.batch_size, key=key, epoch=epoch
            ):
                scale = 1.0 if lr_scale is None else float(lr_scale(done, steps))
                train = train._replace(lr_scale=self.replicate(jnp.asarray(scale, jnp.float32)))
                x, y = global_batch(images, self._bat), global_batch(labels, self._bat)
                train, metrics = self._train_step(train, x, y)
                losses.append(metrics["loss"])
                done += 1
                bar.update()
                if done == steps:
                    break
            epoch += 1
        bar.close()
        return train, float(np.mean(jax.device_get(losses))) if losses else math.nan

    def project(self, params: Params) -> tuple[Params, Any]:
        """The compressed parameters (fresh buffers, safe from the step's donation) and state."""
        out, state = self._project(params, self.state)
        return jax.tree.map(jnp.copy, out), state


def retrain_config(saved: SavedModel, **overrides: Any) -> TrainConfig:
    """The pretraining config of ``saved`` with ``overrides`` (e.g. a lower learning rate)."""
    values = dict(saved.info.get("info", {}).get("config", {}))
    values.setdefault("model", saved.info.get("model"))
    values.setdefault("model_options", saved.info.get("model_options", {}))
    values.update(overrides)
    return make_config(values, where="retrain config")


def error_of(trainer: Trainer, params: Params, dataset: ArrayDataset | None) -> float:
    """Error rate (0..1) of ``params`` on ``dataset``; NaN when there is none."""
    return math.nan if dataset is None else trainer.evaluate(params, dataset).error


def retrain(
    compressor: Compressor,
    state: Any,
    params: Params,
    config: TrainConfig,
    splits: Splits,
    *,
    epochs: int,
    key: jax.Array,
    lr_scale: LrScale | None = None,
    task: Any = None,
    progress: bool = True,
) -> RetrainResult:
    """Trains ``params`` for ``epochs`` with ``compressor`` in force; keeps the best epoch.

    Args:
      compressor: the compression in force (its projection is in the loss).
      state: its state (from ``compressor.init``).
      params: starting parameters (projected first).
      config: optimizer and batch settings (see :func:`retrain_config`).
      splits: train / validation / test data; the test split is not used.
      epochs: passes over the training split (0: just project and evaluate).
      key: PRNG key of the batch order.
      lr_scale: ``(epoch, epochs) -> multiplier`` of ``config.learning_rate`` (default 1), e.g.
        :func:`~pretrain.compression.pipeline.cosine`.
      task: the training loss (default the config's task), e.g. a
        :class:`~pretrain.compression.distill.Distillation`; the best epoch is still chosen by
        the config's task's validation error.
      progress: show progress bars.

    Returns:
      A :class:`RetrainResult`; the starting point counts as epoch 0 for "best".
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}.")
    config = dataclasses.replace(config, epochs=max(epochs, 1))  # progress bars count these
    trainer = CompressedTrainer(config, splits.train.images, compressor, state, task=task)
    best, best_state = trainer.project(params)
    best_error = error_of(trainer, best, splits.val)
    history: list[dict[str, Any]] = [{"epoch": 0, "val_error": best_error}]
    # The step donates its state: it must own its buffers, never share them with ``best``.
    train = trainer.replicate(init_state(jax.tree.map(jnp.copy, best), trainer.tx))
    for epoch in range(epochs):
        scale = 1.0 if lr_scale is None else float(lr_scale(epoch, epochs))
        train = trainer.replicate(train._replace(lr_scale=jnp.asarray(scale, jnp.float32)))
        train, stats = trainer.train_epoch(
            train, splits.train, key=key, epoch=epoch, progress=progress
        )
        current, current_state = trainer.project(train.params)
        error = error_of(trainer, current, splits.val)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": stats.loss,
                "train_error": stats.error,
                "val_error": error,
                "lr_scale": scale,
                "seconds": stats.seconds,
            }
        )
        if math.isnan(error) or error <= best_error or math.isnan(best_error):
            best, best_state, best_error = current, current_state, error
    return RetrainResult(best, best_state, best_error, history)


def iterative_pruning(
    make: Callable[[Sparsity], Compressor],
    schedule: Schedule,
    rounds: int,
    params: Params,
    config: TrainConfig,
    splits: Splits,
    *,
    epochs: int | Callable[[int], int],
    key: jax.Array,
    lr_scale: LrScale | None = None,
    task: Any = None,
    progress: bool = True,
) -> tuple[Params, Compressor, Any, list[dict[str, Any]]]:
    """The paper's prune -> retrain cycles: round ``r`` prunes to ``schedule(r)`` then retrains.

    Args:
      make: ``sparsity -> pruning compressor`` (e.g. ``magnitude_pruning`` or an OBD closure).
      schedule: ``round -> sparsity`` (see :mod:`pretrain.compression.schedules`).
      rounds: number of cycles.
      params: trained parameters.
      config: retraining config.
      splits: data; validation picks each round's best epoch.
      epochs: retraining epochs per round, or ``round -> epochs``.
      key: PRNG key; round ``r`` uses ``fold_in(key, r)``.
      lr_scale: ``(epoch, epochs) -> multiplier`` within each round.
      task: the training loss of every round (default the config's task).
      progress: progress bars.

    Returns:
      ``(params, compressor, state, history)`` after the last round; ``history`` has one dict per
      round: ``round``, ``sparsity``, ``val_error_pruned`` (before retraining), ``val_error``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}.")
    history = []
    compressor, state = None, None
    for r in tqdm(range(rounds), desc="prune rounds", disable=not progress, leave=False):
        sparsity = schedule(r)
        compressor = make(sparsity)
        state = compressor.init(params)
        n = epochs(r) if callable(epochs) else epochs
        result = retrain(
            compressor,
            state,
            params,
            config,
            splits,
            epochs=n,
            key=jax.random.fold_in(key, r),
            lr_scale=lr_scale,
            task=task,
            progress=progress,
        )
        params, state = result.params, result.state
        history.append(
            {
                "round": r,
                "sparsity": sparsity,
                "val_error_pruned": result.history[0]["val_error"],
                "val_error": result.val_error,
                "epochs": result.history[1:],
            }
        )
    assert compressor is not None
    return params, compressor, state, history


def sensitivity(
    params: Params,
    error: Callable[[Params], float],
    make: Callable[[Sparsity], Compressor],
    layers: list[str],
    sparsities: list[float],
) -> dict[str, list[tuple[float, float]]]:
    """Error when one layer alone is pruned to each sparsity, without retraining (paper fig. 6).

    Args:
      params: trained parameters.
      error: ``params -> error`` on held-out data.
      make: ``{layer: fraction} -> pruning compressor``.
      layers: layers to scan.
      sparsities: fractions to try.

    Returns:
      ``{layer: [(sparsity, error), ...]}``.
    """
    out: dict[str, list[tuple[float, float]]] = {}
    for layer in layers:
        curve = []
        for s in sparsities:
            c = make({layer: s})
            pruned, _ = c.apply(params, c.init(params))
            curve.append((float(s), float(error(pruned))))
        out[layer] = curve
    return out
