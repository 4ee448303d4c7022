"""The jitted train and evaluation steps of supervised classification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from pretrain.train.parallel import batch_sharded, replicated

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


def cross_entropy(logits: jax.Array, labels: Batch) -> jax.Array:
    """Per-example softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def train_step_fn(
    apply_fn: ApplyFn, tx: optax.GradientTransformation
) -> Callable[[TrainState, Batch, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """The pure (unjitted) step: forward, gradient, SGD update scaled by the plateau factor."""

    def step(
        state: TrainState, images: Batch, labels: Batch
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        def loss_fn(params: Any) -> tuple[jax.Array, jax.Array]:
            logits = apply_fn({"params": params}, images)
            return cross_entropy(logits, labels).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: u * state.lr_scale, updates)
        params = optax.apply_updates(state.params, updates)
        errors = jnp.sum(jnp.argmax(logits, -1) != labels)
        new = TrainState(state.step + 1, params, opt_state, state.lr_scale)
        return new, {"loss": loss, "errors": errors}

    return step


def make_train_step(
    apply_fn: ApplyFn, tx: optax.GradientTransformation, mesh: Mesh
) -> Callable[[TrainState, Batch, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """Jits :func:`train_step_fn` with replicated state and batch-sharded inputs.

    The state argument is donated: its buffers are reused for the new state.
    """
    rep, bat = replicated(mesh), batch_sharded(mesh)
    return jax.jit(
        train_step_fn(apply_fn, tx),
        in_shardings=(rep, bat, bat),
        out_shardings=(rep, rep),
        donate_argnums=0,
    )


def make_eval_step(
    apply_fn: ApplyFn, mesh: Mesh
) -> Callable[[Any, Batch, Batch, Batch], dict[str, jax.Array]]:
    """A jitted step returning masked sums: ``loss``, ``errors`` and ``count``."""
    rep, bat = replicated(mesh), batch_sharded(mesh)

    def step(params: Any, images: Batch, labels: Batch, mask: Batch) -> dict:
        logits = apply_fn({"params": params}, images)
        wrong = (jnp.argmax(logits, -1) != labels).astype(jnp.float32)
        return {
            "loss": jnp.sum(cross_entropy(logits, labels) * mask),
            "errors": jnp.sum(wrong * mask),
            "count": jnp.sum(mask),
        }

    return jax.jit(step, in_shardings=(rep, bat, bat, bat), out_shardings=rep)
