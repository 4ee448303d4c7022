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
(``pretrain/configs/lenet5_tree.py``). Held-out data is scored on the hard path (the device's).

With ``groups`` (the branch of each class, e.g. :func:`pretrain.tree.class_groups` on a trained
trunk's features) the router is instead a classifier of the groups (cross-entropy), trained
jointly with the trunk and the branches; the branches' weights are the router's tempered softmax
as constants, mixed with ``overlap`` of uniform weight, so each branch learns mostly the images
the router sends it and a little of the others, and an image the router sends to the wrong
group still meets a branch that has seen its class (HD-CNN's coarse-to-fine split, trained
end to end as Ioannou et al. do).

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
  Z. Yan et al., "HD-CNN: Hierarchical Deep Convolutional Neural Networks for Large Scale Visual
  Recognition", ICCV 2015 (class groups, one branch per group).
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
    branch_logits: jax.Array,
    route: jax.Array,
    labels: Any,
    tau: jax.Array,
    balance: float,
    *,
    groups: jax.Array | None = None,
    route_weight: float = 1.0,
    overlap: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """Mixture cross-entropy plus the router's own term of one batch, and the branch weights.

    Without ``groups`` the router learns from the mixture (its weights carry the gradient) and a
    load-balancing term. With ``groups`` it learns the group of each label (cross-entropy, times
    ``route_weight``) and the mixture's weights are constants to it: each branch is trained on
    what the router sends it, every other image still reaching it with weight ``overlap / B``.

    Args:
      branch_logits: every branch's logits ``(B, N, C)``.
      route: the router's logits ``(N, B)``.
      labels: integer labels ``(N,)``.
      tau: the softmax temperature.
      balance: weight of the load-balancing term.
      groups: the branch of each class ``(C,)`` (None: the routing is learned from the mixture).
      route_weight: weight of the router's cross-entropy on the groups.
      overlap: the share of uniform weight mixed into the branch weights (0: none).

    Returns:
      The loss and the branch weights ``(N, B)`` it used.
    """
    branches = route.shape[-1]
    weights = jax.nn.softmax(route / tau, axis=-1)
    if groups is not None:
        weights = jax.lax.stop_gradient((1.0 - overlap) * weights + overlap / branches)
    per_branch = jax.vmap(lambda logits: cross_entropy(logits, labels))(branch_logits)  # (B, N)
    loss = jnp.mean(jnp.sum(weights.T * per_branch, axis=0))
    if groups is not None:
        loss = loss + route_weight * jnp.mean(cross_entropy(route, groups[labels]))
    # The share each branch takes (argmax, no gradient) times its mean untempered weight: the
    # gradient lowers the weight of overloaded branches even where the tempered softmax saturates.
    taken = jnp.mean(jax.nn.one_hot(jnp.argmax(route, -1), branches), axis=0)
    mean_weight = jnp.mean(jax.nn.softmax(route, axis=-1), axis=0)
    load = branches * jnp.sum(jax.lax.stop_gradient(taken) * mean_weight)
    return loss + balance * load, weights


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
      groups: the branch of each class (``groups[c]``; e.g. from :func:`pretrain.tree.class_groups`);
        empty: the router learns from the mixture alone.
      route_weight: weight of the router's cross-entropy on the groups.
      overlap: share of uniform weight in the branch weights (with ``groups``): how much every
        branch also learns the images routed elsewhere, so a misrouted image meets a branch that
        has seen its class.
    """

    temperature_start: float = 1.0
    temperature_end: float = 0.05
    anneal_steps: int = 2500
    balance: float = 0.1
    groups: tuple[int, ...] = ()
    route_weight: float = 1.0
    overlap: float = 0.0

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
        if not 0.0 <= self.overlap <= 1.0 or self.route_weight < 0:
            raise ValueError(
                f"routed_classification: need 0 <= overlap <= 1 and route_weight >= 0, got "
                f"{self.overlap} and {self.route_weight}."
            )
        if self.groups and min(self.groups) < 0:
            raise ValueError(f"routed_classification: groups must be >= 0, got {self.groups}.")

    def loss(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, step: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        logits, route = apply_fn({"params": params}, images, method="soft")
        tau = temperature(step, self.temperature_start, self.temperature_end, self.anneal_steps)
        if self.groups and max(self.groups) >= route.shape[-1]:
            raise ValueError(
                f"routed_classification: groups name branch {max(self.groups)} but the model "
                f"has {route.shape[-1]} branches; set task_options.groups to 0..B-1 per class."
            )
        groups = jnp.asarray(self.groups, jnp.int32) if self.groups else None
        loss, _ = routed_loss(
            logits,
            route,
            labels,
            tau,
            self.balance,
            groups=groups,
            route_weight=self.route_weight,
            overlap=self.overlap,
        )
        hard = take_branch(logits, jnp.argmax(route, -1))
        return loss, {"errors": jnp.sum(jnp.argmax(hard, -1) != labels)}
