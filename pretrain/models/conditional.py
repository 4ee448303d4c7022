"""A conditional LeNet-5: a shared trunk, a learned router and B branches of which one runs.

The trunk is LeNet-5's first convolution and pooling; the router is one dense layer on the
trunk's features (softmax over the branches); each branch is a thinner LeNet-5 tail (conv 5x5,
pool, fc, ReLU, fc). Training sees every branch weighted by the router (``soft``: the task in
:mod:`pretrain.tree.task` anneals the router's temperature so that the weights become one-hot,
and may train the router on class groups);
inference and the device run the trunk, take the router's argmax and run that branch alone, so the
multiply-accumulates executed per image are the trunk's, the router's and one branch's.

Methods (``module.apply(variables, x, method=...)``): ``__call__`` the hard-routed logits,
``soft`` the logits of every branch and the router's logits, ``trunk`` the trunk's features and
the router's logits, ``branch`` (``index=i``) one branch's logits from the trunk's features.

References:
  Y. Ioannou, D. Robertson, D. Zikic, P. Kontschieder, J. Shotton, M. Brown, A. Criminisi,
  "Decision Forests, Convolutional Networks and the Models In-Between", arXiv:1603.01250, 2016
  (conditional networks: a routed tree of CNN branches, only the taken path computed).
  R. Jacobs, M. Jordan, S. Nowlan, G. Hinton, "Adaptive mixtures of local experts", 1991.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from pretrain.models.lenet_ops import ValidConv, max_pool_2x2
from pretrain.models.registry import register

_HE = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
_LECUN = nn.initializers.variance_scaling(1.0, "fan_in", "normal")


class Branch(nn.Module):
    """One branch: conv ``features``@5x5, max-pool 2, fc ``hidden``, ReLU, fc ``num_classes``."""

    features: int
    hidden: int
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = max_pool_2x2(ValidConv(self.features, (5, 5), padding="VALID", kernel_init=_HE)(x))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(self.hidden, kernel_init=_HE)(x))
        return nn.Dense(self.num_classes, kernel_init=_LECUN)(x)


def take_branch(branch_logits: jax.Array, choice: jax.Array) -> jax.Array:
    """``branch_logits[choice[n], n]`` per example: ``(B, N, C)``, ``(N,)`` -> ``(N, C)``."""
    return jnp.take_along_axis(branch_logits, choice[None, :, None], axis=0)[0]


@register("lenet5_tree")
class ConditionalLeNet5(nn.Module):
    """LeNet-5 as a one-level conditional network; layers ``conv1``, ``router``, ``branch_<i>``.

    Attributes:
      branches: number of branches B.
      trunk_features: conv1's filters (LeNet-5: 20).
      branch_features: each branch's conv filters (LeNet-5's conv2: 50).
      branch_hidden: each branch's hidden width (LeNet-5's fc1: 500).
      num_classes: output width.
    """

    branches: int = 2
    trunk_features: int = 20
    branch_features: int = 16
    branch_hidden: int = 128
    num_classes: int = 10

    def setup(self) -> None:
        if self.branches < 1:
            raise ValueError(f"lenet5_tree: branches must be >= 1, got {self.branches}.")
        self.conv1 = ValidConv(self.trunk_features, (5, 5), padding="VALID", kernel_init=_HE)
        self.router = nn.Dense(self.branches, kernel_init=nn.initializers.normal(0.01))
        self.tails = [
            Branch(self.branch_features, self.branch_hidden, self.num_classes, name=f"branch_{i}")
            for i in range(self.branches)
        ]

    def trunk(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Images -> (the trunk's pooled features, the router's logits)."""
        if x.ndim == 3:
            x = x[..., None]
        features = max_pool_2x2(self.conv1(x))
        return features, self.router(features.reshape((features.shape[0], -1)))

    def branch(self, features: jax.Array, index: int) -> jax.Array:
        """The logits of branch ``index`` from the trunk's features."""
        return self.tails[index](features)

    def soft(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Images -> (every branch's logits ``(B, N, C)``, the router's logits ``(N, B)``)."""
        features, route = self.trunk(x)
        return jnp.stack([tail(features) for tail in self.tails]), route

    def __call__(self, x: jax.Array) -> jax.Array:
        """The hard-routed logits: each example's argmax branch (all are computed here; the
        device runs only the chosen one)."""
        logits, route = self.soft(x)
        return take_branch(logits, jnp.argmax(route, -1))
