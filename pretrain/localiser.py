"""Trains the learned fingerprint anchor (:mod:`devices.localiser`) on synthetic prints.

Inputs are :func:`devices.localiser.localiser_input` of generator prints (of one generator, or
of several: the shipped weights saw the mixed prints at 320x320 and the same on fingers as large
as the FVC sensors see, ``pretrain/configs/localiser_large_fingers.py``); the target is the
block of the print's anchor (:mod:`pretrain.data.fingerprint.anchors`), softened by a Gaussian of
one block. The float network (the integer one's layers, ReLU, no normalisation) is trained by Adam
on a cross-entropy over all blocks, with left-right mirrored prints as augmentation; the epoch
with the smallest median anchor error on held-out training identities is kept, then quantised
post-training: int8 weights per layer, uint8 activations scaled by their 99.99th percentile on
those held-out prints, the accumulators' rescaling an integer multiplier. The integer network is
measured again on the held-out prints (the figures in the JSON), at the size it was trained on
and at the five FVC sensors' image sizes (:func:`size_errors`: the same fingers under a larger or
smaller sensor; ``python -m pretrain localiser --evaluate`` measures shipped weights alone).

What chose what: the architecture (3x3 convolutions dilated 1, 2, 4, 8, 16 channels; a
receptive field of 31 blocks, 248 px, about a print), the target's softening, the rate and the
epochs were set beforehand, not searched; the epoch is chosen on held-out *training* identities
(``val``); the dev identities (0-99) and FVC are not read here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from devices.localiser import (
    INPUT_SCALE,
    PAD,
    SHIFT,
    Localiser,
    block_centre,
    localiser_input,
)
from devices.registration import BLOCK
from pretrain.data.fingerprint.anchors import impression_anchor
from pretrain.data.fingerprint.synthetic import (
    FingerprintGenerator,
    GeneratorConfig,
    impression_placement,
)
from pretrain.npz_cache import save_npz, settings_digest

DILATIONS = (1, 2, 4, 8, 1)
TRAIN_IDENTITIES = range(300, 1300)  # backbone training identities (300.. in every run)
VAL_IDENTITIES = range(1300, 1400)  # held-out training identities: they choose the epoch
SIZE_IMPRESSIONS = 4  # impressions per held-out identity in :func:`size_errors`' figures
IMPRESSIONS = 8  # impressions per training identity (each also mirrored)
CALIBRATION = 200  # held-out prints (evenly spaced) that set the activations' scales
SENSOR_SHAPES = ((300, 300), (364, 256), (478, 448), (374, 388), (560, 296))
"""``(h, w)`` of the five FVC sensor sets' images (their README's sizes; no print is read): the
localiser is trained on one or two impression sizes and must hold on these."""
KERNELS = (3, 3, 3, 3, 1)


@dataclasses.dataclass(frozen=True)
class LocaliserConfig:
    """Training settings (set beforehand; see the module docstring).

    Attributes:
      channels: width of the hidden layers.
      epochs: passes over the training prints.
      batch_size: prints per step.
      learning_rate: Adam's rate (cosine-decayed to 0 over the run).
      sigma_blocks: the target's Gaussian softening, in blocks.
      seed: initialisation and shuffling.
    """

    channels: int = 16
    epochs: int = 24
    batch_size: int = 32
    learning_rate: float = 3e-3
    sigma_blocks: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}."
            )


def anchor_data(
    identities: Sequence[int] | range,
    impressions: int,
    *,
    seed: int,
    generator: GeneratorConfig,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """int16 inputs ``(n, 3, gh, gw)`` (:func:`localiser_input`) and float32 anchors ``(n, 2)``
    (row, col px) of ``impressions`` prints of each of ``identities``."""
    gen = FingerprintGenerator(seed=seed, config=generator, cache_size=1)
    shape = generator.impression_shape
    inputs, anchors = [], []
    bar = tqdm(total=len(identities) * impressions, desc="anchor prints", disable=not progress)
    for identity in identities:
        master = gen.master(int(identity))
        for k in range(impressions):
            gray = gen.impression(int(identity), k)
            inputs.append(localiser_input(gray).astype(np.int16))
            where = impression_placement(int(identity), k, seed=seed, config=generator)
            anchors.append(impression_anchor(master, where, shape))
            bar.update()
    bar.close()
    return np.stack(inputs), np.asarray(anchors, np.float32)


def target_cells(anchors: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """int ``(n, 2)``: each anchor's block in the padded grid (clipped to it)."""
    cells = np.rint((anchors - BLOCK // 2) / BLOCK).astype(np.int64) + PAD
    return np.clip(cells, 0, np.asarray(grid) - 1)


def _init(key: jax.Array, channels: int) -> list[tuple[jax.Array, jax.Array]]:
    sizes = [3] + [channels] * (len(KERNELS) - 1) + [1]
    params = []
    for k, (cin, cout, side) in enumerate(zip(sizes[:-1], sizes[1:], KERNELS, strict=True)):
        fan_in = cin * side * side
        w = jax.random.normal(jax.random.fold_in(key, k), (cout, cin, side, side)) * np.sqrt(
            2.0 / fan_in
        )
        params.append((w, jnp.zeros(cout)))
    return params


def _layer(x: jax.Array, w: jax.Array, b: jax.Array, dilation: int) -> jax.Array:
    """One ``same`` convolution of the network (NCHW, OIHW), bias added."""
    y = jax.lax.conv_general_dilated(
        x,
        w,
        (1, 1),
        "SAME",
        rhs_dilation=(dilation, dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )
    return y + b[None, :, None, None]


def forward(params: list[tuple[jax.Array, jax.Array]], x: jax.Array) -> jax.Array:
    """Float logits ``(n, gh, gw)`` of float inputs ``(n, 3, gh, gw)`` (integer input / 128)."""
    for k, ((w, b), d) in enumerate(zip(params, DILATIONS, strict=True)):
        x = _layer(x, w, b, d)
        if k < len(params) - 1:
            x = jax.nn.relu(x)
    return x[:, 0]


def _soft_targets(cells: np.ndarray, grid: tuple[int, int], sigma: float) -> np.ndarray:
    rows = np.arange(grid[0])[None, :, None]
    cols = np.arange(grid[1])[None, None, :]
    d2 = (rows - cells[:, 0, None, None]) ** 2 + (cols - cells[:, 1, None, None]) ** 2
    t = np.exp(-d2 / (2 * sigma * sigma))
    return (t / t.sum(axis=(1, 2), keepdims=True)).astype(np.float32)


def _mirrored(x: np.ndarray, anchors: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-right mirror: the doubled-angle vector's y part changes sign; the anchor's column
    mirrors about the print's centre."""
    m = x[..., ::-1].copy()
    m[:, 1] = -m[:, 1]
    flipped = anchors.copy()
    flipped[:, 1] = width - 1 - anchors[:, 1]
    return m, flipped


def errors_px(predicted: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    return np.hypot(*(predicted - anchors).T)


def _predict(logits: np.ndarray) -> np.ndarray:
    return np.asarray([block_centre(one) for one in logits], np.float32)


def summary(errors: np.ndarray) -> dict[str, float]:
    return {
        "median_px": float(np.median(errors)),
        "p90_px": float(np.percentile(errors, 90)),
        "within_16px_pct": float(100 * np.mean(errors <= 16)),
        "within_32px_pct": float(100 * np.mean(errors <= 32)),
    }


def size_errors(
    localiser: Localiser,
    generator: GeneratorConfig,
    identities: range,
    impressions: int,
    *,
    seed: int = 0,
    shapes: Sequence[tuple[int, int]] = SENSOR_SHAPES,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """The integer network's anchor errors on impressions of other sizes than it was trained on:
    ``{"HxW": summary}`` for the trained size and each of ``shapes`` (the same fingers, the same
    placements, a larger or smaller sensor around them)."""
    out = {}
    for h, w in [generator.impression_shape, *shapes]:
        sized = dataclasses.replace(generator, impression_shape=(h, w))
        x, anchors = anchor_data(identities, impressions, seed=seed, generator=sized)
        out[f"{h}x{w}"] = summary(errors_px(integer_predictions(localiser, x), anchors))
        if progress:
            print(f"{h}x{w}: {json.dumps(out[f'{h}x{w}'])}", flush=True)
    return out


def train_localiser(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    config: LocaliserConfig = LocaliserConfig(),
    *,
    width: int,
    progress: bool = False,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[dict[str, Any]]]:
    """Float parameters of the best epoch (by median error on ``val``) and per-epoch figures."""
    x, anchors = train
    mx, ma = _mirrored(x, anchors, width)
    x, anchors = np.concatenate([x, mx]), np.concatenate([anchors, ma])
    grid = x.shape[2:]
    cells = target_cells(anchors, grid)
    steps = config.epochs * (len(x) // config.batch_size)
    schedule = optax.cosine_decay_schedule(config.learning_rate, steps)
    opt = optax.adam(schedule)
    params = _init(jax.random.PRNGKey(config.seed), config.channels)
    state = opt.init(params)

    @jax.jit
    def step(params, state, xb, tb):
        def loss(p):
            logits = forward(p, xb).reshape(xb.shape[0], -1)
            return -jnp.mean(jnp.sum(tb.reshape(xb.shape[0], -1) * jax.nn.log_softmax(logits), 1))

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    rng = np.random.default_rng(config.seed)
    best, best_error, history = None, np.inf, []
    for epoch in range(config.epochs):
        start = time.time()
        order = rng.permutation(len(x))
        losses = []
        batches = range(len(x) // config.batch_size)
        for b in tqdm(batches, desc=f"localiser epoch {epoch + 1}", disable=not progress):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            xb = jnp.asarray(x[idx], jnp.float32) / INPUT_SCALE
            tb = jnp.asarray(_soft_targets(cells[idx], grid, config.sigma_blocks))
            params, state, value = step(params, state, xb, tb)
            losses.append(float(value))
        float_params = [(np.asarray(w), np.asarray(b)) for w, b in params]
        err = errors_px(float_predictions(float_params, val[0]), val[1])
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.time() - start}
        row.update(summary(err))
        history.append(row)
        if progress:
            print(
                f"epoch {epoch + 1}: loss {row['loss']:.3f}, val median {row['median_px']:.1f} px, "
                f"within 16 px {row['within_16px_pct']:.1f}%"
            )
        if row["median_px"] < best_error or best is None:
            best, best_error = float_params, row["median_px"]
    assert best is not None
    return best, history


_FORWARD = jax.jit(forward)


def float_predictions(params: list, x: np.ndarray, batch: int = 200) -> np.ndarray:
    """Anchors (row, col) px of the float network on stored inputs ``x``."""
    logits = [
        np.asarray(_FORWARD(params, jnp.asarray(x[i : i + batch], jnp.float32) / INPUT_SCALE))
        for i in range(0, len(x), batch)
    ]
    return _predict(np.concatenate(logits))


def _activations(params: list, x: np.ndarray) -> list[np.ndarray]:
    """Float hidden activations (after ReLU) of ``x``, layer by layer, for calibration."""
    out = []
    h = jnp.asarray(x, jnp.float32) / INPUT_SCALE
    for (w, b), d in zip(params[:-1], DILATIONS[:-1], strict=True):
        h = jax.nn.relu(_layer(h, w, b, d))
        out.append(np.asarray(h))
    return out


def quantise(params: list[tuple[np.ndarray, np.ndarray]], calibration: np.ndarray) -> Localiser:
    """The integer :class:`Localiser` of float ``params``: int8 weights per layer, uint8
    activations at their 99.99th percentile on ``calibration`` inputs, integer multipliers."""
    acts = _activations(params, calibration)
    in_scale = 1.0 / INPUT_SCALE
    weights, biases, multipliers = [], [], []
    for k, (w, b) in enumerate(params):
        w_scale = float(np.abs(w).max()) / 127
        weights.append(np.rint(w / w_scale).astype(np.int64))
        acc_scale = in_scale * w_scale
        biases.append(np.rint(b / acc_scale).astype(np.int64))
        if k < len(params) - 1:
            out_scale = max(float(np.percentile(acts[k], 99.99)), 1e-6) / 255
            multipliers.append(round(acc_scale / out_scale * (1 << SHIFT)))
            in_scale = out_scale
    return Localiser(tuple(weights), tuple(biases), DILATIONS, tuple(multipliers))


def integer_predictions(localiser: Localiser, x: np.ndarray) -> np.ndarray:
    """Anchors (row, col) px of the integer network on stored inputs ``x``."""
    return _predict(np.stack([localiser.heatmap(xi.astype(np.int64)) for xi in x]))


def cached_anchor_data(
    workdir: Path,
    identities: range,
    impressions: int,
    *,
    seed: int,
    generator: GeneratorConfig,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`anchor_data`, kept in ``workdir`` under a name of its settings."""
    key = settings_digest(
        [identities.start, identities.stop, impressions, seed, dataclasses.asdict(generator)]
    )
    path = workdir / f"anchors-{identities.start}-{identities.stop}-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["inputs"], z["anchors"]
    data = anchor_data(identities, impressions, seed=seed, generator=generator, progress=progress)
    save_npz(path, inputs=data[0], anchors=data[1])
    return data


def padded_to(x: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Inputs ``(n, 3, gh, gw)`` zero-padded on the bottom and right to ``grid``: a smaller print
    seen by a larger sensor, its anchors unchanged."""
    out = np.zeros((x.shape[0], x.shape[1], *grid), x.dtype)
    out[:, :, : x.shape[2], : x.shape[3]] = x
    return out


def check_batches(
    train_identities: Sequence[range], impressions: int, config: LocaliserConfig
) -> None:
    """Refuses a run too small for one batch: an epoch of no step (an empty schedule).

    Raises:
      ValueError: fewer training prints (mirrored ones included) than ``config.batch_size``.
    """
    prints = 2 * impressions * sum(len(r) for r in train_identities)
    if prints < config.batch_size:
        raise ValueError(
            f"{sum(len(r) for r in train_identities)} training identities give {prints} prints "
            f"({impressions} impressions, mirrored), fewer than one batch of "
            f"{config.batch_size}: train on more identities."
        )


def fit(
    workdir: Path,
    out: Path,
    *,
    generators: Sequence[GeneratorConfig],
    train_identities: Sequence[range] = (TRAIN_IDENTITIES,),
    val_identities: range = VAL_IDENTITIES,
    impressions: int = IMPRESSIONS,
    seed: int = 0,
    config: LocaliserConfig = LocaliserConfig(),
    progress: bool = True,
) -> dict[str, Any]:
    """Trains, quantises and writes the localiser to ``out``; returns its figures.

    ``generators[k]`` draws the prints of ``train_identities[k]``; each draws ``val_identities``
    too, and the epoch is chosen on all of them. Prints of different sizes share one grid (the
    largest; smaller ones padded, :func:`padded_to`). The figures at other image sizes
    (:func:`size_errors`) are of ``generators[0]``'s prints."""
    if not generators or len(generators) != len(train_identities):
        raise ValueError("fit needs one training identity range per generator.")
    check_batches(train_identities, impressions, config)
    train_sets = [
        cached_anchor_data(workdir, ids, impressions, seed=seed, generator=g, progress=progress)
        for g, ids in zip(generators, train_identities, strict=True)
    ]
    val_sets = [
        cached_anchor_data(
            workdir, val_identities, impressions, seed=seed, generator=g, progress=progress
        )
        for g in generators
    ]
    grid = (max(x.shape[2] for x, _ in train_sets), max(x.shape[3] for x, _ in train_sets))

    def joined(sets: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.concatenate([padded_to(x, grid) for x, _ in sets]),
            np.concatenate([a for _, a in sets]),
        )

    train, val = joined(train_sets), joined(val_sets)
    width = max(g.impression_shape[1] for g in generators)
    start = time.time()
    params, history = train_localiser(train, val, config, width=width, progress=progress)
    step = max(1, len(val[0]) // CALIBRATION)
    localiser = quantise(params, val[0][::step][:CALIBRATION])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(localiser.to_bytes())
    errors = errors_px(integer_predictions(localiser, val[0]), val[1])
    ends = np.cumsum([len(a) for _, a in val_sets])
    sizes = size_errors(localiser, generators[0], val_identities, SIZE_IMPRESSIONS, seed=seed)
    return {
        "generators": [dataclasses.asdict(g) for g in generators],
        "train_identities": [[r.start, r.stop] for r in train_identities],
        "val_identities": [val_identities.start, val_identities.stop],
        "impressions": impressions,
        "seed": seed,
        "config": dataclasses.asdict(config),
        "train_seconds": time.time() - start,
        "history": history,
        "val_integer": summary(errors),
        "val_integer_by_generator": [summary(e) for e in np.split(errors, ends[:-1])],
        "val_by_impression_size": sizes,
        "weights_bytes": out.stat().st_size,
        "weights_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
