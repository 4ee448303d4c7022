"""Whitening of a backbone's embedding, fitted on background people and folded into its last layer.

A trained embedding spends most of its variance on a few directions shared by everyone (the
fingerprint backbone's embeddings all lie within a cone: the mean of unit embeddings has norm
0.97), so cosines are dominated by what people have in common. Whitening with the second-moment
matrix ``S = E^T E / n`` of background embeddings, ``e -> e W`` with the ZCA whitener
``W = V diag((w + eps * max(w)) ** -1/2) V^T`` (``S = V diag(w) V^T``), weighs every direction
by how much people vary along it.

It costs nothing on the device: with no centring, ``normalize(normalize(h) W) = normalize(h W)``
for the pre-normalisation output ``h = x K + b`` of the last Dense layer (``embed``), so the
whitener folds into that layer, ``K <- K W``, ``b <- b W``, and every signature (``embed``,
``refine``, the training scopes) computes the whitened embedding with the same graph.

What it is fitted on is the dataset's choice (:mod:`export.artifact.sources`): people outside
training and evaluation, other than the background's where the dataset has them, so the device's
threshold is not set on the embeddings the whitener flattened.

Measured before it was built in, on the committed int8 artifacts' embeddings, class-mean
identification averaged over 9-10 random enrollment splits (whitener fitted on each artifact's
200 background embeddings; ``eps`` in units of the largest eigenvalue):

  =========================  ===============  ===============  ===============
  5-shot                     none             eps 1e-3         eps 1e-2
  =========================  ===============  ===============  ===============
  faces, ORL s21-s40         88.9%            92.7%            92.8%
  fingerprints, FVC B sets   20.9%            34.5%            27.2%
  =========================  ===============  ===============  ===============

Centring first did about as well (faces 92.8, FVC 38.7 at 1e-3) but does not fold. ``eps`` was
chosen among these values on those evaluation sets, which can only favour whitening; its
sensitivity is shown above. It does not help everywhere: with one enrollment face, the per-user
verification AUC fell from 0.955 to 0.916 (1-shot identification 79.1 -> 76.3%), as the
whitener also weighs up the directions the 20 background faces barely vary in.

References:
  Kessy, Lewin, Strimmer, "Optimal whitening and decorrelation", The American Statistician 2018.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devices.cosine import normalize
from export.artifact.split import Backbone
from pretrain.models.embednet import EmbedNet

EPS = 1e-3  # relative to the largest eigenvalue of the background's second moments
LAYER = "embed"


class WhiteningError(ValueError):
    """A backbone whose embedding cannot be whitened by folding; the message says why."""


# Training datasets whose backbones export unwhitened by default, with the development-set
# measurement that chose it.
UNWHITENED = {
    "lfw_yale_b": "LFW dev people, 5-shot identification / EER (10 random splits): unwhitened "
    "45.7% / 21.97%; whitened on 1,000 training images 39.4-42.3% / 25.7-29.7%, on the 1,000 "
    "background people 39.9-42.6% / 25.0-29.6% (eps 1e-3, 1e-2, 1e-1)",
    "synthetic_fingerprints": "the 100 synthetic validation identities x 8 impressions, "
    "5-shot identification / EER (10 random splits; `bench_export.py --search fingerprint`, "
    "export_search_fingerprint.json, the mixed backbone on anchor windows): unwhitened 98.7% / "
    "3.05%; whitened on 200 prints of 100 fresh identities 91.3% / 9.04% (eps 1e-3), 95.1% / "
    "6.25% (1e-2), 98.0% / 4.04% (1e-1); so on each backbone since scale2's (91.5% / 4.96% "
    "unwhitened, 88.9% / 6.46% at best whitened; the mixed backbone on core windows 93.3% / "
    "7.89% against 92.1% / 8.71%, export_search_fingerprint_mixed.json)",
}


def whitener(embeddings: np.ndarray, eps: float = EPS) -> np.ndarray:
    """ZCA whitener ``(d, d)`` of the unit rows of ``embeddings`` (second moments, no centring).

    Raises:
      WhiteningError: fewer than 2 rows, non-finite values or a bad ``eps``.
    """
    e = np.asarray(embeddings, np.float64)
    if e.ndim != 2 or len(e) < 2 or not np.all(np.isfinite(e)):
        raise WhiteningError(f"need >= 2 finite embedding rows, got shape {e.shape}.")
    if not 0.0 < eps <= 1.0:
        raise WhiteningError(f"eps must be in (0, 1], got {eps}.")
    e = normalize(e)
    w, v = np.linalg.eigh(e.T @ e / len(e))
    w = np.maximum(w, 0.0)
    return (v / np.sqrt(w + eps * w.max())) @ v.T


def can_whiten(backbone: Backbone) -> bool:
    """Whether ``backbone`` ends in an L2-normalised Dense ``embed`` layer (EmbedNet)."""
    layer = backbone.last_params.get(LAYER)
    return (
        backbone.name == "embednet"
        and EmbedNet(**backbone.options).normalize  # the model's own default when unset
        and isinstance(layer, dict)
        and {"kernel", "bias"} <= set(layer)
    )


def fold_whitening(backbone: Backbone, w: np.ndarray) -> Backbone:
    """The same backbone with ``w`` folded into its ``embed`` layer (see the module doc); any
    linear map of the embedding folds the same way (a sensor calibration's projection,
    :mod:`export.artifact.sensor`).

    Raises:
      WhiteningError: the backbone has no normalised ``embed`` layer or ``w`` has another size.
    """
    if not can_whiten(backbone):
        raise WhiteningError(
            f"model {backbone.name!r} does not end in an L2-normalised Dense {LAYER!r} layer; "
            "only such embeddings can be whitened by folding."
        )
    layer: dict[str, Any] = backbone.last_params[LAYER]
    d = np.shape(layer["kernel"])[-1]
    if np.shape(w) != (d, d):
        raise WhiteningError(f"whitener of shape {np.shape(w)} for a {d}-d embedding.")
    folded = {
        **layer,
        "kernel": (np.asarray(layer["kernel"], np.float64) @ w).astype(np.float32),
        "bias": (np.asarray(layer["bias"], np.float64) @ w).astype(np.float32),
    }
    return backbone._replace(last_params={**backbone.last_params, LAYER: folded})
