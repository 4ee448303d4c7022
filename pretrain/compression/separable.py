"""Channel pruning through depthwise-separable blocks (EmbedNet): masks, the narrow network.

In a chain of separable blocks a channel is produced by the stem or by a block's pointwise
convolution, filtered on its own by the next block's depthwise convolution, and read by the next
block's pointwise convolution. Removing it removes the producer's filter, the next depthwise
filter and the next pointwise input row: :func:`separable_masks` masks all three (the structured
pruning :class:`~pretrain.compression.structured.Structure`'s ``channels``, keyed by the producer,
e.g. ``"stem"`` or ``"block3/pointwise"``), :func:`separable_pruning` is the pruning
:class:`~pretrain.compression.base.Compressor` over them, and :func:`shrink_separable` cuts the
channels out (an EmbedNet with smaller ``stem_width`` / ``widths``), so LiteRT runs narrower
convolutions. :func:`shrink_stem` is intra-kernel sparsity on the stem: every stem filter keeps the
same 2x2 window of its 3x3 kernel, so the stem becomes a 2x2 convolution (the stem runs at the
highest resolution with one input channel, where int8 LiteRT time falls with the taps, not with
the channels). The last block's output is not prunable: the pooled features are standardised over
their channels (``feature_norm``), so a removed channel would change every other one.

Weight standardisation must be folded first (``fold_standardization``): a standardised kernel
depends on all its inputs, so masking one would change the others.

References:
  Anwar, Hwang, Sung, "Structured Pruning of Deep Convolutional Neural Networks", ACM JETC 2017
  (channel-wise sparsity).
  Howard et al., "MobileNets", 2017 (depthwise-separable convolutions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from pretrain.compression.base import Compressor, Params, named_leaves, replace_leaves, to_numpy
from pretrain.compression.particles import (
    FilterSettings,
    channel_particles,
    particle_filter,
)
from pretrain.compression.pruning import PruneState, _encode, decode_pruned, masked
from pretrain.compression.structured import Structure, keep_largest
from pretrain.models.embednet import same_pads


def separable_chain(blocks: int) -> tuple[str, ...]:
    """The producers whose channels may be removed: ``stem``, ``block1/pointwise`` ..
    ``block{blocks-1}/pointwise`` (each read by the next block)."""
    if blocks < 1:
        raise ValueError(f"a separable chain needs at least 1 block, got {blocks}.")
    return ("stem", *(f"block{i}/pointwise" for i in range(1, blocks)))


def _next_block(layer: str) -> str:
    """The block that reads ``layer``'s channels."""
    if layer == "stem":
        return "block1"
    return f"block{int(layer.split('/')[0].removeprefix('block')) + 1}"


def _check(leaves: Mapping[str, Any], structure: Structure, chain: Sequence[str]) -> None:
    bad = [k for k in structure.channels if k not in chain]
    if bad or structure.kernels or structure.positions:
        raise ValueError(
            f"separable pruning removes channels of {list(chain)} only; the structure names "
            f"{sorted(bad) or 'kernels or positions'}."
        )
    for layer, keep in structure.channels.items():
        width = np.shape(leaves[f"{layer}/kernel"])[-1]
        if np.shape(keep) != (width,) or not np.any(keep):
            raise ValueError(
                f"{layer}: a channel mask must be {width} booleans with one kept, got shape "
                f"{np.shape(keep)} with {int(np.sum(keep))} kept."
            )


def separable_masks(
    params: Params, structure: Structure, chain: Sequence[str]
) -> dict[str, np.ndarray]:
    """Boolean masks (True = kept) of the kernels a removed channel touches: the producer's
    filter, the next depthwise filter and the next pointwise input row. Biases are not masked:
    a removed channel's constant output reaches only masked weights."""
    leaves = named_leaves(params)
    _check(leaves, structure, chain)
    masks: dict[str, np.ndarray] = {}

    def mask(name: str) -> np.ndarray:
        if name not in masks:
            masks[name] = np.ones(np.shape(leaves[name]), bool)
        return masks[name]

    for layer, keep in structure.channels.items():
        keep = np.asarray(keep, bool)
        block = _next_block(layer)
        mask(f"{layer}/kernel")[..., ~keep] = False
        mask(f"{block}/depthwise/kernel")[..., ~keep] = False
        mask(f"{block}/pointwise/kernel")[:, :, ~keep, :] = False
    return masks


def separable_pruning(structure: Structure, chain: Sequence[str]) -> Compressor:
    """A pruning compressor removing ``structure``'s channels through separable blocks
    (``PruneState`` masks: it chains with ``fixed_point`` and retrains like any pruning)."""

    def init(params: Params) -> PruneState:
        masks = separable_masks(params, structure, chain)
        return PruneState({k: jnp.asarray(v) for k, v in masks.items()})

    def apply(params: Params, state: PruneState) -> tuple[Params, PruneState]:
        return masked(params, state.masks), state

    return Compressor(init, apply, _encode, decode_pruned, 0.0)


def shrink_separable(
    module: Any, params: Params, structure: Structure, chain: Sequence[str]
) -> tuple[Any, Params]:
    """The EmbedNet ``module`` narrowed to the surviving channels, with its sliced parameters.

    Args:
      module: an EmbedNet without weight standardisation (fold it first).
      params: its parameters.
      structure: the channels kept per producer of ``chain``.
      chain: :func:`separable_chain` of the module.

    Returns:
      ``(module with smaller stem_width / widths, params)``: the same function as the masked
      network up to float32 summation order.
    """
    if getattr(module, "standardize", False):
        raise ValueError("fold weight standardisation first (fold_standardization).")
    leaves = named_leaves(to_numpy(params))
    _check(leaves, structure, chain)
    new: dict[str, np.ndarray] = {}
    for layer, keep in structure.channels.items():
        keep = np.asarray(keep, bool)
        block = _next_block(layer)
        new[f"{layer}/kernel"] = new.get(f"{layer}/kernel", leaves[f"{layer}/kernel"])[..., keep]
        new[f"{layer}/bias"] = leaves[f"{layer}/bias"][keep]
        for name in (f"{block}/depthwise/kernel", f"{block}/depthwise/bias"):
            new[name] = leaves[name][..., keep]
        nxt = f"{block}/pointwise/kernel"
        new[nxt] = new.get(nxt, leaves[nxt])[:, :, keep, :]
    small = replace_leaves(to_numpy(params), new)
    width = {k: int(np.sum(v)) for k, v in structure.channels.items()}
    widths = [width.get(f"block{i + 1}/pointwise", w) for i, w in enumerate(module.widths)]
    return module.clone(
        stem_width=width.get("stem", module.stem_width), widths=tuple(widths)
    ), small


def stem_window(image_hw: Sequence[int], kernel: int, size: int) -> tuple[int, int]:
    """The row and column offsets of the ``size`` x ``size`` window of a ``kernel`` x ``kernel``
    stride-2 "SAME" convolution's taps that a ``size`` x ``size`` stride-2 "SAME" convolution
    reads on ``image_hw`` inputs (top-left on even sides; one lower on odd ones).

    Raises:
      ValueError: no such window (``size`` not in 1..``kernel``, or the pads do not nest).
    """
    if not 1 <= size <= kernel:
        raise ValueError(f"the stem window must be 1..{kernel} taps wide, got {size}.")
    offsets = tuple(same_pads(n, 2, kernel)[0] - same_pads(n, 2, size)[0] for n in image_hw)
    if not all(0 <= o <= kernel - size for o in offsets):
        raise ValueError(f"no {size}x{size} window of the stem nests in {tuple(image_hw)} inputs.")
    return offsets[0], offsets[1]


def shrink_stem(
    module: Any, params: Params, image_hw: Sequence[int], size: int
) -> tuple[Any, Params]:
    """The EmbedNet with its stem kernel cut to the ``size`` x ``size`` window
    :func:`stem_window` names: the same function as the stem with every other tap zeroed
    (intra-kernel sparsity shared by all stem filters), run as a smaller convolution.

    Args:
      module: an EmbedNet (weight standardisation folded).
      params: its parameters.
      image_hw: the input's height and width (the window depends on their parity).
      size: the kept window's side (``module.stem_kernel`` keeps the stem as it is).
    """
    if getattr(module, "standardize", False):
        raise ValueError("fold weight standardisation first (fold_standardization).")
    kernel = int(module.stem_kernel)
    if size == kernel:
        return module, params
    top, left = stem_window(image_hw, kernel, size)
    leaves = named_leaves(to_numpy(params))
    cut = leaves["stem/kernel"][top : top + size, left : left + size]
    return module.clone(stem_kernel=size), replace_leaves(to_numpy(params), {"stem/kernel": cut})


def l1_separable(params: Params, keep: Mapping[str, int]) -> Structure:
    """Li et al.'s choice: per producer, the ``keep[layer]`` filters of largest L1 norm."""
    leaves = named_leaves(params)
    norms = {
        layer: np.abs(np.asarray(leaves[f"{layer}/kernel"], np.float64))
        .reshape(-1, np.shape(leaves[f"{layer}/kernel"])[-1])
        .sum(0)
        for layer in keep
    }
    return Structure({k: keep_largest(norms[k], n) for k, n in keep.items()}, {}, {})


def select_separable(
    params: Params,
    keep: Mapping[str, int],
    error: Callable[[Params], float],
    *,
    chain: Sequence[str],
    settings: FilterSettings,
    rng: np.random.Generator,
    structure_error: Callable[[Structure], float] | None = None,
    margin: Callable[[float], float] | None = None,
    progress: bool = True,
) -> tuple[Structure, dict[str, Any]]:
    """One particle filter per producer of ``keep``, in ``chain`` order, each conditioned on the
    choices before it; ``error`` scores a masked network (a dev identification error or EER).

    Args:
      structure_error: scores a whole candidate structure instead of ``error`` of the masked
        parameters (e.g. the dev EER after a short retraining with its masks fixed); the
        producers not chosen yet then hold their L1 choice, so every particle is scored at the
        whole budget.
      margin: passed to every filter (:func:`particle_filter`): how much lower than the first
        particle's error (the L1 choice) a newcomer must score to replace it.

    Returns:
      ``(structure, log)``; ``log[layer]`` holds the filter's best error, the first particle's
      and its rounds.
    """
    channels: dict[str, np.ndarray] = {}
    placeholders = dict(l1_separable(params, keep).channels) if structure_error else {}
    log: dict[str, Any] = {}
    for layer in chain:
        if layer not in keep:
            continue
        base = dict(channels)

        def score(mask: np.ndarray, layer: str = layer, base: dict = base) -> float:
            if structure_error is not None:
                return float(
                    structure_error(Structure({**placeholders, **base, layer: mask}, {}, {}))
                )
            c = separable_pruning(Structure({**base, layer: mask}, {}, {}), chain)
            return float(error(c.apply(params, c.init(params))[0]))

        initial, perturb, _ = channel_particles(params, layer, keep[layer], settings, rng)
        result = particle_filter(
            score,
            initial,
            perturb,
            rounds=settings.rounds,
            temperature=settings.temperature,
            rng=rng,
            desc=f"{layer} channels",
            margin=margin,
            progress=progress,
        )
        channels[layer] = result.best
        log[layer] = {
            "error": result.error,
            "first_error": result.first_error,
            "rounds": result.history,
        }
    return Structure(channels, {}, {}), log
