"""Choosing a compression recipe on validation error: a few candidates, the test split withheld.

:func:`search_recipes` runs :func:`~pretrain.compression.deep_compression` for each candidate
recipe on splits whose test part is replaced by an empty set (so nothing in the search can read
it), measures the compressed model's validation error and its size (a caller-given function of
the packed form, e.g. the signed bundle's bytes), and :func:`choose` keeps the candidate with the
lowest validation error among those reaching the size ratio. :data:`CANDIDATES` are the
registered LeNet searches; the winners are the registered recipes.

Example:
  >>> result = search_recipes(saved, CANDIDATES["lenet300"], splits, size=bundle_bytes,
  ...                         reference_bytes=4 * n, min_ratio=50, key=jax.random.key(0))
  >>> result.chosen, [t.val_error_pct for t in result.trials]
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from pretrain.compression.base import Packed
from pretrain.compression.pipeline import (
    LENET5_START,
    LENET300_START,
    Recipe,
    deep_compression,
    pruning_settings,
)
from pretrain.data import ArrayDataset
from pretrain.train.artifacts import SavedModel
from pretrain.train.datasets import Splits
from pretrain.train.trainer import Trainer

_FC1_93 = {"fc1": 0.93, "fc2": 0.9, "fc3": 0.7}
_FC1_955 = {"conv1": 0.4, "conv2": 0.85, "fc1": 0.955, "fc2": 0.75}
_KD300 = dataclasses.replace(LENET300_START, distill=0.9)
_KD5 = dataclasses.replace(LENET5_START, sparsity=_FC1_955, distill=0.5)
_replace = dataclasses.replace

CANDIDATES: dict[str, dict[str, Recipe]] = {
    "lenet300": {
        "fc1_93": _replace(LENET300_START, sparsity=_FC1_93),
        "fc1_94": LENET300_START,
        "fc1_94_long": _replace(LENET300_START, final_epochs=20),
        "fc1_94_kd50": _replace(LENET300_START, distill=0.5),
        "fc1_94_kd90": _KD300,
        # the same pruning (shared), other quantization settings
        "fc1_94_kd90_q0": _replace(_KD300, quant_epochs=0),
        "fc1_94_kd90_qlr4": _replace(_KD300, quant_lr=1e-4),
        "fc1_94_kd90_qlr3": _replace(_KD300, quant_lr=1e-3),
        "fc1_94_kd90_qlr2": _replace(_KD300, quant_lr=1e-2),
        "fc1_94_kd90_6bit": _replace(_KD300, bits={"fc1": 6, "fc2": 6, "fc3": 6}),
    },
    "lenet5": {
        "fc1_95": LENET5_START,
        "fc1_955": _replace(LENET5_START, sparsity=_FC1_955),
        "fc1_955_long": _replace(LENET5_START, sparsity=_FC1_955, final_epochs=16),
        "fc1_955_kd50": _KD5,
        "fc1_955_kd90": _replace(_KD5, distill=0.9),
        # the kd50 pruning (shared), other quantization settings
        "fc1_955_kd50_q0": _replace(_KD5, quant_epochs=0),
        "fc1_955_kd50_qlr4": _replace(_KD5, quant_lr=1e-4),
        "fc1_955_kd50_qlr3": _replace(_KD5, quant_lr=1e-3),
        "fc1_955_kd50_qlr2": _replace(_KD5, quant_lr=1e-2),
        "fc1_955_kd50_8bitconv": _replace(_KD5, bits={"conv1": 8, "conv2": 8, "fc1": 5, "fc2": 5}),
    },
}
"""The candidates of ``bench_compression.py --search`` per model (about 4 minutes per LeNet-300-100
pruning run here, 10-20 per LeNet-5 one; quantization-only variants share their pruning): the
recipe as it stood, a little more pruning of the largest layer (the 50x ratio), a longer last
round, distillation from the uncompressed model at two weights, and, for LeNet-300-100, the
quantization settings around the distilled pruning (no fine-tuning, higher rates, the paper's 6
bits). The trials run and their figures: notebooks/results/compression_search.json."""


class Trial(NamedTuple):
    """One candidate's validation figures.

    Attributes:
      name: the candidate's name.
      recipe: the recipe, as a dict.
      val_error_pct: validation error of the compressed (pruned, shared) model.
      pruned_val_error_pct: validation error after pruning, before weight sharing.
      bytes: the size function's answer for the packed form.
      ratio: ``reference_bytes / bytes``.
      seconds: wall time of the compression (of the quantization alone when an earlier
        candidate with the same pruning settings gave its pruned network).
    """

    name: str
    recipe: dict[str, Any]
    val_error_pct: float
    pruned_val_error_pct: float
    bytes: int
    ratio: float
    seconds: float


class SearchResult(NamedTuple):
    """The trials and the chosen candidate's name (see :func:`choose`)."""

    chosen: str
    trials: list[Trial]
    rule: str


def without_test(splits: Splits) -> Splits:
    """``splits`` with an empty test set: what a search may see."""
    test = splits.test
    empty = ArrayDataset(test.images[:0], test.labels[:0], f"{test.name} (withheld)")
    return Splits(splits.train, splits.val, empty)


def choose(trials: Sequence[Trial], min_ratio: float) -> str:
    """The lowest validation error among trials with ``ratio >= min_ratio`` (ties: the larger
    ratio); if none reaches it, the largest ratio."""
    if not trials:
        raise ValueError("no trials to choose from.")
    eligible = [t for t in trials if t.ratio >= min_ratio]
    if not eligible:
        return max(trials, key=lambda t: t.ratio).name
    return min(eligible, key=lambda t: (t.val_error_pct, -t.ratio)).name


def search_recipes(
    saved: SavedModel,
    candidates: Mapping[str, Recipe],
    splits: Splits,
    *,
    size: Callable[[Packed], int],
    reference_bytes: int,
    min_ratio: float,
    key: jax.Array,
    trainer: Trainer,
    progress: bool = True,
) -> SearchResult:
    """Compresses with each candidate (same key) and chooses by validation error.

    Candidates with equal :func:`~pretrain.compression.pipeline.pruning_settings` share one
    pruning stage (the same key gives the same pruned network), so quantization settings are
    cheap to compare.

    Args:
      saved: the trained model.
      candidates: name -> recipe.
      splits: data; the test split is withheld (:func:`without_test`) before anything runs.
      size: bytes of a packed compressed model (e.g. the signed bundle's length).
      reference_bytes: the uncompressed model's bytes (the ratio's numerator).
      min_ratio: the size ratio a candidate must reach to be chosen on error.
      key: PRNG key, the same for every candidate.
      trainer: evaluates parameters (its config's batch size and model).
      progress: progress bars.
    """
    val = splits.val
    if val is None or not len(val):
        raise ValueError("a recipe search needs a validation split (val_size > 0).")
    seen = without_test(splits)
    trials = []
    pruned: dict[
        tuple[Any, ...], tuple[Any, Any]
    ] = {}  # candidates that differ in quantization only
    for name, recipe in candidates.items():
        started = time.perf_counter()
        settings = pruning_settings(recipe)
        result = deep_compression(
            saved, recipe, seen, key=key, pruned=pruned.get(settings), progress=progress
        )
        pruned[settings] = (result.pruned, result.prune_history)
        nbytes = int(size(result.packed))
        trials.append(
            Trial(
                name,
                recipe.to_dict(),
                100.0 * trainer.evaluate(result.params, val).error,
                100.0 * trainer.evaluate(result.pruned, val).error,
                nbytes,
                reference_bytes / nbytes if nbytes else math.inf,
                time.perf_counter() - started,
            )
        )
        if progress:
            t = trials[-1]
            print(
                f"  {name}: val {t.val_error_pct:.2f}% (pruned {t.pruned_val_error_pct:.2f}%), "
                f"{t.ratio:.1f}x, {t.seconds:.0f} s",
                flush=True,
            )
    assert np.isfinite([t.val_error_pct for t in trials]).all()
    rule = f"lowest validation error with ratio >= {min_ratio} (else the largest ratio)"
    return SearchResult(choose(trials, min_ratio), trials, rule)
