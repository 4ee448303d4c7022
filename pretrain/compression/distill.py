"""Knowledge distillation for retraining under compression: soft targets of the uncompressed model.

:class:`Distillation` is the classification task whose loss mixes the hard-label cross-entropy
with the cross-entropy against the teacher's softened outputs (temperature ``T``, scaled by
``T**2`` so the soft term's gradients keep their size as ``T`` changes). Pruning and weight
sharing retrain the compressed network towards the reference it came from, not only towards the
labels: the reference's wrong-class probabilities carry what the labels do not.

:class:`EmbeddingDistillation` does the same for embedding tasks (margin softmax, contrastive):
any task plus the mean cosine distance between the model's embeddings and the teacher's, on every
batch the task feeds the model.

Example:
  >>> teacher = distillation_teacher(saved.module, saved.params)
  >>> task = Distillation(teacher, weight=0.5, temperature=4.0)
  >>> trainer = CompressedTrainer(config, images, compressor, state, task=task)

References:
  Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pretrain.compression.base import Params
from pretrain.train.tasks import ApplyFn, Classification, build_task, cross_entropy

Teacher = Callable[[jax.Array], jax.Array]  # images -> logits


def soft_cross_entropy(
    logits: jax.Array, teacher_logits: jax.Array, temperature: float
) -> jax.Array:
    """Per-example ``T**2 * KL(softmax(teacher / T) || softmax(logits / T))``.

    Zero (with zero gradient) where the student's logits equal the teacher's up to a constant;
    the KL form (not the plain soft cross-entropy) so that a perfect match reads 0.
    """
    target = jax.nn.softmax(teacher_logits / temperature, axis=-1)
    log_student = jax.nn.log_softmax(logits / temperature, axis=-1)
    log_target = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
    kl = jnp.sum(target * (log_target - log_student), axis=-1)
    return temperature**2 * kl


@dataclasses.dataclass(frozen=True)
class Distillation(Classification):
    """Classification with ``(1 - weight) * CE(labels) + weight * T**2 * KL(teacher_T || model_T)``.

    Scoring (``eval_batch``, the error rate) is plain classification's.

    Attributes:
      teacher: images -> the teacher's logits (its parameters held constant).
      weight: share of the soft term in [0, 1] (0: plain classification).
      temperature: ``T`` > 0 softening both distributions.
    """

    teacher: Teacher = dataclasses.field(compare=False)
    weight: float = 0.5
    temperature: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"distillation weight must be in [0, 1], got {self.weight}.")
        if not self.temperature > 0.0:
            raise ValueError(f"distillation temperature must be > 0, got {self.temperature}.")

    def loss(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, step: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        logits = apply_fn({"params": params}, images)
        target = jax.lax.stop_gradient(self.teacher(images))
        hard = cross_entropy(logits, labels).mean()
        soft = soft_cross_entropy(logits, target, self.temperature).mean()
        errors = jnp.sum(jnp.argmax(logits, -1) != labels)
        loss = (1.0 - self.weight) * hard + self.weight * soft
        return loss, {"errors": errors, "hard_loss": hard, "soft_loss": soft}


def distillation_teacher(module: nn.Module, params: Params) -> Teacher:
    """``images -> logits`` of ``module`` with ``params`` frozen (copied: later donation-safe)."""
    frozen = jax.tree.map(jnp.array, params)

    def teacher(images: jax.Array) -> jax.Array:
        return module.apply({"params": frozen}, images)  # type: ignore[return-value]

    return teacher


@dataclasses.dataclass(frozen=True)
class EmbeddingDistillation:
    """The task ``base`` plus ``weight`` times the mean cosine distance between the model's
    embeddings and the ``teacher``'s on every batch the base task feeds the model.

    Everything but the loss is the base task's (its scoring, its classifier, its
    ``init_from_data``).

    Attributes:
      base: the embedding task (e.g. the margin softmax of the backbone's pretraining stage).
      teacher: images -> embeddings (constant parameters; :func:`distillation_teacher`).
      weight: the distance term's weight (>= 0).

    References:
      Hinton, Vinyals, Dean, "Distilling the knowledge in a neural network", 2015.
    """

    base: Any
    teacher: Teacher = dataclasses.field(compare=False)
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.weight >= 0.0:
            raise ValueError(f"distillation weight must be >= 0, got {self.weight}.")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def loss(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, step: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        distances: list[jax.Array] = []

        def matched(variables: Any, x: jax.Array) -> jax.Array:
            out = apply_fn(variables, x)
            target = jax.lax.stop_gradient(self.teacher(x))
            cos = jnp.sum(_unit(out) * _unit(target), axis=-1)
            distances.append(jnp.mean(1.0 - cos))
            return out

        loss, metrics = self.base.loss(matched, params, images, labels, step)
        distance = sum(distances) / max(len(distances), 1)
        return loss + self.weight * distance, {**metrics, "distill": distance}


def distilled_task(config: Any, teacher: Teacher, weight: float) -> EmbeddingDistillation | None:
    """``config``'s own task plus the embedding distance to ``teacher`` at ``weight`` (None when
    ``weight`` is 0: the config's task as it is)."""
    if not weight:
        return None
    base = build_task(config.task, config.task_options, seed=config.seed)
    return EmbeddingDistillation(base, teacher, weight)


def _unit(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
