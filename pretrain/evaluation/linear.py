"""A linear classifier on fixed features: multinomial logistic regression with an L2 penalty
(numpy loss and gradient, scipy's L-BFGS), its strength chosen on a validation slice.

Features are standardised with the training slice's mean and spread (nothing from validation or
test leaks in). The penalty is ``l2 / 2 * ||W||^2`` on the weights, not the biases, added to the
mean cross-entropy, so the same ``l2`` means the same thing at every training-set size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.optimize

# The strengths tried, strongest first (each fit warm-starts from the previous one): decades,
# and an iteration cap, that keep a 10,000-image MNIST grid to about a minute on a shared core.
L2_GRID = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)
MAX_ITERATIONS = 100


class LinearError(ValueError):
    """Training data a linear classifier cannot fit (shapes, labels, too few classes)."""


class LinearModel(NamedTuple):
    """``argmax((x - mean) / scale @ weights + bias)``."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    l2: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return z @ self.weights + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.argmax(self.scores(features), axis=1)

    def error(self, features: np.ndarray, labels: np.ndarray) -> float:
        """Error rate (0..1) on ``features``."""
        return float(np.mean(self.predict(features) != np.asarray(labels)))


class Chosen(NamedTuple):
    """The model of the strength with the lowest validation error, and every strength's error."""

    model: LinearModel
    val_errors: dict[float, float]


def _check(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise LinearError(
            f"expected (n, d) features and (n,) labels, got {x.shape} and {y.shape}: flatten "
            f"the features and pass one label per row."
        )
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise LinearError("labels must be integers 0..classes-1.")
    if not np.all(np.isfinite(x)):
        raise LinearError(f"{int(np.sum(~np.isfinite(x)))} features are NaN or infinite.")
    return x, y.astype(np.int64)


def _loss_and_grad(
    theta: np.ndarray, z: np.ndarray, onehot: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy + ``l2 / 2 * ||W||^2`` and its gradient, computed in ``z``'s dtype
    (float32 in :func:`fit_linear`: half the time of float64 on the large subsets)."""
    d, k = z.shape[1], onehot.shape[1]
    w, b = theta[: d * k].reshape(d, k).astype(z.dtype), theta[d * k :].astype(z.dtype)
    logits = z @ w + b
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    n = len(z)
    tiny = np.finfo(z.dtype).tiny
    loss = -np.sum(onehot * np.log(np.maximum(p, tiny)), dtype=np.float64) / n
    loss += 0.5 * l2 * np.sum(np.square(w, dtype=np.float64))
    diff = (p - onehot) / n
    grad = np.concatenate([(z.T @ diff + l2 * w).ravel(), diff.sum(axis=0)])
    return float(loss), grad.astype(np.float64)


def fit_linear(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    l2: float,
    classes: int | None = None,
    init: LinearModel | None = None,
) -> LinearModel:
    """Fits the classifier at penalty ``l2`` (L-BFGS to convergence or ``MAX_ITERATIONS``).

    Args:
      features: ``(n, d)`` training features.
      labels: ``(n,)`` integer labels.
      l2: penalty strength (> 0).
      classes: number of classes (default: ``labels.max() + 1``).
      init: a model fitted on the same features to start from (same standardisation).
    """
    x, y = _check(features, labels)
    if not l2 > 0:
        raise LinearError(f"l2 must be positive, got {l2}.")
    k = int(classes if classes is not None else y.max() + 1)
    if k < 2 or y.max() >= k:
        raise LinearError(f"need >= 2 classes and labels below {k}, got labels up to {y.max()}.")
    if init is not None:
        mean, scale = init.mean, init.scale
        theta0 = np.concatenate([init.weights.ravel(), init.bias])
    else:
        mean = x.mean(axis=0)
        spread = x.std(axis=0)
        scale = np.where(spread > 1e-8, spread, 1.0)
        theta0 = np.zeros(x.shape[1] * k + k)
    z = ((x - mean) / scale).astype(np.float32)
    onehot = np.eye(k, dtype=np.float32)[y]
    result = scipy.optimize.minimize(
        _loss_and_grad,
        theta0,
        args=(z, onehot, l2),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": MAX_ITERATIONS},
    )
    d = x.shape[1]
    theta = result.x
    return LinearModel(mean, scale, theta[: d * k].reshape(d, k), theta[d * k :], float(l2))


def choose_linear(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    grid: Sequence[float] = L2_GRID,
    classes: int | None = None,
) -> Chosen:
    """Fits every strength of ``grid`` on ``train`` and keeps the lowest validation error.

    Ties go to the stronger penalty (the simpler model). ``classes`` defaults to the largest
    label of either slice plus one.
    """
    if not grid:
        raise LinearError("the L2 grid is empty.")
    k = classes or int(max(np.max(train[1]), np.max(val[1]))) + 1
    best: LinearModel | None = None
    best_error = np.inf
    errors: dict[float, float] = {}
    model: LinearModel | None = None
    for l2 in sorted(grid, reverse=True):
        model = fit_linear(*train, l2=l2, classes=k, init=model)
        errors[float(l2)] = model.error(*val)
        if errors[float(l2)] < best_error:
            best, best_error = model, errors[float(l2)]
    assert best is not None
    return Chosen(best, errors)
