"""The two MNIST networks of the Deep Compression paper, in their Caffe form.

LeNet-5's pooling and convolutions carry hand-written training passes that XLA:CPU runs faster
than the ones JAX derives (the same values and gradients up to float32 summation order; see
:mod:`pretrain.models.lenet_ops`); inference and export see the plain ``reduce_window`` /
``conv`` ops.

References:
  LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document recognition", 1998.
  Han, Mao, Dally, "Deep Compression", ICLR 2016 (tables 2-3: LeNet-300-100 267K, LeNet-5 431K).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import numpy as np

from pretrain.models.lenet_ops import ValidConv, max_pool_2x2
from pretrain.models.registry import register

PARTS = ("all", "front", "last")


def _check_part(part: str, model: str) -> None:
    if part not in PARTS:
        raise ValueError(f"{model}: part must be one of {PARTS}, got {part!r}.")


def _per_layer(values: Sequence[float], layers: int, what: str, model: str) -> Sequence[float]:
    if len(values) != layers:
        raise ValueError(
            f"{model}: {what} needs one value per layer ({layers}), got {len(values)}."
        )
    return values


@register("lenet300")
class LeNet300(nn.Module):
    """LeNet-300-100: 784 -> 300 -> 100 -> 10, ReLU; 266,610 parameters.

    Attributes:
      hidden: widths of the hidden layers.
      num_classes: output width.
      init_std: standard deviation of each layer's zero-mean Gaussian weight initialisation.
      bias_init: constant each layer's biases start from (0 or 1, as the seed describes).
      part: ``"all"`` (logits), ``"front"`` (input -> the last hidden layer's input) or
        ``"last"`` (that -> the last hidden activation, the embedding a device head reads).
    """

    hidden: Sequence[int] = (300, 100)
    num_classes: int = 10
    init_std: Sequence[float] = (0.05, 0.08, 0.14)
    bias_init: Sequence[float] = (0.0, 0.0, 0.0)
    part: str = "all"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_part(self.part, "lenet300")
        widths = (*self.hidden, self.num_classes)
        std = _per_layer(self.init_std, len(widths), "init_std", "lenet300")
        bias = _per_layer(self.bias_init, len(widths), "bias_init", "lenet300")
        last_hidden = len(widths) - 2
        layers = {
            "front": range(last_hidden),
            "last": range(last_hidden, last_hidden + 1),
            "all": range(len(widths)),
        }[self.part]
        if self.part != "last":
            x = x.reshape((x.shape[0], -1))
        for i in layers:
            x = nn.Dense(
                widths[i],
                kernel_init=nn.initializers.normal(std[i]),
                bias_init=nn.initializers.constant(bias[i]),
                name=f"fc{i + 1}",
            )(x)
            if i < len(widths) - 1:
                x = nn.relu(x)
        return x


@register("lenet5")
class LeNet5(nn.Module):
    """Caffe LeNet-5: conv 20@5x5, max-pool 2, conv 50@5x5, max-pool 2, fc 500, ReLU, fc 10.

    431,080 parameters. Layers: ``conv1, conv2, fc1, fc2``.

    Attributes:
      features: widths of ``conv1``, ``conv2`` and ``fc1`` (a structurally pruned LeNet-5 is the
        same network, narrower: :func:`pretrain.compression.shrink_lenet5`).
      num_classes: output width.
      init_std: Gaussian standard deviation per layer (conv1, conv2, fc1, fc2).
      bias_init: initial bias constant per layer.
      part: ``"all"`` (logits), ``"front"`` (input -> flattened conv features) or ``"last"``
        (those -> the ReLU output of ``fc1``, the embedding a device head reads).
    """

    features: Sequence[int] = (20, 50, 500)
    num_classes: int = 10
    init_std: Sequence[float] = (0.28, 0.063, 0.05, 0.045)
    bias_init: Sequence[float] = (0.0, 0.0, 0.0, 0.0)
    part: str = "all"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_part(self.part, "lenet5")
        std = _per_layer(self.init_std, 4, "init_std", "lenet5")
        bias = _per_layer(self.bias_init, 4, "bias_init", "lenet5")
        c1, c2, hidden = (int(w) for w in _per_layer(self.features, 3, "features", "lenet5"))

        def conv(features: int, i: int) -> nn.Conv:
            return ValidConv(
                features,
                (5, 5),
                padding="VALID",
                name=f"conv{i + 1}",
                kernel_init=nn.initializers.normal(std[i]),
                bias_init=nn.initializers.constant(bias[i]),
            )

        def dense(features: int, i: int) -> nn.Dense:
            return nn.Dense(
                features,
                name=f"fc{i - 1}",
                kernel_init=nn.initializers.normal(std[i]),
                bias_init=nn.initializers.constant(bias[i]),
            )

        if self.part != "last":
            if x.ndim == 3:
                x = x[..., None]
            x = max_pool_2x2(conv(c1, 0)(x))
            x = max_pool_2x2(conv(c2, 1)(x))
            x = x.reshape((x.shape[0], -1))
            if self.part == "front":
                return x
        x = nn.relu(dense(hidden, 2)(x))
        if self.part == "last":
            return x
        return dense(self.num_classes, 3)(x)


def count_params(params: object) -> int:
    """Number of scalars in a parameter pytree (arrays or shapes, e.g. from ``jax.eval_shape``)."""
    return sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(params))
