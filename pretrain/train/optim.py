"""SGD with momentum whose update includes weight decay, and the plateau learning-rate cut.

The optimizer is an ``optax`` chain; the plateau controller is
``optax.contrib.reduce_on_plateau``, stepped once per epoch with the validation error, whose
``scale`` multiplies the learning rate inside the train step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from pretrain.config import TrainConfig
from pretrain.train.tasks import Task


def weight_mask(params: Any) -> Any:
    """True for weight matrices / kernels (ndim > 1), False for biases."""
    return jax.tree.map(lambda p: jnp.ndim(p) > 1, params)


def new_mask(names: tuple[str, ...], task: Task | None) -> Any:
    """A mask function: True for the leaves of the model's top-level parameters in ``names``
    (the model's part found by ``task.model_params``; without a task the params are the model)."""

    def mask(params: Any) -> Any:
        model = task.model_params(params) if task is not None else params
        grown = {k: jax.tree.map(lambda _, k=k: k in names, v) for k, v in model.items()}
        if task is None:
            return grown
        return task.with_model_params(jax.tree.map(lambda _: False, params), grown)

    return mask


def make_optimizer(config: TrainConfig, task: Task | None = None) -> optax.GradientTransformation:
    """SGD: ``v <- m v + (g + wd w)``, ``w <- w - lr v`` (weight decay inside the update).

    Biases are not decayed unless ``config.decay_biases``. With ``config.init_new`` and an
    ``init_new_lr_scale`` other than 1, those parameters' updates are scaled by it (a grown
    part at a fresh run's rate while the trained rest continues at the continuation's).
    ``task`` says where the model's part of the parameters is (None: they are the model's).
    """
    mask = None if config.decay_biases else weight_mask
    steps = [optax.add_decayed_weights(config.weight_decay, mask=mask)]
    if config.init_new and config.init_new_lr_scale != 1.0:
        steps.append(
            optax.masked(optax.scale(config.init_new_lr_scale), new_mask(config.init_new, task))
        )
    steps.append(
        optax.sgd(config.learning_rate, momentum=config.momentum or None, nesterov=config.nesterov)
    )
    return optax.chain(*steps)


def make_plateau(config: TrainConfig) -> optax.GradientTransformationExtraArgs:
    """The per-epoch controller: cuts the learning rate by ``plateau_factor`` on a plateau."""
    return optax.contrib.reduce_on_plateau(
        factor=config.plateau_factor,
        patience=config.plateau_patience,
        rtol=config.plateau_rtol,
        atol=0.0,
        cooldown=0,
        min_scale=config.min_lr_scale * config.plateau_factor,
    )


def plateau_step(
    plateau: optax.GradientTransformationExtraArgs, state: Any, val_error: float
) -> Any:
    """Feeds one epoch's validation error to the controller; returns its new state."""
    _, state = plateau.update({}, state, value=jnp.asarray(val_error, jnp.float32))
    return state
