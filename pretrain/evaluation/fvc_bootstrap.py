"""How far the FVC protocol's figures can be trusted: a bootstrap over fingers.

Each FVC B set has 10 fingers, so 280 genuine but only 45 impostor comparisons; one impostor
pair moves a set's EER by up to 2.2 points. Resampling the fingers of every set with
replacement (the unit that was sampled: a finger brings its 28 genuine pairs and its impostor
pairs with the other drawn fingers) and recomputing the mean EER over the sensor sets gives its
spread, and, for two matchers scored on the same prints, the spread of their difference (paired:
both see the same draw). Reported beside the figures, never used to choose anything.

Reference: Bolle, Ratha, Pankanti, "Error analysis of pattern recognition systems: the subsets
bootstrap", CVIU 93(1), 2004 (resample subjects, not comparisons, since a subject's
comparisons are correlated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from devices.verification import bootstrap_interval, draw_people, eer
from pretrain.data.fvc import SENSOR_SETS

ROUNDS = 2000
LEVEL = 0.95


class SetScores(NamedTuple):
    """One set's protocol scores with the fingers they belong to.

    Attributes:
      genuine: ``(g,)`` genuine scores.
      genuine_fingers: ``(g,)`` the finger of each.
      impostor: ``(m,)`` impostor scores.
      impostor_fingers: ``(m, 2)`` the two fingers of each.
    """

    genuine: np.ndarray
    genuine_fingers: np.ndarray
    impostor: np.ndarray
    impostor_fingers: np.ndarray


class _Indexed(NamedTuple):
    """A set's scores laid out for drawing fingers: genuine scores per finger, impostor scores
    as a finger x finger matrix (NaN where no pair was scored)."""

    genuine: list[np.ndarray]
    impostor: np.ndarray


def _indexed(scores: SetScores) -> _Indexed:
    fingers = np.unique(np.concatenate([scores.genuine_fingers, scores.impostor_fingers.ravel()]))
    where = {f: k for k, f in enumerate(fingers.tolist())}
    genuine = [scores.genuine[scores.genuine_fingers == f] for f in fingers]
    matrix = np.full((fingers.size, fingers.size), np.nan)
    for (a, b), s in zip(scores.impostor_fingers.tolist(), scores.impostor.tolist(), strict=True):
        matrix[where[a], where[b]] = matrix[where[b], where[a]] = s
    return _Indexed(genuine, matrix)


def _draw_eer(sets: Sequence[_Indexed], draws: Sequence[np.ndarray]) -> float:
    """Mean EER (0..1) over ``sets`` with each set's fingers replaced by its ``draws``."""
    eers = []
    for s, drawn in zip(sets, draws, strict=True):
        genuine = np.concatenate([s.genuine[f] for f in drawn])
        i, j = np.triu_indices(drawn.size, k=1)
        impostor = s.impostor[drawn[i], drawn[j]]
        eers.append(eer(genuine, impostor[np.isfinite(impostor)]))
    return float(np.mean(eers))


def mean_eer_interval(
    matchers: Mapping[str, Mapping[str, SetScores]],
    *,
    names: Sequence[str] = SENSOR_SETS,
    rounds: int = ROUNDS,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Bootstrap intervals of the mean EER over ``names`` for each matcher, and of every later
    matcher's difference from the first (paired: one draw of fingers serves all matchers).

    Args:
      matchers: name -> {set -> :class:`SetScores`}; every matcher scored the same sets and
        fingers (the sets of ``names`` present in the first are used).
      names: the sets in the mean (default: the five sensor sets, as the protocol's mean).
      rounds, level, seed: draws, the interval's coverage, the draws' seed.

    Returns:
      ``{"level", "rounds", "sets", "mean_eer_pct": {matcher: {"ci_pct": [lo, hi], "sd_pct"}},
      "difference_pct": {matcher: {"vs", "ci_pct", "sd_pct"}}}`` (percentage points; a
      difference is that matcher's mean EER minus the first's).
    """
    if not matchers:
        raise ValueError("no matchers to bootstrap.")
    if rounds < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need rounds >= 1 and level in (0, 1), got {rounds} and {level}.")
    first = next(iter(matchers))
    sets = [n for n in names if n in matchers[first]]
    if not sets:
        raise ValueError(f"none of the sets {list(names)} was scored.")
    layout = {m: [_indexed(scores[n]) for n in sets] for m, scores in matchers.items()}
    counts = [len(layout[first][k].genuine) for k in range(len(sets))]
    for m, laid in layout.items():
        if [len(s.genuine) for s in laid] != counts:
            raise ValueError(f"matcher {m!r} scored other fingers than {first!r}.")
    rng = np.random.default_rng(seed)
    values = {m: np.empty(rounds) for m in matchers}
    for r in range(rounds):
        draws = [draw_people(rng, n) for n in counts]
        for m, laid in layout.items():
            values[m][r] = 100 * _draw_eer(laid, draws)
    out: dict[str, Any] = {"level": level, "rounds": rounds, "sets": sets}
    out["mean_eer_pct"] = {
        m: {"ci_pct": bootstrap_interval(v, level), "sd_pct": float(np.std(v))}
        for m, v in values.items()
    }
    out["difference_pct"] = {
        m: {
            "vs": first,
            "ci_pct": bootstrap_interval(values[m] - values[first], level),
            "sd_pct": float(np.std(values[m] - values[first])),
        }
        for m in matchers
        if m != first
    }
    return out
