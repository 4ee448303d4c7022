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


def alternating_blocks(
    calls: Mapping[str, Callable[[], Mapping[str, float]]], *, blocks: int = 3, warmup: int = 1
) -> dict[str, dict[str, float]]:
    """Each call's figures, the median over ``blocks`` blocks in which the calls alternate.

    For calls that time themselves and return several figures (e.g. the median parts of a few
    enrollments), where :func:`alternating_medians` times whole calls. The order of the calls
    flips every other block, so that neither always runs first.

    Args:
      calls: ``{name: a function of no arguments returning {label: seconds}}``.
      blocks: alternating blocks (one call of each per block).
      warmup: untimed calls of each, in turn, before the first block.

    Returns:
      ``{name: {label: median over the blocks}}``.
    """
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}.")
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    figures: dict[str, list[Mapping[str, float]]] = {name: [] for name in names}
    for b in range(blocks):
        for name in names if b % 2 == 0 else names[::-1]:
            figures[name].append(calls[name]())
    return {name: median_parts(f) for name, f in figures.items()}


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


def median_parts(samples: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each label's median over ``samples`` (e.g. the parts of N timed calls, one dict each).

    A total that is itself a label (the sum of the parts of each call) is the median of the
    totals, which the medians of the parts need not add up to.

    Raises:
      ValueError: no samples, or samples with different labels.
    """
    if not samples:
        raise ValueError("median_parts needs at least one sample.")
    labels = set(samples[0])
    if any(set(s) != labels for s in samples):
        raise ValueError(f"every sample must have the labels {sorted(labels)}.")
    return {k: statistics.median(float(s[k]) for s in samples) for k in samples[0]}


def over_rounds(values: Sequence[float]) -> dict[str, Any]:
    """A figure measured once per round: ``{"median", "range": [min, max], "rounds": [...]}``."""
    if not values:
        raise ValueError("over_rounds needs at least one round.")
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "range": [min(vals), max(vals)], "rounds": vals}


def ratio_over_rounds(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, Any]:
    """How many times ``numerator`` is ``denominator``, both measured once per round.

    Returns:
      ``{"ratio": median(numerator) / median(denominator), "range": [min, max] of the rounds'
      own ratios, "rounds": [numerator[i] / denominator[i]]}``: the ratio of the medians is the
      figure; the range says how far one round alone could have put it.

    Raises:
      ValueError: different round counts, no rounds, or a time that is not positive.
    """
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(
            f"need the same number (>= 1) of rounds, got {len(numerator)} and {len(denominator)}."
        )
    if min(*numerator, *denominator) <= 0:
        raise ValueError("times must be positive.")
    per = [float(n) / float(d) for n, d in zip(numerator, denominator, strict=True)]
    ratio = statistics.median(numerator) / statistics.median(denominator)
    return {"ratio": float(ratio), "range": [min(per), max(per)], "rounds": per}
