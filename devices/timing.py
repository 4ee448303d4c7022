"""Wall-clock latency of calls that are compared with each other, on a noisy machine.

The calls run in alternating rounds (each round times ``repeats`` calls of each, in turn), so
that a burst of load from other processes hits every side; each side's figure is the median over
rounds of its mean time per call. A bench reports their ratio, never a single absolute time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


def alternating_medians(
    calls: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = 15,
    repeats: int = 200,
    warmup: int = 20,
) -> dict[str, float]:
    """Median over ``rounds`` of each call's mean seconds per call, the calls alternating.

    Args:
      calls: ``{name: a function of no arguments}``.
      rounds: alternating rounds.
      repeats: calls of each function per round.
      warmup: untimed calls of each before the first round.
    """
    if rounds < 1 or repeats < 1:
        raise ValueError(f"rounds and repeats must be >= 1, got {rounds} and {repeats}.")
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            times[name].append((time.perf_counter() - start) / repeats)
    return {name: statistics.median(t) for name, t in times.items()}
