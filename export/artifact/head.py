"""The device head: a cosine classifier over a fixed number of class slots, and its SGD step.

``scores = scale * normalize(e) @ normalize_columns(W)``. Training starts from imprinting
(each column = the normalised mean of a class's normalised embeddings), so a few SGD steps refine
a solution that already works. These JAX functions are converted into the artifact's signatures
and are also the reference the converted model is tested against.

References:
  Qi, Brown, Lowe, "Low-shot learning with imprinted weights", CVPR 2018.
  Wang et al., "CosFace: large margin cosine loss for deep face recognition", CVPR 2018 (scale).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-6


class HeadConfig(NamedTuple):
    """Shape and scale of the head.

    Attributes:
      embedding_dim: size of the embeddings the head reads.
      classes: class slots (enrolled people plus background prototypes; see personalize).
      scale: cosine logit scale ``s``.
    """

    embedding_dim: int
    classes: int
    scale: float = 16.0


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
    """``x / max(||x||, EPS)`` along ``axis``: zero vectors stay zero (empty class slots).

    The norm of a zero vector is computed off the square-root branch: the gradient of ``||x||``
    there is 0/0 = NaN, and one empty class slot then turned every weight NaN after the first
    device SGD step. Same values as ``jnp.linalg.norm`` everywhere else.
    """
    squared = jnp.sum(x * x, axis=axis, keepdims=True)
    positive = squared > 0
    norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)
    return x / jnp.maximum(norm, EPS)


def scores(kernel: jax.Array, embeddings: jax.Array, scale: float) -> jax.Array:
    """Cosine logits ``(n, classes)`` of ``embeddings (n, d)`` against ``kernel (d, classes)``."""
    return scale * l2_normalize(embeddings) @ l2_normalize(kernel, axis=0)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels (written out: it must convert to TFLite)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.sum(logp * jax.nn.one_hot(labels, logits.shape[-1]), axis=-1))


def imprint(embeddings: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Imprinted kernel ``(d, classes)``: column ``c`` = normalised mean of class ``c``'s
    normalised embeddings; slots without examples are zero (score 0 against everything)."""
    e = np.asarray(embeddings, np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), EPS)
    kernel = np.zeros((e.shape[1], classes))
    for c in np.unique(labels):
        if not 0 <= c < classes:
            raise ValueError(f"label {c} outside the head's {classes} class slots.")
        mean = e[labels == c].mean(axis=0)
        kernel[:, c] = mean / max(np.linalg.norm(mean), EPS)
    return kernel.astype(np.float32)


def sgd_step(params: dict, grads: dict, lr: jax.Array, weight_decay: jax.Array) -> dict:
    """``w <- w - lr * (g + weight_decay * w)`` on every leaf: SGD whose update includes decay."""
    return jax.tree.map(lambda w, g: w - lr * (g + weight_decay * w), params, grads)
