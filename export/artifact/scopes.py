"""Device training scopes and their SGD steps, as pure JAX functions over named variables.

Scopes, narrow to wide (TinyTL's argument: train what is cheap in memory, not what is few
parameters):
  ``head``        the cosine head; the step reads cached embeddings.
  ``head_biases`` the head plus the biases of the last block; reads the frozen front's features.
  ``last_block``  the head plus the whole last block; reads the frozen front's features.

Variables are flat ``{name: array}``: ``head/kernel`` and ``last/<layer>/.../<leaf>`` (named in
:mod:`devices.contract`). A step reads every variable and returns only those its scope trains.

References:
  Cai, Gan, Zhu, Han, "TinyTL: reduce memory, not parameters for efficient on-device learning",
  NeurIPS 2020.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import traverse_util

from devices.contract import HEAD_VARIABLE as HEAD
from devices.contract import LAST_PREFIX as LAST
from devices.contract import SCOPES
from export.artifact.head import HeadConfig, cross_entropy, scores, sgd_step
from export.artifact.split import Backbone

Variables = dict[str, jax.Array]
TrainFn = Callable[
    [Variables, jax.Array, jax.Array, jax.Array, jax.Array], tuple[Variables, jax.Array]
]


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """Validates and orders scopes narrow -> wide; ``head`` is always included."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown training scope(s) {unknown}; choose from {', '.join(SCOPES)}.")
    return tuple(s for s in SCOPES if s == "head" or s in scopes)


def last_block_names(backbone: Backbone) -> list[str]:
    """Variable names of the last block's leaves, in a fixed order."""
    flat = traverse_util.flatten_dict(backbone.last_params, sep="/")
    return [LAST + k for k in sorted(flat)]


def trained(backbone: Backbone, scope: str) -> list[str]:
    """Names of the variables ``scope`` updates."""
    last = last_block_names(backbone)
    if scope == "head":
        return [HEAD]
    if scope == "head_biases":
        return [HEAD, *(n for n in last if n.endswith("/bias"))]
    if scope == "last_block":
        return [HEAD, *last]
    raise ValueError(f"unknown scope {scope!r}.")


def variable_names(backbone: Backbone, scopes: Sequence[str]) -> list[str]:
    """Every variable the artifact holds: the head, plus the whole last block when a wider scope
    is exported (its kernels are then variables too, so ``refine`` reads the trained block)."""
    return [HEAD, *last_block_names(backbone)] if len(scopes) > 1 else [HEAD]


def _last_tree(backbone: Backbone, variables: Variables) -> dict[str, Any]:
    flat = traverse_util.flatten_dict(backbone.last_params, sep="/")
    for key in flat:
        if LAST + key in variables:
            flat[key] = variables[LAST + key]
    return traverse_util.unflatten_dict(flat, sep="/")


def refine_fn(backbone: Backbone) -> Callable[[Variables, jax.Array], jax.Array]:
    """``(variables, features) -> embeddings`` through the (possibly trained) last block."""
    last = backbone.last(fast=True)
    return lambda variables, features: last(_last_tree(backbone, variables), features)


def infer_fn(head: HeadConfig) -> Callable[[Variables, jax.Array], jax.Array]:
    """``(variables, embeddings) -> scores``."""
    return lambda variables, embeddings: scores(variables[HEAD], embeddings, head.scale)


def train_fn(backbone: Backbone, head: HeadConfig, scope: str) -> TrainFn:
    """One SGD step with weight decay on ``scope``: ``(variables, inputs, labels, lr, wd) ->
    (updated variables of the scope, loss)``. Weight decay applies to kernels, not biases."""
    names = trained(backbone, scope)
    refine = refine_fn(backbone)

    def step(
        variables: Variables, inputs: jax.Array, labels: jax.Array, lr: jax.Array, wd: jax.Array
    ) -> tuple[Variables, jax.Array]:
        def loss(train: Variables) -> jax.Array:
            merged = {**variables, **train}
            embeddings = inputs if scope == "head" else refine(merged, inputs)
            return cross_entropy(scores(merged[HEAD], embeddings, head.scale), labels)

        train = {n: variables[n] for n in names}
        value, grads = jax.value_and_grad(loss)(train)
        decay = {n: wd if n.endswith("kernel") else jnp.zeros_like(wd) for n in names}
        new = {n: sgd_step({"w": train[n]}, {"w": grads[n]}, lr, decay[n])["w"] for n in names}
        return new, value

    return step


def initial_variables(
    backbone: Backbone, head_kernel: jax.typing.ArrayLike, scopes: Sequence[str]
) -> Variables:
    """Starting values: the given head kernel and the pretrained last block."""
    flat = traverse_util.flatten_dict(backbone.last_params, sep="/")
    values = {HEAD: jnp.asarray(head_kernel, jnp.float32)}
    for name in variable_names(backbone, scopes)[1:]:
        values[name] = jnp.asarray(flat[name[len(LAST) :]], jnp.float32)
    return values
