"""The jitted train and evaluation steps; the loss comes from a task (default: classification)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from pretrain.train.parallel import batch_sharded, replicated
from pretrain.train.tasks import Classification, Task
from pretrain.train.tasks import cross_entropy as cross_entropy

ApplyFn = Callable[..., Any]
# Batches arrive as numpy arrays in one process and as global jax.Arrays in several.
Batch = jax.typing.ArrayLike


class TrainState(NamedTuple):
    """What the train step reads and writes.

    Attributes:
      step: number of optimizer steps taken.
      params: model parameters.
      opt_state: optimizer state (momentum).
      lr_scale: plateau multiplier of the learning rate (1.0, then cut by the plateau factor).
    """

    step: jax.Array
    params: Any
    opt_state: Any
    lr_scale: jax.Array


def init_state(params: Any, tx: optax.GradientTransformation) -> TrainState:
    """A fresh state at step 0 with the learning rate unscaled."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        lr_scale=jnp.ones((), jnp.float32),
    )


def train_step_fn(
    apply_fn: ApplyFn, tx: optax.GradientTransformation, task: Task | None = None
) -> Callable[[TrainState, Batch, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """The pure (unjitted) step: forward, gradient, SGD update scaled by the plateau factor.

    ``task`` gives the loss and the step's metrics (default: classification cross-entropy).
    """
    task = task or Classification()

    def step(
        state: TrainState, images: Batch, labels: Batch
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            return task.loss(apply_fn, params, images, labels, state.step)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: u * state.lr_scale, updates)
        params = optax.apply_updates(state.params, updates)
        new = TrainState(state.step + 1, params, opt_state, state.lr_scale)
        return new, {"loss": loss, **metrics}

    return step


def make_train_step(
    apply_fn: ApplyFn, tx: optax.GradientTransformation, mesh: Mesh, task: Task | None = None
) -> Callable[[TrainState, Batch, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """Jits :func:`train_step_fn` with replicated state and batch-sharded inputs.

    The state argument is donated: its buffers are reused for the new state.
    """
    rep, bat = replicated(mesh), batch_sharded(mesh)
    return jax.jit(
        train_step_fn(apply_fn, tx, task),
        in_shardings=(rep, bat, bat),
        out_shardings=(rep, rep),
        donate_argnums=0,
    )


def make_eval_step(
    apply_fn: ApplyFn, mesh: Mesh, task: Task | None = None
) -> Callable[[Any, Batch, Batch, Batch], dict[str, jax.Array]]:
    """A jitted step returning what ``task`` scores a batch with, replicated on every device.

    For classification (the default): masked sums ``loss``, ``errors`` and ``count``.
    """
    rep, bat = replicated(mesh), batch_sharded(mesh)
    task = task or Classification()

    def step(params: Any, images: Batch, labels: Batch, mask: Batch) -> dict:
        return task.eval_batch(apply_fn, params, images, labels, mask)

    return jax.jit(step, in_shardings=(rep, bat, bat, bat), out_shardings=rep)
