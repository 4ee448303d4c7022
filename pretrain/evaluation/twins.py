"""Whether a fingerprint backbone reads ridge detail or only the flow: its scores on flow twins.

Flow twins (``GeneratorConfig.twin_share``) are two fingers with the same fingertip, flow and
ridge period, grown from different seeds: they differ in ridge detail (minutiae) only, as real
fingers of one flow do. A backbone that tells prints apart by their flow scores a twin pair as
it scores two impressions of one finger; one that reads ridge detail scores it as any impostor
pair. Three mean cosines and one EER show which:

  * ``genuine_cosine_mean``: pairs of impressions of one finger;
  * ``twin_cosine_mean``: pairs of impressions of two twins;
  * ``impostor_cosine_mean``: pairs of other fingers;
  * ``twin_eer_pct``: the EER of genuine pairs against twin pairs alone (50% = blind to ridge
    detail; 0 = twins are told apart as well as genuine pairs are recognised).

Twins are the identity pairs ``(2k, 2k + 1)`` of the labels. Measured on the dev identities
(0-99 x 8, seed 0) drawn as twins, the committed backbone's twin EER is 43.5% (genuine 0.57,
twins 0.53, other fingers 0.02; ``notebooks/results/fingerprint_twins.json``,
``fingerprint_ablation.md`` "Flow twins").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devices.cosine import normalize
from devices.verification import eer


class TwinSeparationError(ValueError):
    """Embeddings and labels that cannot be measured; the message says why."""


def twin_pairs(labels: np.ndarray) -> np.ndarray:
    """``(m, 2)`` index pairs ``i < j`` of samples of two twins (labels ``2k`` and ``2k + 1``),
    row-major."""
    y = np.asarray(labels)
    twin = (y[:, None] // 2 == y[None, :] // 2) & (y[:, None] != y[None, :])
    return np.argwhere(np.triu(twin, 1))


def twin_separation(features: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The mean cosines of genuine, twin and other pairs, and the genuine-vs-twin EER.

    Args:
      features: ``(n, d)`` embeddings (normalised here).
      labels: ``(n,)`` non-negative integer identity of each row; identities ``2k`` and
        ``2k + 1`` are twins. At least one twin pair with two samples per finger.

    Raises:
      TwinSeparationError: shapes that do not match, non-finite values, negative labels, or no
        twin pair or no genuine pair to score.
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise TwinSeparationError(
            f"need (n, d) features and (n,) labels, got {np.shape(features)} and {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise TwinSeparationError("labels must be non-negative integers (twins: 2k, 2k + 1).")
    if not np.all(np.isfinite(x)):
        raise TwinSeparationError("features contain NaN or infinity: check the model.")
    e = normalize(x)
    cos = e @ e.T
    upper = np.triu(np.ones(cos.shape, bool), 1)
    same = y[:, None] == y[None, :]
    rows, cols = twin_pairs(y).T
    twin = np.zeros(cos.shape, bool)
    twin[rows, cols] = True
    genuine, twins, other = cos[same & upper], cos[rows, cols], cos[~same & ~twin & upper]
    if not len(genuine) or not len(twins):
        raise TwinSeparationError(
            "need two samples of some finger and samples of both fingers of some pair (2k, "
            f"2k + 1); got {len(genuine)} genuine and {len(twins)} twin pairs."
        )
    return {
        "genuine_cosine_mean": float(genuine.mean()),
        "twin_cosine_mean": float(twins.mean()),
        "impostor_cosine_mean": float(other.mean()) if len(other) else None,
        "twin_eer_pct": 100.0 * float(eer(genuine, twins)),
        "genuine_pairs": len(genuine),
        "twin_pairs": len(twins),
    }
