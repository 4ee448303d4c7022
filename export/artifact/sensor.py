"""Calibrating an artifact to a sensor: the direction its captures share, projected out.

A backbone pretrained on synthetic prints maps a real sensor's prints into a narrow cone: their
unit embeddings share one component that says "this sensor" rather than "this finger"
(:mod:`pretrain.evaluation.domain`; on the committed fingerprint artifact the mean unit embedding
of the FVC sensor sets has norm 0.59-0.73, of synthetic people 0.15). Every impostor pair then
looks alike, and a threshold calibrated on synthetic background people lets real impostors
through. Whoever ships an artifact for a sensor can remove that component with unlabeled captures
of people other than its users (a lab's staff, a vendor's test fingers): the top ``k`` right
singular vectors ``V`` of their unit embeddings (uncentred) span it, and

    e -> normalize(e P),   P = I - V^T V

drops it. ``P`` is linear, so like the whitener it folds into the ``embed`` layer
(``K <- K P``, ``b <- b P``; :func:`export.artifact.whiten.fold_whitening`): every signature
(``embed``, ``refine``, the training scopes) and the background people the device calibrates its
thresholds on see the calibrated embedding, at no cost on the device.

``k`` was chosen on the development proxy (``notebooks/results/fingerprint_ablation.md``, "Real
prints share one direction"). There the mixed-generator artifact meets the default generator's
prints as "another sensor", calibrated on 200 unlabeled captures of 100 other identities. On
100 held-out identities x 8 (class-mean templates, numpy), k = 1 took EER 1.89 -> 1.86% and FAR
over target at 2e-5 from 30.9x to 11.4x (k = 2, 3, 5: EER 2.00 / 1.98 / 2.40%, 23.4x / 21.5x /
13.9x).

Through the whole device flow, built by ``export build``, that proxy's small cone (0.28) gained
nothing: FAR 8.2x -> 9.7x the target, FRR 29.9 -> 27.9%. On real sensors, where the cone is
0.6-0.7, it does gain. As a diagnosis that reads FVC, each sensor set's artifact was calibrated
on the other four sets' prints; through the device flow FAR fell 7.9e-2 -> 2.3e-2 and FRR rose
13.1 -> 20.2%. A compressed download calibrated the same way (OTA retraining after the fold)
halved 2000_DB1_B's FAR, 9.4e-2 -> 4.9e-2 (the retraining keeps part of the fold).

The calibration belongs to one sensor: on the training generator's own prints the k = 1
artifact of the proxy read dev EER 3.76 -> 4.43%. So it is a build option, never a default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from devices.cosine import normalize

DIRECTIONS = 1  # chosen on the development proxy (module doc)
MIN_CAPTURES = 20  # fewer cannot tell a sensor's direction from its people's


class SensorCalibrationError(ValueError):
    """Captures that cannot calibrate an artifact; the message says why."""


def sensor_projection(
    embeddings: np.ndarray, directions: int = DIRECTIONS
) -> tuple[np.ndarray, dict[str, Any]]:
    """The projection ``(d, d)`` that removes the captures' shared directions, and its record.

    Args:
      embeddings: ``(n, d)`` embeddings of unlabeled captures from the sensor (normalised here).
      directions: how many shared directions to remove (``k``).

    Returns:
      ``(P, record)``; the record (for the manifest) holds the captures' count, ``k``, the mean
      unit embedding's norm before and after, and the share of the captures' energy removed.

    Raises:
      SensorCalibrationError: fewer than :data:`MIN_CAPTURES` rows, non-finite values, or ``k``
        outside ``1 .. d - 1``.
    """
    e = np.asarray(embeddings, np.float64)
    if e.ndim != 2 or len(e) < MIN_CAPTURES:
        raise SensorCalibrationError(
            f"need at least {MIN_CAPTURES} captures' embeddings (n, d), got shape {e.shape}."
        )
    if not np.all(np.isfinite(e)):
        raise SensorCalibrationError("the captures' embeddings contain NaN or infinity.")
    d = e.shape[1]
    if not 1 <= directions < d:
        raise SensorCalibrationError(f"directions must be in 1..{d - 1}, got {directions}.")
    e = normalize(e)
    _, s, vt = np.linalg.svd(e, full_matrices=False)
    v = vt[:directions]
    p = np.eye(d) - v.T @ v
    after = normalize(e @ p)
    record = {
        "kind": "projection removing the sensor captures' top shared directions (uncentred SVD "
        "of their unit embeddings), folded into the last/embed kernel and bias",
        "captures": len(e),
        "directions": directions,
        "mean_unit_norm_before": float(np.linalg.norm(e.mean(axis=0))),
        "mean_unit_norm_after": float(np.linalg.norm(after.mean(axis=0))),
        "energy_removed": float(np.sum(s[:directions] ** 2) / np.sum(s**2)),
    }
    return p, record


def check_captures(captures: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``captures`` as a list of 2-d or 3-d arrays, at least :data:`MIN_CAPTURES` of them.

    Raises:
      SensorCalibrationError: too few, or one that is not an image.
    """
    images = [np.asarray(c) for c in captures]
    if len(images) < MIN_CAPTURES:
        raise SensorCalibrationError(
            f"need at least {MIN_CAPTURES} captures from the sensor to calibrate to it, got "
            f"{len(images)}."
        )
    for i, image in enumerate(images):
        if image.ndim not in (2, 3) or min(image.shape[:2]) < 8:
            raise SensorCalibrationError(
                f"capture {i} has shape {image.shape}: not an image (h, w[, c])."
            )
    return images


def check_calibration(
    captures: Sequence[np.ndarray], *, made_before: str | None
) -> list[np.ndarray]:
    """:func:`check_captures` at an export's start, before any slow step; ``made_before`` names
    a compressed form the caller was handed (``"bundle"``, ``"compression"``), which a
    calibration cannot ship: it was made from the uncalibrated backbone.

    Raises:
      SensorCalibrationError: as :func:`check_captures`, or ``made_before`` is given.
    """
    images = check_captures(captures)
    if made_before is not None:
        raise SensorCalibrationError(
            f"a {made_before} made before the sensor calibration would ship the uncalibrated "
            "backbone: compress the calibrated one instead."
        )
    return images
