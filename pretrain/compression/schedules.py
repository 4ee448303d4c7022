"""Pruning schedules: plain functions ``round -> sparsity``, validated when built.

A round is one prune -> retrain cycle. The sparsity is a float or a ``{layer: fraction}`` mapping,
as the pruning factories take it. Schedules never decrease, so every round prunes a superset of
the previous round's weights.

References:
  Han, Pool, Tran, Dally, "Learning both Weights and Connections", NeurIPS 2015 (iterative
  pruning).
  Zhu, Gupta, "To prune, or not to prune", 2017 (the cubic polynomial schedule).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

Sparsity = float | Mapping[str, float]
Schedule = Callable[[int], Sparsity]


def _check(value: float, what: str) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value!r}.")
    return float(value)


def _round(r: int) -> int:
    if r < 0:
        raise ValueError(f"round must be >= 0, got {r}.")
    return r


def constant(sparsity: Sparsity) -> Schedule:
    """The same sparsity every round (one-shot pruning, then retraining)."""
    if isinstance(sparsity, Mapping):
        fixed: Sparsity = {k: _check(v, f"sparsity of {k}") for k, v in sparsity.items()}
    else:
        fixed = _check(sparsity, "sparsity")

    def schedule(r: int) -> Sparsity:
        _round(r)
        return fixed

    return schedule


def steps(targets: Sequence[Sparsity]) -> Schedule:
    """Round ``r`` prunes to ``targets[r]`` (the last target thereafter).

    Raises:
      ValueError: empty, out of [0, 1), decreasing, or mixing floats with mappings of other keys.
    """
    if not targets:
        raise ValueError("steps() needs at least one target.")
    for i, t in enumerate(targets):
        values = t.values() if isinstance(t, Mapping) else [t]
        for v in values:
            _check(v, f"target {i}")
    for i in range(1, len(targets)):
        a, b = targets[i - 1], targets[i]
        if isinstance(a, Mapping) != isinstance(b, Mapping):
            raise ValueError("steps(): targets are all floats or all mappings.")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            if set(a) != set(b):
                raise ValueError(f"steps(): target {i} names other layers than target {i - 1}.")
            bad = [k for k in a if b[k] < a[k]]
        else:
            bad = ["all"] if float(b) < float(a) else []  # type: ignore[arg-type]
        if bad:
            raise ValueError(
                f"steps(): target {i} decreases ({', '.join(bad)}); pruned stays pruned."
            )
    fixed = list(targets)

    def schedule(r: int) -> Sparsity:
        return fixed[min(_round(r), len(fixed) - 1)]

    return schedule


def polynomial(
    final: Sparsity, rounds: int, *, initial: float = 0.0, power: float = 3.0
) -> Schedule:
    """``s_r = s_f + (s_i - s_f)(1 - (r + 1) / rounds)^power``: fast first, gentle at the end.

    Args:
      final: sparsity reached at round ``rounds - 1`` (a float or ``{layer: fraction}``).
      rounds: number of prune -> retrain rounds.
      initial: sparsity the curve starts from (before round 0).
      power: curvature; 3 as in Zhu & Gupta, 1 is linear.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}.")
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}.")
    _check(initial, "initial")
    finals = final.values() if isinstance(final, Mapping) else [final]
    for v in finals:
        if _check(v, "final") < initial:
            raise ValueError(f"final sparsity {v} is below initial {initial}.")

    def at(target: float, r: int) -> float:
        progress = min(r + 1, rounds) / rounds
        return target + (initial - target) * (1.0 - progress) ** power

    def schedule(r: int) -> Sparsity:
        _round(r)
        if isinstance(final, Mapping):
            return {k: at(v, r) for k, v in final.items()}
        return at(final, r)

    return schedule
