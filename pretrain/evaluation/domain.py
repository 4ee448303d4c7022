"""How much of a set's embeddings is one shared direction that carries no identity.

A backbone trained on one domain (synthetic prints) can map the samples of another (a real
sensor's prints) into a narrow cone: their unit embeddings share a component that says "this
sensor" rather than "this finger". Every impostor pair of that domain then looks alike, a
threshold calibrated on people of the training domain lets its impostors through, and the
identity part of each cosine is squeezed into what the shared part leaves.

Two numbers show it, on any labelled set of embeddings:

  * ``mean_unit_norm``: the norm of the mean of the unit embeddings (0 for directions spread
    evenly, 1 when every sample is the same direction);
  * ``impostor_cosine_mean`` (and its 99th percentile): the mean cosine of pairs of samples of
    different identities (0 when people are unrelated; a domain offset raises it by about
    ``mean_unit_norm ** 2``).

Measured by bench-embed on the committed fingerprint backbone (float, first windows;
``embedding.json`` ``fingerprint.*.domain_offset``): the held-out synthetic people 0.08 / 0.00,
the default generator's 0.27 / 0.07, the five FVC sensor sets 0.56-0.71 / 0.27-0.46
(``notebooks/results/fingerprint_ablation.md``, "Real prints share one direction").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devices.cosine import normalize

# A set is scored in chunks of rows so a large one never builds its whole (n, n) matrix.
_CHUNK = 1024


class DomainOffsetError(ValueError):
    """Embeddings and labels that cannot be measured; the message says why."""


def domain_offset(features: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """``mean_unit_norm``, ``impostor_cosine_mean`` and ``impostor_cosine_p99`` of a set.

    Args:
      features: ``(n, d)`` embeddings (normalised here), or ``(n, w, d)`` registration windows,
        of which the first is read (the window every print has).
      labels: ``(n,)`` identity of each row; at least two identities.

    Raises:
      DomainOffsetError: shapes that do not match, non-finite values, or a single identity.
    """
    x = np.asarray(features, np.float64)
    if x.ndim == 3:
        x = x[:, 0]
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise DomainOffsetError(
            f"need (n, d) or (n, windows, d) features and (n,) labels, got {np.shape(features)} "
            f"and {y.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise DomainOffsetError("features contain NaN or infinity: check the model.")
    if np.unique(y).size < 2:
        raise DomainOffsetError("need at least two identities for impostor pairs.")
    e = normalize(x)
    impostors = []
    for start in range(0, len(e), _CHUNK):
        rows = slice(start, start + _CHUNK)
        cos = e[rows] @ e.T
        other = y[rows, None] != y[None, :]
        impostors.append(cos[other])
    imp = np.concatenate(impostors)
    return {
        "mean_unit_norm": float(np.linalg.norm(e.mean(axis=0))),
        "impostor_cosine_mean": float(imp.mean()),
        "impostor_cosine_p99": float(np.quantile(imp, 0.99)),
        "samples": len(e),
        "identities": int(np.unique(y).size),
    }


def offsets_by_group(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray
) -> dict[str, dict[str, Any]]:
    """:func:`domain_offset` of each group's rows (e.g. each sensor set), keyed by group."""
    g = np.asarray(groups)
    if g.shape != (np.shape(features)[0],):
        raise DomainOffsetError(f"need one group per row, got {g.shape} for {np.shape(features)}.")
    return {
        str(name): domain_offset(np.asarray(features)[g == name], np.asarray(labels)[g == name])
        for name in dict.fromkeys(g.tolist())
    }
