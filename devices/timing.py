"""Wall-clock latency of calls that are compared with each other, on a noisy machine.

The calls run in alternating rounds (each round times ``repeats`` calls of each, in turn), so
that a burst of load from other processes hits every side; each side's figure is the median over
rounds of its mean time per call. A bench reports their ratio, never a single absolute time.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
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


def fresh_process_rounds(
    commands: Mapping[str, Sequence[str]], *, rounds: int = 5, timeout_s: float = 300.0
) -> dict[str, list[dict[str, float]]]:
    """The figures each command reports, run in a fresh Python process per round.

    The commands alternate within a round, and their order flips every other round, so that
    neither always runs first. Each command is the arguments after ``python``; it must print
    ``{"seconds": {label: seconds per call, ...}}`` as the last line of its standard output (one
    label, or several calls it timed in alternation with :func:`alternating_medians`).

    Args:
      commands: ``{name: arguments of python}``.
      rounds: alternating rounds (one process per command per round).
      timeout_s: the longest a process may run.

    Returns:
      ``{name: [{label: seconds per call} of each round]}``.

    Raises:
      RuntimeError: a process failed or printed no figure (its last lines of stderr).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}.")
    names = list(commands)
    out: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            argv = [sys.executable, *commands[name]]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
            lines = done.stdout.strip().splitlines()
            try:
                figures = {str(k): float(v) for k, v in json.loads(lines[-1])["seconds"].items()}
            except (AttributeError, IndexError, KeyError, TypeError, ValueError):
                tail = " | ".join(done.stderr.strip().splitlines()[-3:])
                raise RuntimeError(
                    f"timing {name!r}: {' '.join(argv)} exited {done.returncode} without a "
                    f'{{"seconds": {{label: s}}}} line; stderr: {tail or "empty"}'
                ) from None
            out[name].append(figures)
    return out
