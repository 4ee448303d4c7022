"""A minutiae-map head on an inner block of the backbone, trained beside the identity loss
(DeepPrint-style multi-task training: Engelsma, Cao, Jain, "Learning a Fixed-Length
Fingerprint Representation", IEEE TPAMI 2019).

The head is one linear map (a 1x1 convolution) from the feature map an inner block (or
EmbedNet's ridge branch) outputs to a minutia logit per cell, optionally after a 3x3
convolution and a ReLU of its own (``hidden``): the block's features must then say where
minutiae are, which the identity loss alone never asked of them (flow twins,
notebooks/results/fingerprint_ablation.md). The target is the print's minutiae map
(:mod:`pretrain.data.minutiae_maps`) pooled to the block's grid by the maximum: a cell is 1 if
a minutia lies in it, 0 if none does, and ignored where the print shows nothing (every pixel
of the cell is ``TARGET_FILL``). The head is the task's own parameter and is dropped when the
model is saved: the exported backbone is unchanged in shape.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from pretrain.train.tasks import ApplyFn, Params


def block_name(block: int) -> str:
    return f"block{block}"


def embed_and_features(
    apply_fn: ApplyFn, model: Params, images: jax.Array, name: str
) -> tuple[jax.Array, jax.Array]:
    """The model's embeddings of ``images`` and the feature map its submodule ``name`` outputs
    (``block_name(k)`` for block ``k``, ``"ridge"`` for EmbedNet's ridge branch)."""
    embeddings, state = apply_fn(
        {"params": model},
        images,
        capture_intermediates=lambda module, method: module.name == name and method == "__call__",
        mutable=["intermediates"],
    )
    return embeddings, state["intermediates"][name]["__call__"][0]


def init_head(key: jax.Array, channels: int, hidden: int = 0) -> Params:
    """The head's parameters: a ``(c, 1)`` kernel and a bias, set so that the first logit is a
    prior of 0.12 (bias -2; on the training maps 25% of the cells that show print hold a
    minutia). With ``hidden`` > 0 a 3x3 convolution to ``hidden`` channels and a ReLU come
    first (``"conv"``: He-initialised), so the head can find minutiae the block's features do
    not hold linearly; ``c`` is then ``hidden``."""
    k_out, k_conv = key, jax.random.fold_in(key, 1)
    head: Params = {}
    if hidden:
        scale = (2.0 / (9 * channels)) ** 0.5
        conv = jax.random.normal(k_conv, (3, 3, channels, hidden)) * scale
        head["conv"] = {"kernel": conv, "bias": jnp.zeros((hidden,))}
        channels = hidden
    head["kernel"] = jax.random.normal(k_out, (channels, 1)) * 0.01
    head["bias"] = jnp.full((1,), -2.0)
    return head


def head_logits(head: Params, features: jax.Array) -> jax.Array:
    """``(n, h, w)`` minutia logits of the block's ``(n, h, w, c)`` feature map."""
    if "conv" in head:
        features = jax.lax.conv_general_dilated(
            features,
            head["conv"]["kernel"],
            window_strides=(1, 1),
            padding="SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        features = jax.nn.relu(features + head["conv"]["bias"])
    return (features @ head["kernel"])[..., 0] + head["bias"][0]


def pooled_target(maps: jax.Array, grid: tuple[int, int]) -> jax.Array:
    """``(n, gh, gw)``: each cell's largest map value (``maps`` ``(n, h, w)``, ``h`` a multiple
    of ``gh``); negative where the cell shows no print."""
    n, h, w = maps.shape
    fh, fw = h // grid[0], w // grid[1]
    return jnp.max(maps.reshape(n, grid[0], fh, grid[1], fw), axis=(2, 4))


def minutiae_loss(head: Params, features: jax.Array, maps: jax.Array) -> jax.Array:
    """Mean binary cross-entropy of the head's logits over the cells that show print."""
    logits = head_logits(head, features)
    target = pooled_target(maps, (features.shape[1], features.shape[2]))
    seen = (target >= 0).astype(logits.dtype)
    per_cell = optax.sigmoid_binary_cross_entropy(logits, jnp.clip(target, 0.0, 1.0))
    return jnp.sum(per_cell * seen) / jnp.maximum(jnp.sum(seen), 1.0)


def head_channels(module: Any, model: Params, example: jax.Array, name: str) -> int:
    """Channels of the feature map submodule ``name`` outputs (shape inference only)."""
    shape = jax.eval_shape(
        lambda p: embed_and_features(module.apply, p, example, name)[1], model
    ).shape
    return int(shape[-1])
