"""Training tasks, chosen by name: what the loss is and how held-out data is scored.

A task owns the part of training that differs between supervised classification and metric or
self-supervised learning; everything else (data-parallel steps, SGD with weight decay, plateau
cuts, early stopping, checkpoints, exact resume) is shared. ``"classification"`` (softmax
cross-entropy, error rate) is the default; the embedding tasks register themselves from
:mod:`pretrain.embedding`.

A task's parameters may hold more than the model (a classifier over identities, a projection
head): :meth:`Task.model_params` picks the model's part, which is what gets saved.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from devices.verification import eer, pair_scores

ApplyFn = Callable[..., Any]
Params = Any
Outputs = dict[str, np.ndarray]


class Task(Protocol):
    """The interface a training task implements (see :class:`Classification`).

    Attributes:
      error_name: what the monitored ``error`` is (``"error"`` rate, ``"eer"``), for reports.
    """

    error_name: str

    def init(self, module: nn.Module, key: jax.Array, example: Any, *, num_classes: int) -> Params:
        """Fresh parameters of the model and of anything the task trains with it."""
        ...

    def model_params(self, params: Params) -> Params:
        """The model's part of ``params`` (what :func:`save_model` writes)."""
        ...

    def with_model_params(self, params: Params, model: Params) -> Params:
        """``params`` with the model's part replaced by ``model`` (initialising from a stage)."""
        ...

    def loss(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, step: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Mean loss of a global batch and its metrics; ``errors`` counts wrong examples.

        ``step`` (the optimizer step) seeds any randomness (augmentation), so a step is a pure
        function of the state and the batch, whatever the number of devices.
        """
        ...

    def eval_batch(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, mask: Any
    ) -> dict[str, jax.Array]:
        """What one evaluation batch contributes (``mask`` is 1 for real examples)."""
        ...

    def eval_result(self, outputs: Sequence[Outputs]) -> tuple[float, float, int]:
        """``(loss, error, examples)`` over a whole dataset from its batches' outputs."""
        ...


T = TypeVar("T")
_TASKS: dict[str, type] = {}


def register_task(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator adding a task (a dataclass whose fields are its options) under ``name``."""

    def add(cls: type[T]) -> type[T]:
        if name in _TASKS:
            raise ValueError(f"task {name!r} is already registered ({_TASKS[name].__name__}).")
        _TASKS[name] = cls
        return cls

    return add


def task_names() -> list[str]:
    """Registered task names, sorted."""
    return sorted(_TASKS)


def build_task(name: str, options: Mapping[str, Any] | None = None, *, seed: int = 0) -> Task:
    """Builds the registered task ``name`` with ``options``; ``seed`` goes to tasks that draw.

    Raises:
      ValueError: unknown task or option; the message lists the valid ones.
    """
    if name not in _TASKS:
        close = difflib.get_close_matches(name, _TASKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown task {name!r}; registered: {', '.join(task_names())}.{hint}")
    cls = _TASKS[name]
    valid = [f.name for f in dataclasses.fields(cls) if f.init and f.name != "seed"]
    options = dict(options or {})
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"task {name!r} has no option(s) {', '.join(unknown)}; valid: "
            f"{', '.join(valid) or 'none'}."
        )
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    if any(f.name == "seed" for f in dataclasses.fields(cls)):
        options["seed"] = seed
    task: Task = cls(**options)
    return task


def cross_entropy(logits: jax.Array, labels: Any) -> jax.Array:
    """Per-example softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


@register_task("classification")
@dataclasses.dataclass(frozen=True)
class Classification:
    """Supervised classification: the model outputs logits; softmax cross-entropy; error rate."""

    error_name = "error"

    def init(
        self, module: nn.Module, key: jax.Array, example: jax.Array, *, num_classes: int = 0
    ) -> Params:
        return module.init(key, example)["params"]

    def model_params(self, params: Params) -> Params:
        return params

    def with_model_params(self, params: Params, model: Params) -> Params:
        return model

    def loss(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, step: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        logits = apply_fn({"params": params}, images)
        errors = jnp.sum(jnp.argmax(logits, -1) != labels)
        return cross_entropy(logits, labels).mean(), {"errors": errors}

    def eval_batch(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, mask: Any
    ) -> dict[str, jax.Array]:
        logits = apply_fn({"params": params}, images)
        wrong = (jnp.argmax(logits, -1) != labels).astype(jnp.float32)
        return {
            "loss": jnp.sum(cross_entropy(logits, labels) * mask),
            "errors": jnp.sum(wrong * mask),
            "count": jnp.sum(mask),
        }

    def eval_result(self, outputs: Sequence[Outputs]) -> tuple[float, float, int]:
        totals = {"loss": 0.0, "errors": 0.0, "count": 0.0}
        for out in outputs:
            for k in totals:
                totals[k] += float(out[k])
        n = totals["count"]
        return totals["loss"] / n, totals["errors"] / n, int(n)


class EmbeddingEval:
    """Scoring for tasks whose model outputs embeddings: the verification EER over all pairs.

    Held-out data is scored the way the product is used: every genuine pair and every impostor
    pair of the set, cosine similarity, equal error rate (0..1). The loss is not defined (NaN).
    """

    error_name = "eer"

    def model_params(self, params: Params) -> Params:
        return params["model"]

    def with_model_params(self, params: Params, model: Params) -> Params:
        return {**params, "model": model}

    def eval_batch(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, mask: Any
    ) -> dict[str, jax.Array]:
        embeddings = apply_fn({"params": self.model_params(params)}, images)
        return {"embeddings": embeddings, "labels": labels, "mask": mask}

    def eval_result(self, outputs: Sequence[Outputs]) -> tuple[float, float, int]:
        keep = np.concatenate([o["mask"] for o in outputs]) > 0
        embeddings = np.concatenate([o["embeddings"] for o in outputs])[keep]
        labels = np.concatenate([o["labels"] for o in outputs])[keep]
        genuine, impostor = pair_scores(embeddings, labels)
        if genuine.size == 0 or impostor.size == 0:
            raise ValueError(
                "an embedding task scores held-out data by verification: it needs at least two "
                "identities and two samples of one identity."
            )
        return float("nan"), eer(genuine, impostor), int(keep.sum())
