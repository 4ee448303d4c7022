"""The per-user head on the device: background prototypes, imprinting, and the SGD loop that
drives the artifact's ``train`` signature with early stopping (numpy + LiteRT only).

The head is a cosine classifier with ``K`` class slots: slot 0 is the user, slots ``1..K-1`` are
prototypes of background people (spherical k-means centres of the background embeddings), so
cross-entropy has real negatives and the user's column is pushed away from the crowd it will be
compared against. Each step trains on every enrollment sample (label 0) and a fresh draw of
background negatives (labelled with their prototype).

References:
  Qi, Brown, Lowe, "Low-shot learning with imprinted weights", CVPR 2018.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from devices.cosine import imprint, normalize


def prototypes(
    embeddings: np.ndarray, k: int, *, seed: int = 0, iterations: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (k-means++ start): ``(centres (k, d) unit rows, labels (n,))``."""
    x = normalize(embeddings)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"cannot make {k} prototypes from {n} background embeddings.")
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):
        d = 1.0 - np.max(x @ np.stack(centres).T, axis=1)
        p = np.maximum(d, 0.0) ** 2
        centres.append(x[rng.choice(n, p=p / p.sum())] if p.sum() > 0 else x[rng.integers(n)])
    c = np.stack(centres)
    labels = np.zeros(n, np.int64)
    for _ in range(iterations):
        labels = np.argmax(x @ c.T, axis=1)
        new = np.stack([x[labels == j].sum(0) if np.any(labels == j) else c[j] for j in range(k)])
        new = normalize(new)
        if np.allclose(new, c):
            break
        c = new
    return c.astype(np.float32), labels


def imprint_kernel(owner: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Kernel ``(d, 1 + k)``: the owner's normalised mean embedding, then the prototypes."""
    _, owner_template = imprint(owner, np.zeros(len(owner), np.int64))
    return np.concatenate([owner_template.T, normalize(centres).T], axis=1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SgdConfig:
    """Few-shot SGD with weight decay, and its early stopping.

    Attributes:
      lr: learning rate.
      weight_decay: decay on kernels (the artifact's step applies it inside the update).
      max_steps: hard limit.
      negatives: background negatives per step (at least ``4 x`` the samples is used).
      patience: stop after this many steps without the smoothed loss improving by ``min_delta``.
      min_delta: relative improvement that counts.
      smoothing: exponential moving average factor of the loss (negatives are redrawn each step).
      converged: stop as soon as the smoothed loss is below this (from step 2): the head already
        tells the samples from the negatives (mean probability of the right slot about
        ``1 - converged``), and each further step moves it by about ``lr * converged``. ``0``
        disables it.

    Defaults: ``make bench-enroll`` (``notebooks/results/enrollment.json``: face 5-shot
    identification about 89-91% on ORL s21-s40, enrollment about 6 ms; about 4 minutes on two
    cores). How they were chosen: ``notebooks/results/tuning_notes.md``.
    """

    lr: float = 0.01
    weight_decay: float = 5e-4
    max_steps: int = 100
    negatives: int = 20
    patience: int = 4
    min_delta: float = 0.01
    smoothing: float = 0.7
    converged: float = 0.01

    def __post_init__(self) -> None:
        if not (self.lr > 0 and self.weight_decay >= 0 and self.max_steps >= 1):
            raise ValueError(
                f"need lr > 0, weight_decay >= 0, max_steps >= 1; got {self.lr}, "
                f"{self.weight_decay}, {self.max_steps}."
            )
        if self.negatives < 1 or self.patience < 1 or not 0 <= self.smoothing < 1:
            raise ValueError("need negatives >= 1, patience >= 1, 0 <= smoothing < 1.")
        if not 0 <= self.converged < 1:
            raise ValueError(f"need 0 <= converged < 1, got {self.converged}.")

    def batch_negatives(self, samples: int, available: int) -> int:
        return min(available, max(self.negatives, 4 * samples))


@dataclasses.dataclass(frozen=True)
class TrainResult:
    steps: int
    initial_loss: float
    final_loss: float
    stopped_early: bool
    seconds: float
    stop_reason: str = "max_steps"  # "converged", "plateau" or "max_steps"


def run_sgd(
    step: Callable[..., Any],
    source: str,
    positives: np.ndarray,
    negatives: np.ndarray,
    negative_labels: np.ndarray,
    config: SgdConfig,
    *,
    seed: int = 0,
) -> TrainResult:
    """Calls the artifact's train signature until the loss stops improving.

    Args:
      step: the train signature runner (``source``, labels, lr, weight_decay) -> loss.
      source: its input name (``"embeddings"`` or ``"features"``).
      positives: the user's inputs (label 0).
      negatives: background inputs; ``negative_labels`` their prototype slots (>= 1).
    """
    rng = np.random.default_rng(seed)
    m = config.batch_negatives(len(positives), len(negatives))
    labels = np.concatenate([np.zeros(len(positives)), np.zeros(m)]).astype(np.int32)
    lr, wd = np.float32(config.lr), np.float32(config.weight_decay)
    batch = np.empty((len(positives) + m, *positives.shape[1:]), np.float32)
    batch[: len(positives)] = positives
    best = ema = first = loss = float("nan")
    since, steps, reason = 0, 0, "max_steps"
    t0 = time.perf_counter()
    for steps in range(1, config.max_steps + 1):
        pick = rng.choice(len(negatives), m, replace=False)
        batch[len(positives) :] = negatives[pick]
        labels[len(positives) :] = negative_labels[pick]
        loss = float(step(**{source: batch}, labels=labels, lr=lr, weight_decay=wd)["loss"])
        if not np.isfinite(loss):
            raise FloatingPointError(f"training diverged at step {steps} (loss {loss}).")
        if steps == 1:
            first = best = ema = loss
            continue
        ema = config.smoothing * ema + (1 - config.smoothing) * loss
        if ema < config.converged:
            reason = "converged"
            break
        if ema < best * (1 - config.min_delta):
            best, since = ema, 0
        else:
            since += 1
            if since >= config.patience:
                reason = "plateau"
                break
    early = reason != "max_steps"
    return TrainResult(steps, first, loss, early, time.perf_counter() - t0, reason)
