"""Two structured prunings compared fairly: fixed masks, several retraining seeds, one word length.

:func:`compare_structures` retrains each method's masks (e.g. the particle filters' choice and
Li et al.'s L1 choice at the same channel counts, hence equal FLOPs) under every seed, runs the
word-length rule (:func:`~pretrain.compression.structured_pipeline.word_length`, tolerance one
binomial standard error of the unpruned validation error) on every retrained network, takes the
longest word length any of them asks for as the one word length of the comparison (no network
is pushed below what its own validation scan allows), and fine-tunes every network at it. Only
validation is read here; the caller reports test errors per seed and compares the means
(:func:`mean_std`), so that a few test images are not the verdict.

References:
  Anwar, Hwang, Sung, "Structured Pruning of Deep Convolutional Neural Networks", ACM JETC 2017.
  Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from pretrain.compression.structured import Structure
from pretrain.compression.structured_pipeline import (
    StructuredRecipe,
    StructuredResult,
    bits_tolerance,
    evaluators,
    fixed_point_finetune,
    retrain_structure,
    word_length,
)
from pretrain.train.artifacts import SavedModel
from pretrain.train.datasets import Splits


class Comparison(NamedTuple):
    """Every method's networks, one per seed, at one word length.

    Attributes:
      results: ``{method: [StructuredResult per seed]}`` (``params`` at ``bits``).
      bits: the common word length (None: some network allows none, so all stay float).
      rule_bits: ``{method: [word length its own rule chose, per seed]}``.
      tolerance: the validation error (0..1) the rule allowed over each float network.
      seeds: the retraining seeds, in the order of ``results``' lists.
    """

    results: dict[str, list[StructuredResult]]
    bits: int | None
    rule_bits: dict[str, list[int | None]]
    tolerance: float
    seeds: list[int]


def common_bits(rule_bits: Sequence[int | None]) -> int | None:
    """The longest of the rules' word lengths (None if any rule found none)."""
    if not rule_bits or any(b is None for b in rule_bits):
        return None
    return max(b for b in rule_bits if b is not None)


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}`` (sample std, ddof 1; 0 for one value)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise ValueError("mean_std of no values.")
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "n": int(v.size),
    }


def pf_vs_l1(pf: Sequence[float], l1: Sequence[float], *, higher_is_better: bool) -> dict[str, Any]:
    """The particle filters' advantage over L1 from per-seed figures of both: ``difference_pts``
    (mean PF minus mean L1, sign flipped for an error so that positive = PF better), its standard
    error ``difference_se_pts`` and ``pf_at_least_as_accurate`` (the advantage >= 0)."""
    p, q = mean_std(pf), mean_std(l1)
    difference = p["mean"] - q["mean"] if higher_is_better else q["mean"] - p["mean"]
    return {
        "difference_pts": difference,
        "difference_se_pts": math.sqrt(p["std"] ** 2 / p["n"] + q["std"] ** 2 / q["n"]),
        "pf_at_least_as_accurate": difference >= 0,
    }


def compare_structures(
    saved: SavedModel,
    recipe: StructuredRecipe,
    splits: Splits,
    structures: Mapping[str, Structure],
    *,
    seeds: Sequence[int],
    logs: Mapping[str, dict[str, Any]] | None = None,
    progress: bool = True,
) -> Comparison:
    """Retrain each structure under each seed, choose one word length, fine-tune every network.

    Args:
      saved: the trained model.
      recipe: retraining and fine-tuning settings (its plan is not read: the masks are given).
      splits: data; validation picks the retraining epoch and the word length.
      structures: ``{method: structure}`` (the same FLOPs, for a fair comparison).
      seeds: retraining seeds (batch orders), at least one.
      logs: ``{method: log}`` merged into each result's log (e.g. the particle filters' history).
      progress: progress bars.
    """
    if not seeds:
        raise ValueError("compare_structures needs at least one retraining seed.")
    ev = evaluators(saved, splits, 0)
    tolerance = bits_tolerance(saved, recipe, ev)
    retrained: dict[str, list[Any]] = {m: [] for m in structures}
    scans: dict[str, list[Any]] = {m: [] for m in structures}
    rule: dict[str, list[int | None]] = {m: [] for m in structures}
    seconds: dict[str, list[float]] = {m: [] for m in structures}
    for method, structure in structures.items():
        for seed in seeds:
            t0 = time.perf_counter()
            key = jax.random.split(jax.random.key(seed))[0]
            r = retrain_structure(saved, structure, recipe, splits, key=key, progress=progress)
            b, scan = word_length(r.params, ev.error, tolerance)
            retrained[method].append(r)
            scans[method].append(scan)
            rule[method].append(b)
            seconds[method].append(time.perf_counter() - t0)
    bits = common_bits([b for bs in rule.values() for b in bs])
    results: dict[str, list[StructuredResult]] = {m: [] for m in structures}
    for method, structure in structures.items():
        for i, seed in enumerate(seeds):
            r = retrained[method][i]
            val_error = {"selected": r.history[0]["val_error"], "retrained": r.val_error}
            log: dict[str, Any] = {
                **(logs or {}).get(method, {}),
                "seed": seed,
                "retrain": r.history,
                "bits_tolerance": tolerance,
                "word_lengths": scans[method][i],
                "word_length_rule": rule[method][i],
            }
            params = r.params
            t0 = time.perf_counter()
            if bits is not None:
                key = jax.random.split(jax.random.key(seed))[1]
                fine = fixed_point_finetune(
                    saved, structure, r.params, bits, recipe, splits, key=key, progress=progress
                )
                params, val_error["fixed_point"] = fine.params, fine.val_error
                log["fixed_point"] = fine.history
            log["seconds"] = {
                "retrain": seconds[method][i],
                "fixed_point": time.perf_counter() - t0,
            }
            results[method].append(
                StructuredResult(structure, r.params, params, bits, val_error, log)
            )
    return Comparison(results, bits, rule, tolerance, list(seeds))
