"""Structured pruning as one recipe: particle-filter selection -> retraining -> fixed point.

:func:`structured_compression` runs :func:`~pretrain.compression.particles.select_structure` on a
trained model (validation error as the particles' misclassification rate), retrains with the
masks fixed (:func:`~pretrain.compression.retrain`), then picks a fixed-point word length by
:func:`word_length` (the shortest one such that it and every longer one stay within the
validation split's own noise of the float network: :func:`binomial_se`) and fine-tunes under
``chain(structured_pruning, fixed_point(bits))``. The three steps are also separate functions
(:func:`retrain_structure`, :func:`word_length`, :func:`fixed_point_finetune`) so a comparison
can retrain fixed masks under several seeds and give two methods one word length. :func:`l1_compression` is Li et al.'s
baseline with the same channel counts (hence the same FLOPs) and the same retraining. The test
split is never read here.

References:
  Anwar, Hwang, Sung, "Structured Pruning of Deep Convolutional Neural Networks", ACM JETC 2017:
  particle filters -> retraining -> fixed-point optimisation (section 5).
  Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from devices.registry import Registry
from pretrain.compression.base import Params, chain
from pretrain.compression.fixed_point import fixed_point
from pretrain.compression.particles import FilterSettings, LayerPlan, select_structure
from pretrain.compression.pipeline import cosine
from pretrain.compression.retrain import CompressedTrainer, retrain, retrain_config
from pretrain.compression.structured import (
    LENET5_CHAIN,
    Structure,
    empty_structure,
    l1_structure,
    structured_pruning,
)
from pretrain.train.artifacts import SavedModel
from pretrain.train.datasets import Splits
from pretrain.train.steps import init_state
from pretrain.train.trainer import Trainer

WORD_LENGTHS = (8, 7, 6, 5, 4, 3)


@dataclasses.dataclass(frozen=True)
class StructuredRecipe:
    """How to prune one model structurally.

    Attributes:
      plan: ``{layer: LayerPlan}`` (channels kept, kernel fraction removed, intra-kernel stride).
      filters: particle filter settings.
      epochs: retraining epochs with the masks fixed (cosine-annealed rate ``lr``).
      lr: retraining learning rate.
      weight_decay: retraining L2.
      bits_tolerance: validation error (0..1) the word length may add over the float network;
        None (default): one binomial standard error of the unpruned model's validation error
        (:func:`binomial_se`), the split's own noise.
      bits_epochs: fine-tuning epochs under fixed point (rate ``bits_lr``).
      bits_lr: its learning rate.
      chain: the network's prunable layers in execution order, then its output layer.
      score_steps: how the particles are scored. 0: the paper's rule, the validation error of
        the network as pruned, with the layers whose filters have not run yet unpruned. ``n``:
        the validation error after ``n`` SGD steps with the candidate's masks fixed (the
        retraining rate, cosine-annealed, the same batches for every particle), with the layers
        not chosen yet holding their L1 choice, so every particle is scored at the whole plan's
        budget and by what retraining makes of it (:func:`retrained_error`).
    """

    plan: Mapping[str, LayerPlan]
    filters: FilterSettings = dataclasses.field(default_factory=FilterSettings)
    epochs: int = 4
    lr: float = 0.01
    weight_decay: float = 5e-4
    bits_tolerance: float | None = None
    bits_epochs: int = 1
    bits_lr: float = 1e-4
    chain: tuple[str, ...] = LENET5_CHAIN
    score_steps: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.bits_epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs} and {self.bits_epochs}.")
        if self.score_steps < 0:
            raise ValueError(f"score_steps must be >= 0, got {self.score_steps}.")
        if self.bits_tolerance is not None and self.bits_tolerance < 0:
            raise ValueError(f"bits_tolerance must be >= 0, got {self.bits_tolerance}.")

    def channels(self) -> dict[str, int]:
        """``{layer: channels kept}`` of the layers whose channels are pruned."""
        return {k: p.channels for k, p in self.plan.items() if p.channels is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            **dataclasses.asdict(self),
            "plan": {k: dataclasses.asdict(v) for k, v in self.plan.items()},
        }


class StructuredResult(NamedTuple):
    """What one structured compression produced (validation errors 0..1).

    Attributes:
      structure: what was removed.
      pruned: retrained float parameters (masked, full shapes).
      params: the same at the chosen word length (what is exported); ``pruned`` when ``bits`` is
        None.
      bits: the chosen fixed-point word length, or None (not reduced).
      val_error: per stage: ``selected`` (no retraining), ``retrained``, ``fixed_point``.
      log: particle filter histories, retraining epochs, word-length scan and tolerance, seconds.
    """

    structure: Structure
    pruned: Params
    params: Params
    bits: int | None
    val_error: dict[str, float]
    log: dict[str, Any]


def binomial_se(error: float, n: int) -> float:
    """One binomial standard error ``sqrt(p (1 - p) / n)`` of an error rate measured on ``n``
    examples: the noise of a validation error, the word-length rule's default tolerance."""
    if n < 1 or not 0.0 <= error <= 1.0:
        raise ValueError(f"need n >= 1 and an error in [0, 1], got n={n}, error={error}.")
    return math.sqrt(error * (1.0 - error) / n)


def word_length(
    params: Params, error: Any, tolerance: float, lengths: Sequence[int] = WORD_LENGTHS
) -> tuple[int | None, list[dict[str, float]]]:
    """The shortest word length ``b`` (per-layer scale, no retraining) such that ``b`` and every
    longer word length of ``lengths`` have a validation error within ``tolerance`` of
    ``params``' own, and the scan of every length; None if even the longest is not.

    A monotone rule: a short word length that happens to score well below a longer one that does
    not is not taken (every length is scanned, so the log shows the whole curve).
    """
    base = float(error(params))
    scan, chosen, within = [], None, True
    for bits in sorted(lengths, reverse=True):
        fp = fixed_point(bits)
        e = float(error(fp.apply(params, fp.init(params))[0]))
        scan.append({"bits": bits, "val_error": e})
        within = within and e <= base + tolerance
        if within:
            chosen = bits
    return chosen, scan


class Evaluators(NamedTuple):
    """Validation error functions of one model and split (0..1)."""

    error: Callable[[Params], float]
    particle_error: Callable[[Params], float]
    examples: int
    particle_examples: int


def evaluators(saved: SavedModel, splits: Splits, particle_examples: int) -> Evaluators:
    """Error on the whole validation split, and on its first ``particle_examples`` (0: all).

    Raises:
      ValueError: the split holds no validation examples.
    """
    if splits.val is None:
        raise ValueError(
            "structured pruning scores its particles on a validation split; the config holds "
            "out none (val_size=0): set val_size > 0."
        )
    val = splits.val
    trainer = Trainer(retrain_config(saved), splits.train.images)
    n = particle_examples
    particle_val = val.take(slice(0, n)) if 0 < n < len(val) else val
    return Evaluators(
        lambda p: trainer.evaluate(p, val).error,
        lambda p: trainer.evaluate(p, particle_val).error,
        len(val),
        len(particle_val),
    )


def retrain_structure(
    saved: SavedModel,
    structure: Structure,
    recipe: StructuredRecipe,
    splits: Splits,
    *,
    key: jax.Array,
    progress: bool = True,
) -> Any:
    """``saved``'s parameters retrained ``recipe.epochs`` epochs with ``structure``'s masks
    fixed (a :class:`~pretrain.compression.retrain.RetrainResult`; its ``history[0]`` is the
    masked network before retraining)."""
    prune = structured_pruning(structure, recipe.chain)
    config = retrain_config(saved, learning_rate=recipe.lr, weight_decay=recipe.weight_decay)
    return retrain(
        prune,
        prune.init(saved.params),
        saved.params,
        config,
        splits,
        epochs=recipe.epochs,
        key=key,
        lr_scale=cosine,
        progress=progress,
    )


def fixed_point_finetune(
    saved: SavedModel,
    structure: Structure,
    params: Params,
    bits: int,
    recipe: StructuredRecipe,
    splits: Splits,
    *,
    key: jax.Array,
    progress: bool = True,
) -> Any:
    """``params`` fine-tuned ``recipe.bits_epochs`` epochs under ``chain(structured_pruning,
    fixed_point(bits))`` (a ``RetrainResult``)."""
    both = chain(structured_pruning(structure, recipe.chain), fixed_point(bits))
    config = retrain_config(saved, learning_rate=recipe.bits_lr, weight_decay=0.0)
    return retrain(
        both,
        both.init(params),
        params,
        config,
        splits,
        epochs=recipe.bits_epochs,
        key=key,
        lr_scale=cosine,
        progress=progress,
    )


def bits_tolerance(saved: SavedModel, recipe: StructuredRecipe, ev: Evaluators) -> float:
    """The recipe's tolerance, or one binomial standard error of the unpruned validation error."""
    if recipe.bits_tolerance is not None:
        return recipe.bits_tolerance
    return binomial_se(float(ev.error(saved.params)), ev.examples)


def retrained_error(
    saved: SavedModel,
    recipe: StructuredRecipe,
    splits: Splits,
    *,
    steps: int,
    key: jax.Array,
) -> Callable[[Structure], float]:
    """``structure ->`` validation error (the first ``recipe.filters.examples`` examples) of
    ``saved`` after ``steps`` SGD steps with the structure's masks fixed.

    Every call starts from ``saved``'s parameters and sees the same batches (``key``), so two
    structures differ by their masks alone; one compiled step serves every call.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    if splits.val is None:
        raise ValueError("retrained_error scores on the validation split; the config has none.")
    n = recipe.filters.examples
    val = splits.val.take(slice(0, n)) if 0 < n < len(splits.val) else splits.val
    config = retrain_config(saved, learning_rate=recipe.lr, weight_decay=recipe.weight_decay)
    first = structured_pruning(empty_structure(), recipe.chain)
    trainer = CompressedTrainer(config, splits.train.images, first, first.init(saved.params))

    def score(structure: Structure) -> float:
        trainer.use_state(structured_pruning(structure, recipe.chain).init(saved.params))
        start, _ = trainer.project(saved.params)
        train = trainer.replicate(init_state(start, trainer.tx))
        train, _ = trainer.train_steps(
            train, splits.train, steps=steps, key=key, lr_scale=cosine, progress=False
        )
        params, _ = trainer.project(train.params)
        return float(trainer.evaluate(params, val).error)

    return score


def particle_structure(
    saved: SavedModel,
    recipe: StructuredRecipe,
    splits: Splits,
    *,
    rng: np.random.Generator,
    start: Structure | None = None,
    key: jax.Array | None = None,
    progress: bool = True,
) -> tuple[Structure, dict[str, Any]]:
    """The particle filters' choice for ``recipe.plan`` on ``saved``, scored on the first
    ``recipe.filters.examples`` validation examples as ``recipe.score_steps`` says, and the
    filters' log.

    Args:
      saved: the trained model.
      recipe: the plan, the filters and the scoring rule.
      splits: data (validation scores the particles).
      rng: randomness of the particles.
      start: choices already made.
      key: the scoring retraining's batch order (``recipe.score_steps`` > 0; default key 0).
      progress: progress bars.
    """
    ev = evaluators(saved, splits, recipe.filters.examples)
    structure_error, margin = None, None
    if recipe.filters.significance:
        k, n = recipe.filters.significance, ev.particle_examples

        def margin(first: float) -> float:
            return k * binomial_se(first, n)

    if recipe.score_steps:
        # the layers not chosen yet hold their L1 choice: every particle at the whole budget
        l1 = l1_structure(saved.params, recipe.channels())
        base = start or empty_structure()
        start = base._replace(channels={**l1.channels, **base.channels})
        structure_error = retrained_error(
            saved,
            recipe,
            splits,
            steps=recipe.score_steps,
            key=jax.random.key(0) if key is None else key,
        )
    return select_structure(
        saved.params,
        recipe.plan,
        ev.particle_error,
        settings=recipe.filters,
        rng=rng,
        chain=recipe.chain,
        start=start,
        structure_error=structure_error,
        margin=margin,
        progress=progress,
    )


def structured_compression(
    saved: SavedModel,
    recipe: StructuredRecipe,
    splits: Splits,
    *,
    key: jax.Array,
    rng: np.random.Generator,
    structure: Structure | None = None,
    start: Structure | None = None,
    bits: int | None = None,
    progress: bool = True,
) -> StructuredResult:
    """Select (particle filters, unless ``structure`` is given) -> retrain -> fixed point.

    Args:
      saved: the trained model.
      recipe: what to prune and how long to retrain.
      splits: data; validation scores the particles and picks epochs and the word length.
      key: PRNG key of the batch orders (the retraining seed).
      rng: randomness of the particles.
      structure: a structure chosen elsewhere (e.g. :func:`l1_structure`, or the filters' choice
        of an earlier run to retrain under another seed): skips the filters.
      start: choices the filters build on (e.g. channels chosen before kernels and strides).
      bits: a word length chosen elsewhere (e.g. one length for two methods compared): skips
        :func:`word_length`'s choice (its scan is still logged).
      progress: progress bars.
    """
    ev = evaluators(saved, splits, recipe.filters.examples)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    log: dict[str, Any] = {}
    if structure is None:
        structure, log["filters"] = particle_structure(
            saved, recipe, splits, rng=rng, start=start, progress=progress
        )
    seconds["select"] = time.perf_counter() - t0
    retrain_key, bits_key = jax.random.split(key)
    result = retrain_structure(saved, structure, recipe, splits, key=retrain_key, progress=progress)
    seconds["retrain"] = time.perf_counter() - t0 - seconds["select"]
    val_error = {"selected": result.history[0]["val_error"], "retrained": result.val_error}
    log["retrain"] = result.history
    log["bits_tolerance"] = bits_tolerance(saved, recipe, ev)
    rule_bits, log["word_lengths"] = word_length(result.params, ev.error, log["bits_tolerance"])
    log["word_length_rule"] = rule_bits
    bits = rule_bits if bits is None else bits
    params = result.params
    if bits is not None:
        fine = fixed_point_finetune(
            saved, structure, result.params, bits, recipe, splits, key=bits_key, progress=progress
        )
        params, val_error["fixed_point"] = fine.params, fine.val_error
        log["fixed_point"] = fine.history
    seconds["total"] = time.perf_counter() - t0
    log["seconds"] = seconds
    return StructuredResult(structure, result.params, params, bits, val_error, log)


def l1_compression(
    saved: SavedModel,
    recipe: StructuredRecipe,
    splits: Splits,
    *,
    key: jax.Array,
    bits: int | None = None,
    progress: bool = True,
) -> StructuredResult:
    """Li et al.'s L1-norm filter pruning at the recipe's channel counts (equal FLOPs with the
    recipe's channel stage), retrained and reduced to fixed point the same way (``bits``: a
    word length chosen elsewhere)."""
    structure = l1_structure(saved.params, recipe.channels())
    return structured_compression(
        saved,
        recipe,
        splits,
        key=key,
        rng=np.random.default_rng(0),
        structure=structure,
        bits=bits,
        progress=progress,
    )


def _lenet5(conv1: int, conv2: int, fc1: int) -> StructuredRecipe:
    return StructuredRecipe(
        plan={"conv1": LayerPlan(conv1), "conv2": LayerPlan(conv2), "fc1": LayerPlan(fc1)}
    )


# Channel splits of LeNet-5 at about the same budget (0.234-0.238 of its 2.29M MACs), scored on
# validation by ``bench_structured.py --search``.
CANDIDATES: dict[str, dict[str, StructuredRecipe]] = {
    "lenet5": {
        "c10_20_250": _lenet5(10, 20, 250),
        "c12_16_250": _lenet5(12, 16, 250),
        "c8_25_250": _lenet5(8, 25, 250),
    }
}

STRUCTURED: Registry[StructuredRecipe] = Registry("structured recipe")
structured_recipe = STRUCTURED.__getitem__  # the registered recipe ``name``

LENET5_STRUCTURED = STRUCTURED.add(
    "lenet5",
    dataclasses.replace(
        CANDIDATES["lenet5"]["c8_25_250"],
        filters=FilterSettings(significance=1.0),
        score_steps=200,
    ),
)
"""LeNet-5 keeping 8 / 25 / 250 of its 20 / 50 / 500 conv1 / conv2 / fc1 channels (0.234 of the MACs).

Command: ``make bench-structured``.

Channel counts chosen by ``bench_structured.py --search`` (validation only; structured_search.json,
9 minutes): after the particle filters and one retraining epoch, 8/25/250 val 1.32%, 12/16/250
1.42%, 10/20/250 1.50%.

How the particles are scored (``score_steps=200``, ``significance=1``), chosen on the 3,000
validation images the filters never score (images 2,000-4,999; each choice retrained 4 epochs,
seed 0, 2026-12-03): the paper's rule (error as pruned) picks masks far better
than L1's before retraining (val 4.06 against 7.36%) that retrain worse: held-out 1.00% against
L1's 0.87% (30 against 26 errors; MNIST test over 3 seeds in the bench of 90e655d: 0.94 against
0.82%). After 400 masked SGD steps the same masks stand 1.66% (PF) and 1.56% (L1), random masks
1.96-2.16%: what retraining makes of a mask is what to score. Scored after 200 steps, with the
layers not yet chosen at their L1 choice, the filters still moved conv1 by 4 channels on
differences within the scoring split's noise (held-out 0.93%); with the guard (a particle must
beat the L1 start by one binomial standard error, 0.31 points at 2%, to replace it) no particle
did, and the choice is L1's (held-out 0.87%). So at this budget no mask the filters reach beats
L1's by more than validation noise after retraining; the filters cost about 7 minutes here.
"""
