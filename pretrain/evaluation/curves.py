"""Learning curves: test error against training-set size, over seeds, and where learned features
overtake hand-made ones.

A curve is one method's test error at each training-set size, each size measured on several
seeds (different training subsets). :func:`crossing_point` states the smallest size from which
the deep method's mean error stays below every other method's, with an interval from the seeds'
spread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from pretrain.evaluation.linear import L2_GRID, choose_linear, fit_linear

# Held out of each training subset to choose the classifier's L2 (and the CNN's epochs).
VAL_FRACTION = 0.2
MAX_VAL = 5000


class CurveError(ValueError):
    """A size, seed list or curve the protocol cannot use; the message says which and why."""


class Subset(NamedTuple):
    """Indices into the full training set: the fitting part and the validation slice."""

    train: np.ndarray
    val: np.ndarray


def val_size(size: int) -> int:
    """Examples of a ``size``-example subset held out for validation: 20%, at most 5,000."""
    return min(int(size * VAL_FRACTION), MAX_VAL)


def draw_subset(total: int, size: int, *, seed: int) -> Subset:
    """``size`` random examples of ``total`` (seed = which subset); 20% of them for validation.

    ``size == total`` is the whole set; the seed then only changes the validation slice.
    """
    if not 10 <= size <= total:
        raise CurveError(f"train size must be in 10..{total}, got {size}.")
    order = np.random.default_rng(seed).permutation(total)[:size]
    v = val_size(size)
    return Subset(np.sort(order[v:]), np.sort(order[:v]))


def k_shot_split(labels: np.ndarray, k: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` random examples of every identity to train on, the rest to test: two index arrays."""
    labels = np.asarray(labels)
    ids, counts = np.unique(labels, return_counts=True)
    if not 1 <= k < counts.min():
        raise CurveError(
            f"k must be in 1..{counts.min() - 1} (the smallest identity has {counts.min()} "
            f"images and one must stay for testing), got {k}."
        )
    rng = np.random.default_rng(seed)
    train, test = [], []
    for identity in ids:
        members = np.flatnonzero(labels == identity)
        chosen = rng.permutation(len(members))
        train.append(members[chosen[:k]])
        test.append(members[chosen[k:]])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def linear_cell(
    features: np.ndarray,
    labels: np.ndarray,
    subset: Subset,
    test: tuple[np.ndarray, np.ndarray],
    *,
    grid: Sequence[float] = L2_GRID,
) -> dict[str, Any]:
    """One curve point of a fixed-feature method: L2 chosen on the subset's validation slice,
    then the test error of that model (``error_pct``) and the choice."""
    chosen = choose_linear(
        (features[subset.train], labels[subset.train]),
        (features[subset.val], labels[subset.val]),
        grid=grid,
        classes=int(max(labels.max(), test[1].max())) + 1,
    )
    return {
        "error_pct": 100 * chosen.model.error(*test),
        "l2": chosen.model.l2,
        "val_error_pct": {f"{k:g}": 100 * v for k, v in chosen.val_errors.items()},
    }


def choose_l2_k_shot(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    seeds: Iterable[int],
    grid: Sequence[float] = L2_GRID,
) -> tuple[float, dict[str, float]]:
    """The L2 with the lowest mean k-shot error on a development set (ties: the stronger one).

    Returns ``(l2, {l2: mean error %})``.
    """
    seeds = list(seeds)
    errors: dict[float, list[float]] = {float(l2): [] for l2 in grid}
    for seed in seeds:
        tr, te = k_shot_split(labels, k, seed=seed)
        model = None
        for l2 in sorted(grid, reverse=True):
            model = fit_linear(features[tr], labels[tr], l2=l2, init=model)
            errors[float(l2)].append(100 * model.error(features[te], labels[te]))
    means = {l2: float(np.mean(v)) for l2, v in errors.items()}
    best = min(sorted(means, reverse=True), key=lambda l2: means[l2])
    return best, {f"{k:g}": v for k, v in means.items()}


def k_shot_cell(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    seed: int,
    l2: float,
    dev: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """One faces curve point: train at ``l2`` on ``k`` images per person, test on the rest
    (``dev``: the development errors ``l2`` was chosen by, kept with the point)."""
    tr, te = k_shot_split(labels, k, seed=seed)
    model = fit_linear(features[tr], labels[tr], l2=l2)
    cell = {"error_pct": 100 * model.error(features[te], labels[te]), "l2": l2}
    return {**cell, "dev_error_pct": dict(dev)} if dev is not None else cell


def summarize(points: Mapping[int, Sequence[float]]) -> list[dict[str, Any]]:
    """``{size: [error % per seed]}`` -> the JSON rows, sorted by size (std: ddof=1)."""
    rows = []
    for size in sorted(points):
        errors = np.asarray(points[size], np.float64)
        if errors.size == 0:
            continue
        rows.append(
            {
                "train_size": int(size),
                "error_pct_mean": float(errors.mean()),
                "error_pct_std": float(errors.std(ddof=1)) if errors.size > 1 else 0.0,
                "seeds": int(errors.size),
                "error_pct": [float(e) for e in errors],
            }
        )
    return rows


def _first_from(sizes: list[int], below: dict[int, bool]) -> int | None:
    """The smallest size from which ``below`` holds at every larger measured size too."""
    first = None
    for size in reversed(sizes):
        if not below[size]:
            break
        first = size
    return first


def crossing_point(curves: Mapping[str, Sequence[Mapping[str, Any]]], deep: str) -> dict[str, Any]:
    """Where the ``deep`` curve goes below every other curve and stays there.

    Compared at the sizes every curve measured. ``size`` uses the means; the interval's ends use
    the seeds' spread (``optimistic``: deep mean - std against the others' mean + std;
    ``pessimistic``: deep mean + std against the others' mean - std). None when it never
    crosses (within the sizes measured).
    """
    if deep not in curves or len(curves) < 2:
        raise CurveError(f"need the {deep!r} curve and at least one other; got {sorted(curves)}.")
    by_method = {m: {r["train_size"]: r for r in rows} for m, rows in curves.items()}
    sizes = sorted(set.intersection(*(set(v) for v in by_method.values())))
    others = [m for m in by_method if m != deep]

    def crossing(sign: int) -> int | None:
        below = {}
        for s in sizes:
            d = by_method[deep][s]
            ours = d["error_pct_mean"] + sign * d["error_pct_std"]
            theirs = min(
                by_method[m][s]["error_pct_mean"] - sign * by_method[m][s]["error_pct_std"]
                for m in others
            )
            below[s] = ours < theirs
        return _first_from(sizes, below)

    return {
        "deep": deep,
        "sizes_compared": sizes,
        "size": crossing(0),
        "interval": [crossing(-1), crossing(+1)],
        "rule": (
            "smallest size from which the deep method's mean test error is below every other "
            "method's at that size and every larger size measured; interval ends: the same with "
            "mean -/+ one std across seeds (optimistic, pessimistic)"
        ),
    }
