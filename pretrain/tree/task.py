"""Training a conditional network: the router learns jointly with the branches it chooses.

Every branch runs during training and its cross-entropy is weighted by the router's softmax
(a mixture of experts); the softmax's temperature falls geometrically from ``temperature_start``
to ``temperature_end`` over ``anneal_steps`` so that the weights end one-hot and training sees what
inference runs (one branch: the argmax). A load-balancing term keeps every branch in use:
``balance`` times B times the sum over branches of the share of the batch each takes (argmax)
times its mean untempered routing weight (Switch Transformer's auxiliary loss: 1 when the batch is
spread evenly, B when one branch takes it all). On MNIST with 2 branches neither this term nor
a first form (B times the sum of the squared mean tempered weights) at ``balance`` 0.1 kept the
router from sending every image to one branch; at 0.5 it splits them 77/23, at a higher error
(``pretrain/configs/lenet5_tree.py``, ``make bench-tree``'s ``variant``). Held-out data is scored on the hard path (the device's).

Ioannou et al. train their explicit routers jointly by back-propagation with the router's soft
weights multiplying the branches' outputs, and at test time compute only the best-weighted
branch; weighting the branches' losses instead (Jacobs et al.) makes each branch a classifier on
its own, and the annealed temperature closes the gap between the soft training path and the hard
test path.

References:
  Y. Ioannou et al., "Decision Forests, Convolutional Networks and the Models In-Between", 2016.
  R. Jacobs, M. Jordan, S. Nowlan, G. Hinton, "Adaptive mixtures of local experts", 1991.
  N. Shazeer et al., "Outrageously Large Neural Networks: the Sparsely-Gated Mixture-of-Experts
  Layer", ICLR 2017 (balancing the load of a learned router).
  W. Fedus, B. Zoph, N. Shazeer, "Switch Transformers", JMLR 2022 (the auxiliary load loss).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from pretrain.models.conditional import take_branch
from pretrain.train.tasks import ApplyFn, Classification, Params, cross_entropy, register_task


def temperature(step: Any, start: float, end: float, steps: int) -> jax.Array:
    """The router's softmax temperature at ``step``: geometric from ``start`` to ``end``."""
    frac = jnp.clip(jnp.asarray(step, jnp.float32) / max(steps, 1), 0.0, 1.0)
    return jnp.asarray(start, jnp.float32) * (end / start) ** frac


def routed_loss(
    branch_logits: jax.Array, route: jax.Array, labels: Any, tau: jax.Array, balance: float
) -> tuple[jax.Array, jax.Array]:
    """Mixture cross-entropy plus load balance of one batch, and the router's weights ``(N, B)``.

    Args:
      branch_logits: every branch's logits ``(B, N, C)``.
      route: the router's logits ``(N, B)``.
      labels: integer labels ``(N,)``.
      tau: the softmax temperature.
      balance: weight of the load-balancing term.
    """
    weights = jax.nn.softmax(route / tau, axis=-1)
    per_branch = jax.vmap(lambda logits: cross_entropy(logits, labels))(branch_logits)  # (B, N)
    mixture = jnp.mean(jnp.sum(weights.T * per_branch, axis=0))
    # The share each branch takes (argmax, no gradient) times its mean untempered weight: the
    # gradient lowers the weight of overloaded branches even where the tempered softmax saturates.
    taken = jnp.mean(jax.nn.one_hot(jnp.argmax(route, -1), route.shape[-1]), axis=0)
    mean_weight = jnp.mean(jax.nn.softmax(route, axis=-1), axis=0)
    load = route.shape[-1] * jnp.sum(jax.lax.stop_gradient(taken) * mean_weight)
    return mixture + balance * load, weights


@register_task("routed_classification")
@dataclasses.dataclass(frozen=True)
class RoutedClassification(Classification):
    """Classification with a learned router (a model with a ``soft`` method, e.g.
    ``lenet5_tree``); scored like ``classification`` on the hard-routed logits.

    Attributes:
      temperature_start, temperature_end: the router softmax's temperature at step 0 and from
        ``anneal_steps`` on.
      anneal_steps: optimizer steps over which the temperature falls.
      balance: weight of the load-balancing term.
    """

    temperature_start: float = 1.0
    temperature_end: float = 0.05
    anneal_steps: int = 2500
    balance: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.temperature_end <= self.temperature_start:
            raise ValueError(
                f"routed_classification: need 0 < temperature_end <= temperature_start, got "
                f"{self.temperature_end} and {self.temperature_start}."
            )
        if self.balance < 0 or self.anneal_steps < 0:
            raise ValueError(
                f"routed_classification: balance ({self.balance}) and anneal_steps "
                f"({self.anneal_steps}) must be >= 0."
            )

    def loss(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, step: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        logits, route = apply_fn({"params": params}, images, method="soft")
        tau = temperature(step, self.temperature_start, self.temperature_end, self.anneal_steps)
        loss, _ = routed_loss(logits, route, labels, tau, self.balance)
        hard = take_branch(logits, jnp.argmax(route, -1))
        return loss, {"errors": jnp.sum(jnp.argmax(hard, -1) != labels)}
