"""Losses of identity-embedding training: margin softmax (CosFace, ArcFace) and NT-Xent.

Both work on L2-normalised vectors, i.e. on cosine similarities: the score the verification
protocol and the phone's accept/reject threshold use.

References:
  Wang et al., "CosFace: large margin cosine loss for deep face recognition", CVPR 2018.
  Deng et al., "ArcFace: additive angular margin loss for deep face recognition", CVPR 2019.
  Chen, Kornblith, Norouzi, Hinton, "A simple framework for contrastive learning of visual
  representations" (SimCLR, NT-Xent), ICML 2020.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

MARGINS = ("cosface", "arcface")


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
    """``x`` scaled to unit L2 norm along ``axis`` (zero vectors stay zero)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def cosine_logits(embeddings: jax.Array, weights: jax.Array) -> jax.Array:
    """Cosine of each embedding ``(n, d)`` with each class weight column ``(d, c)``: ``(n, c)``."""
    return l2_normalize(embeddings) @ l2_normalize(weights, axis=0)


def margin_logits(
    cosines: jax.Array,
    labels: jax.Array,
    *,
    scale: float,
    margin: float | jax.Array,
    kind: str = "cosface",
) -> jax.Array:
    """Scaled logits with the target class's cosine penalised by the margin.

    Args:
      cosines: ``(n, c)`` cosine similarities to the class weights.
      labels: ``(n,)`` integer class of each row.
      scale: the logit scale ``s`` (the radius of the hypersphere).
      margin: ``m``: CosFace uses ``cos(theta) - m``; ArcFace ``cos(theta + m)`` (past
        ``theta + m = pi``, where that stops decreasing, ``cos(theta) - m sin(m)``, as in
        InsightFace).
      kind: ``"cosface"`` or ``"arcface"``.

    Returns:
      ``(n, c)`` logits for softmax cross-entropy.
    """
    if kind not in MARGINS:
        raise ValueError(f"margin kind must be one of {MARGINS}, got {kind!r}.")
    cos = jnp.clip(cosines, -1.0, 1.0)
    target = jax.nn.one_hot(labels, cos.shape[-1], dtype=bool)
    if kind == "cosface":
        penalised = cos - margin
    else:
        sin = jnp.sqrt(jnp.clip(1.0 - cos * cos, 0.0, 1.0))
        m = jnp.asarray(margin, cos.dtype)  # may be traced (a warm-up schedule)
        shifted = cos * jnp.cos(m) - sin * jnp.sin(m)
        penalised = jnp.where(cos > jnp.cos(math.pi - m), shifted, cos - m * jnp.sin(m))
    return scale * jnp.where(target, penalised, cos)


def margin_softmax_loss(
    cosines: jax.Array,
    labels: jax.Array,
    *,
    scale: float,
    margin: float | jax.Array,
    kind: str = "cosface",
) -> jax.Array:
    """Per-example margin-softmax cross-entropy (see :func:`margin_logits`), ``(n,)``.

    Written with a one-hot product, not a gather: the gather's gradient is a scatter that the
    LiteRT interpreter cannot run, and a device train signature may reuse this loss.
    """
    logits = margin_logits(cosines, labels, scale=scale, margin=margin, kind=kind)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(logp * jax.nn.one_hot(labels, logits.shape[-1], dtype=logp.dtype), axis=-1)


def nt_xent(
    z1: jax.Array, z2: jax.Array, *, temperature: float, duplicates: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Normalised-temperature cross-entropy of two views of the same ``n`` examples.

    Each of the ``2n`` vectors must pick its other view among the ``2n - 1`` others, by cosine
    similarity divided by ``temperature``.

    Args:
      z1: ``(n, d)`` first views (normalised here).
      z2: ``(n, d)`` second views, row ``i`` the same example as ``z1[i]``.
      temperature: softmax temperature.
      duplicates: optional ``(n, n)`` boolean, True where examples ``i != j`` are copies of the
        same source image; their views are left out of each other's negatives (a copy is not
        another image).

    Returns:
      ``(loss, correct)``, each ``(2n,)``: the per-vector loss, and whether its most similar
      other vector is its positive.
    """
    n = z1.shape[0]
    z = l2_normalize(jnp.concatenate([z1, z2], axis=0))
    sim = (z @ z.T) / temperature
    excluded = jnp.eye(2 * n, dtype=bool)  # never its own positive
    positive = jnp.concatenate([jnp.arange(n, 2 * n), jnp.arange(0, n)])
    if duplicates is not None:
        dup = jnp.tile(duplicates & ~jnp.eye(n, dtype=bool), (2, 2))
        excluded |= dup & ~jax.nn.one_hot(positive, 2 * n, dtype=bool)
    sim = jnp.where(excluded, -1e9, sim)
    loss = optax.softmax_cross_entropy_with_integer_labels(sim, positive)
    correct = jnp.argmax(sim, axis=-1) == positive
    return loss, correct
