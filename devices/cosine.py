"""Cosine templates: unit-norm rows and imprinted class templates (numpy only).

One home for the arithmetic the server's evaluation, the export's head and the phone's enrollment
share: ``normalize`` (zero rows stay zero) and ``imprint`` (each class's template is the
normalised mean of its normalised embeddings). ``EPS`` only guards zero vectors (empty class
slots): ``max(norm, EPS)`` is the norm itself for any vector longer than it, and the committed
artifacts' background embeddings have norms 0.99-1.02 (face, fingerprint) and 4.1-34 (LeNets), so
the former 1e-6 (export's and the device's copies) and 1e-12 (the evaluation's) give the same
bits on them.

References:
  Qi, Brown, Lowe, "Low-shot learning with imprinted weights", CVPR 2018.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x`` scaled to unit L2 norm along ``axis`` (float64; zero vectors stay zero)."""
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), EPS)


def imprint(
    embeddings: np.ndarray, labels: np.ndarray, classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Class templates: the normalised mean of each class's normalised embeddings.

    Args:
      embeddings: ``(n, d)``; any scale.
      labels: ``(n,)`` class of each row.
      classes: with a count, classes ``0..classes-1`` (a class without rows gets a zero template,
        which scores 0 against everything); without, the labels present.

    Returns:
      ``(ids, templates)``: ``templates[i]`` (float64, unit or zero) is the template of ``ids[i]``.

    Raises:
      ValueError: a label outside ``0..classes-1``.
    """
    x, labels = normalize(embeddings), np.asarray(labels)
    ids = np.unique(labels)
    if classes is not None:
        outside = ids[(ids < 0) | (ids >= classes)]
        if outside.size:
            raise ValueError(f"label {outside[0]} outside the head's {classes} class slots.")
        ids = np.arange(classes)
    templates = np.zeros((len(ids), x.shape[-1]))
    for i, c in enumerate(ids):
        members = x[labels == c]
        if len(members):
            templates[i] = members.mean(axis=0)
    return ids, normalize(templates)
