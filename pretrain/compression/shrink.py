"""Physically smaller networks: the surviving channels of a structured pruning, sliced out.

:func:`shrink` removes the pruned output channels of every layer of a chain from its kernel and
bias, and the rows of the next layer that read them, so the arrays are those of a narrower dense
network; kernels and positions removed inside surviving channels stay as zeros (a dense LiteRT
convolution still runs them). :func:`shrink_module` also narrows the Flax module (LeNet-5's
``features``), so export, the layer graph (``devices.server.graph_from_flax``) and with it the
devices planner and latency estimator see the new shapes. The narrow network's outputs equal the
masked one's up to float32 summation order: a removed channel's outgoing weights are zero there.

References:
  Anwar, Hwang, Sung, "Structured Pruning of Deep Convolutional Neural Networks", 2017
  (channel pruning shrinks the lowered convolution matrices).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from pretrain.compression.base import Params, named_leaves, replace_leaves, to_numpy
from pretrain.compression.structured import (
    LENET5_CHAIN,
    Structure,
    structure_masks,
    structured_pruning,
)


def _take_inputs(kernel: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The rows of ``kernel`` that read the kept channels (conv axis 2; dense after an NHWC
    flatten: rows ``p * C + c``)."""
    if kernel.ndim == 4:
        return kernel[:, :, keep, :]
    rows = kernel.reshape(-1, keep.size, kernel.shape[-1])[:, keep, :]
    return rows.reshape(-1, kernel.shape[-1])


def shrink(
    params: Params, structure: Structure, chain: Sequence[str] = LENET5_CHAIN
) -> tuple[Params, dict[str, int]]:
    """The masked parameters of ``structure`` with the removed channels cut out of the arrays.

    Returns:
      ``(params, widths)``: a tree with the same leaves, narrower, and ``{layer: channels}`` of
      every layer of ``chain`` but the last.
    """
    structure_masks(params, structure, chain)  # validates the structure against the shapes
    c = structured_pruning(structure, chain)
    leaves = named_leaves(to_numpy(c.apply(params, c.init(params))[0]))
    new: dict[str, np.ndarray] = {}
    widths = {}
    for i, layer in enumerate(chain[:-1]):
        kernel = new.get(f"{layer}/kernel", leaves[f"{layer}/kernel"])
        keep = structure.channels.get(layer, np.ones(kernel.shape[-1], bool))
        keep = np.asarray(keep, bool)
        new[f"{layer}/kernel"] = kernel[..., keep]
        new[f"{layer}/bias"] = leaves[f"{layer}/bias"][keep]
        nxt = f"{chain[i + 1]}/kernel"
        new[nxt] = _take_inputs(leaves[nxt], keep)
        widths[layer] = int(keep.sum())
    # replace_leaves keeps the tree structure; the shapes are the narrow network's.
    return jax.tree.map(np.asarray, replace_leaves(to_numpy(params), new)), widths


def shrink_module(
    module: nn.Module,
    params: Params,
    structure: Structure,
    chain: Sequence[str] = LENET5_CHAIN,
) -> tuple[nn.Module, Params]:
    """``module`` narrowed to the surviving channels, with its sliced parameters.

    Args:
      module: a Flax module with a ``features`` field giving the widths of ``chain[:-1]`` in
        order (LeNet-5: ``(conv1, conv2, fc1)``).
      params: its trained (or retrained) parameters.
      structure: what was pruned.
      chain: the layers in order.

    Raises:
      ValueError: the module has no such ``features`` field.
    """
    features: Any = getattr(module, "features", None)
    if not isinstance(features, Sequence) or len(features) != len(chain) - 1:
        raise ValueError(
            f"{type(module).__name__} has no 'features' field with one width per layer of "
            f"{list(chain[:-1])}; shrink_module rebuilds only such models (LeNet-5)."
        )
    small, widths = shrink(params, structure, chain)
    return module.clone(features=tuple(widths[layer] for layer in chain[:-1])), small
