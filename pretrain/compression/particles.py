"""Particle filters that choose what structured pruning removes, by validation error.

A particle is one candidate pruning pattern of one layer at a fixed pruning ratio: a bool vector
over its channels or its kernels (the same number removed in every particle), or one offset per
filter for intra-kernel strided pruning. Each round evaluates every particle's misclassification
rate with the pattern applied (:func:`particle_filter`'s ``error``, on a validation split), turns
the rates into importance weights (``exp(-(rate - best) / temperature)``), resamples the particles
in proportion to those weights (systematic resampling) and perturbs each resampled particle (a few
removed units swapped with kept ones; a few offsets redrawn). The best particle ever evaluated is
the choice, unless ``margin`` asks a newcomer to beat the first particle by more than the scoring
split's noise (then the first particle, the baseline, stays unless beaten clearly).
:func:`select_structure` runs one filter per layer and granularity, in execution order, each
conditioned on the choices before it.

The first particle of a channel or kernel filter is the L1-norm ranking (Li et al.'s choice; the
others are uniform random draws), so the filter starts from the baseline and keeps it unless a
pattern with a lower validation error turns up.

References:
  Anwar, Hwang, Sung, "Structured Pruning of Deep Convolutional Neural Networks", ACM JETC 2017
  (arXiv 1512.08571), section 4: particle weights from the misclassification rate, resampling.
  Arulampalam, Maskell, Gordon, Clapp, "A Tutorial on Particle Filters", IEEE TSP 2002
  (systematic resampling).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from pretrain.compression.base import Params, named_leaves
from pretrain.compression.structured import (
    LENET5_CHAIN,
    Structure,
    filter_norms,
    keep_largest,
    strided_positions,
    structured_pruning,
)

GRANULARITIES = ("channels", "kernels", "positions")


class FilterResult(NamedTuple):
    """What one particle filter chose.

    Attributes:
      best: the particle with the lowest error seen (or the first one, within the margin).
      error: its error (0..1).
      history: per round, ``{"round", "best_error", "mean_error", "effective_particles"}``.
      first_error: the first particle's error (the baseline the filter starts from).
    """

    best: np.ndarray
    error: float
    history: list[dict[str, float]]
    first_error: float = math.nan


def systematic_resample(weights: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn in proportion to ``weights`` with one uniform offset (low variance)."""
    w = np.asarray(weights, np.float64)
    if w.ndim != 1 or w.size == 0 or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {w}.")
    edges = np.cumsum(w / w.sum())
    edges[-1] = 1.0
    points = (rng.random() + np.arange(w.size)) / w.size
    return np.searchsorted(edges, points, side="right")


def particle_filter(
    error: Callable[[np.ndarray], float],
    initial: Sequence[np.ndarray],
    perturb: Callable[[np.ndarray, np.random.Generator], np.ndarray],
    *,
    rounds: int,
    temperature: float,
    rng: np.random.Generator,
    desc: str = "particles",
    margin: Callable[[float], float] | None = None,
    progress: bool = True,
) -> FilterResult:
    """Evaluate -> weight -> resample -> perturb, ``rounds`` times; the best particle seen.

    Args:
      error: particle -> misclassification rate (0..1) of the network with it applied.
      initial: the first generation (at least one particle).
      perturb: ``(particle, rng) -> a nearby particle`` (same pruning ratio).
      rounds: generations evaluated.
      temperature: error scale of the weights ``exp(-(error - min error) / temperature)``.
      rng: randomness of resampling and perturbation.
      desc: progress bar label.
      margin: ``first particle's error -> how much lower`` another particle's error must be to
        replace it (e.g. one binomial standard error of the scoring split); None: any lower.
      progress: show a progress bar.
    """
    if rounds < 1 or not initial:
        raise ValueError(f"need rounds >= 1 and particles, got {rounds} and {len(initial)}.")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    particles = [np.asarray(p).copy() for p in initial]
    first = particles[0].copy()
    best, best_error = particles[0], math.inf
    history = []
    first_error = math.nan
    bar = tqdm(total=rounds * len(particles), desc=desc, disable=not progress, leave=False)
    for r in range(rounds):
        errors = np.empty(len(particles))
        for i, p in enumerate(particles):
            errors[i] = error(p)
            if r == 0 and i == 0:
                first_error = float(errors[i])
            bar.update()
            if errors[i] < best_error:
                best, best_error = p.copy(), float(errors[i])
        weights = np.exp(-(errors - errors.min()) / temperature)
        history.append(
            {
                "round": r,
                "best_error": float(errors.min()),
                "mean_error": float(errors.mean()),
                "effective_particles": float(weights.sum() ** 2 / np.sum(weights**2)),
            }
        )
        if r + 1 < rounds:
            picked = systematic_resample(weights, rng=rng)
            particles = [perturb(particles[i], rng) for i in picked]
    bar.close()
    if margin is not None and best_error > first_error - margin(first_error):
        best, best_error = first, first_error
    return FilterResult(best, best_error, history, first_error)


def random_masks(
    n: int, keep: int, count: int, *, rng: np.random.Generator, first: np.ndarray | None = None
) -> list[np.ndarray]:
    """``count`` bool vectors of ``n`` with ``keep`` True each; ``first`` (if given) leads."""
    out = [] if first is None else [np.asarray(first, bool).copy()]
    while len(out) < count:
        m = np.zeros(n, bool)
        m[rng.choice(n, keep, replace=False)] = True
        out.append(m)
    return out


def swap_units(moves: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """A perturbation exchanging ``moves`` removed units with as many kept ones."""

    def perturb(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = mask.copy()
        kept, gone = np.flatnonzero(out), np.flatnonzero(~out)
        k = min(moves, kept.size, gone.size)
        if k:
            out[rng.choice(kept, k, replace=False)] = False
            out[rng.choice(gone, k, replace=False)] = True
        return out

    return perturb


def redraw_offsets(
    moves: int, stride: int
) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """A perturbation redrawing ``moves`` filters' strided offsets."""

    def perturb(offsets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = offsets.copy()
        picked = rng.choice(out.size, min(moves, out.size), replace=False)
        out[picked] = rng.integers(0, stride, picked.size)
        return out

    return perturb


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """What one layer loses (validated when built).

    Attributes:
      channels: output channels kept (None: all).
      kernels: fraction of the surviving 2-D kernels removed (convolutions; 0: none).
      stride: intra-kernel stride (convolutions; 1: none): a filter keeps every ``stride``-th
        position of its flattened window, from an offset the filter chooses.
    """

    channels: int | None = None
    kernels: float = 0.0
    stride: int = 1

    def __post_init__(self) -> None:
        if self.channels is not None and self.channels < 1:
            raise ValueError(f"channels kept must be >= 1, got {self.channels}.")
        if not 0.0 <= self.kernels < 1.0:
            raise ValueError(f"kernels must be a fraction in [0, 1), got {self.kernels}.")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}.")


@dataclasses.dataclass(frozen=True)
class FilterSettings:
    """Particle filter size (the bench states what chose these and how long they take).

    Attributes:
      particles: particles per filter.
      rounds: generations per filter.
      temperature: error scale of the importance weights (0.002 = 0.2 points).
      moves: units swapped (offsets redrawn) per perturbation.
      examples: validation examples a particle's error is measured on (the first ones; 0: all).
      significance: binomial standard errors (of the first particle's error on those examples)
        by which a particle must beat the first one (the L1 choice for channels and kernels) to
        replace it; 0: any lower error wins (the paper's rule). Read by the callers that know
        the scoring split's size
        (:func:`~pretrain.compression.structured_pipeline.particle_structure`).
    """

    particles: int = 12
    rounds: int = 4
    temperature: float = 0.002
    moves: int = 2
    examples: int = 2000
    significance: float = 0.0

    def __post_init__(self) -> None:
        if self.particles < 1 or self.rounds < 1 or self.moves < 1 or self.examples < 0:
            raise ValueError(
                f"particles, rounds and moves must be >= 1 and examples >= 0, got "
                f"{self.particles}, {self.rounds}, {self.moves}, {self.examples}."
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}.")
        if self.significance < 0:
            raise ValueError(f"significance must be >= 0, got {self.significance}.")


class Particles(NamedTuple):
    """A filter's first generation, its perturbation, and particle -> structure field value."""

    initial: list[np.ndarray]
    perturb: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    to: Callable[[np.ndarray], np.ndarray]


def channel_particles(
    params: Params, layer: str, keep: int, settings: FilterSettings, rng: np.random.Generator
) -> Particles:
    """Channel masks keeping ``keep`` filters; the L1 ranking first, the rest uniform."""
    norms = filter_norms(params, layer)
    first = keep_largest(norms, keep)
    initial = random_masks(norms.size, keep, settings.particles, rng=rng, first=first)
    return Particles(initial, swap_units(settings.moves), lambda m: m)


def alive_kernels(
    structure: Structure, layer: str, previous: str | None, shape: tuple[int, ...]
) -> np.ndarray:
    """``(in, out)`` kernels of ``layer`` not already removed with a channel."""
    alive = np.ones(shape, bool)
    if layer in structure.channels:
        alive[:, ~structure.channels[layer]] = False
    if previous is not None and previous in structure.channels:
        alive[~structure.channels[previous], :] = False
    return alive


def kernel_particles(
    kernel: np.ndarray,
    alive: np.ndarray,
    fraction: float,
    settings: FilterSettings,
    rng: np.random.Generator,
) -> Particles:
    """Masks over the alive 2-D kernels removing ``fraction`` of them; the L1 ranking first."""
    idx = np.flatnonzero(alive.ravel())
    keep = idx.size - round(fraction * idx.size)
    norms = np.abs(kernel).sum((0, 1)).ravel()[idx]
    initial = random_masks(
        idx.size, keep, settings.particles, rng=rng, first=keep_largest(norms, keep)
    )

    def to(m: np.ndarray) -> np.ndarray:
        full = np.zeros(alive.size, bool)
        full[idx[m]] = True
        return full.reshape(alive.shape)

    return Particles(initial, swap_units(settings.moves), to)


def offset_particles(
    shape: tuple[int, ...], stride: int, settings: FilterSettings, rng: np.random.Generator
) -> Particles:
    """One strided offset per filter, uniform at first."""
    kh, kw, _, out = shape
    initial = [rng.integers(0, stride, out) for _ in range(settings.particles)]
    return Particles(
        initial,
        redraw_offsets(settings.moves, stride),
        lambda o: strided_positions(kh, kw, stride, o),
    )


def _with(structure: Structure, field: str, layer: str, value: np.ndarray) -> Structure:
    updated = dict(getattr(structure, field))
    updated[layer] = value
    return structure._replace(**{field: updated})


def select_structure(
    params: Params,
    plan: Mapping[str, LayerPlan],
    error: Callable[[Params], float],
    *,
    settings: FilterSettings = FilterSettings(),
    rng: np.random.Generator,
    chain: Sequence[str] = LENET5_CHAIN,
    start: Structure | None = None,
    structure_error: Callable[[Structure], float] | None = None,
    margin: Callable[[float], float] | None = None,
    progress: bool = True,
) -> tuple[Structure, dict[str, Any]]:
    """One particle filter per layer and granularity of ``plan``, in ``chain`` order.

    Args:
      params: trained parameters (not modified).
      plan: ``{layer: LayerPlan}``.
      error: ``params -> misclassification rate`` on a validation split.
      settings: particle count, rounds, weight temperature, perturbation size.
      rng: randomness of the particles.
      chain: the network's layers in order.
      start: choices already made (default: nothing removed); a layer's filter replaces its
        entry of the field it chooses (so ``start`` may also hold placeholders, e.g. the L1
        choice of layers not chosen yet).
      structure_error: scores a whole candidate structure instead of ``error`` of the pruned
        parameters (e.g. the error after a short retraining with its masks fixed).
      margin: passed to every filter (:func:`particle_filter`): how much lower than the first
        particle's error (the L1 choice; the first offsets draw for strides) a newcomer must
        score to replace it.
      progress: progress bars.

    Returns:
      ``(structure, log)``; ``log[f"{layer}/{granularity}"]`` holds the filter's best error and
      its per-round history.
    """
    structure = start or Structure({}, {}, {})
    leaves = named_leaves(params)
    log: dict[str, Any] = {}

    def score(candidate: Structure) -> float:
        if structure_error is not None:
            return float(structure_error(candidate))
        c = structured_pruning(candidate, chain)
        return float(error(c.apply(params, c.init(params))[0]))

    def run(field: str, layer: str, particles: Particles) -> None:
        nonlocal structure
        base = structure
        initial, perturb, to = particles
        result = particle_filter(
            lambda p: score(_with(base, field, layer, to(p))),
            initial,
            perturb,
            rounds=settings.rounds,
            temperature=settings.temperature,
            rng=rng,
            desc=f"{layer} {field}",
            margin=margin,
            progress=progress,
        )
        structure = _with(base, field, layer, to(result.best))
        log[f"{layer}/{field}"] = {
            "val_error": result.error,
            "first_val_error": result.first_error,
            "rounds": result.history,
        }

    for layer in chain[:-1]:
        if layer not in plan:
            continue
        p = plan[layer]
        kernel = np.asarray(leaves[f"{layer}/kernel"])
        if (p.kernels > 0 or p.stride > 1) and kernel.ndim != 4:
            raise ValueError(f"{layer}: kernel and strided pruning are for convolutions only.")
        if p.channels is not None:
            run("channels", layer, channel_particles(params, layer, p.channels, settings, rng))
        if p.kernels > 0:
            previous = chain[chain.index(layer) - 1] if chain.index(layer) else None
            alive = alive_kernels(structure, layer, previous, kernel.shape[2:])
            run("kernels", layer, kernel_particles(kernel, alive, p.kernels, settings, rng))
        if p.stride > 1:
            run("positions", layer, offset_particles(kernel.shape, p.stride, settings, rng))
    return structure, log
