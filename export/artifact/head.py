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

from devices import cosine

EPS = 1e-6  # inside the model's graph (and its TensorFlow steps): kept as exported


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
    """Imprinted kernel ``(d, classes)``: column ``c`` is class ``c``'s template
    (:func:`devices.cosine.imprint`); slots without examples are zero (score 0 against everything).
    """
    return cosine.imprint(embeddings, labels, classes)[1].T.astype(np.float32)


def sgd_step(params: dict, grads: dict, lr: jax.Array, weight_decay: jax.Array) -> dict:
    """``w <- w - lr * (g + weight_decay * w)`` on every leaf: SGD whose update includes decay."""
    return jax.tree.map(lambda w, g: w - lr * (g + weight_decay * w), params, grads)
