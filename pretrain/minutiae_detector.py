"""A learned minutiae detector, trained on the generator's ground truth (FingerNet-style).

The classical extractor (:mod:`pretrain.data.minutiae`: band-pass, thinning, crossing number)
finds minutiae that the matcher (:mod:`devices.minutiae_match`) cannot use: on dev
prints its minutiae give a matcher EER of 41%, the generator's true minutiae 13%
(``minutiae_fusion.json``). This network learns the extractor's job from the truth instead.

Input: a uint8 500 dpi impression, normalised by its own mean and spread (ridges positive). A
fully convolutional network (:data:`LAYERS`: two stride-2 layers, then dilated 3x3 layers, a
receptive field of 133 px, about fourteen ridges) gives for every :data:`CELL` x :data:`CELL` px
cell a minutia logit, the minutia's offset inside the cell (two sigmoids) and its direction as
:data:`BINS` bins of the full turn. Targets (:func:`targets`): a cell holds a minutia when a true
minutia lies in it; the cells around one are ignored by the logit's loss (a minutia on a cell's
edge, the truth's own pixel of error); the direction is a cross-entropy against a Gaussian of one
bin around the true one, the offset an L1, both on minutia cells only.

Truth (:func:`impression_truth`): the master's minutiae (:func:`master_minutiae`) moved into the
impression by its placement *with* the skin distortion (the impression pixel whose master point
is nearest, as the anchor's truth), the direction turned by the rigid rotation; those on the
readable print (:func:`print_mask`). The rigid truth of :func:`impression_minutiae` misses the
distortion's shift (up to 12 px outside the contact region), which a detector would learn as
noise.

Decoding (:func:`decode`): a cell is a minutia where its probability is the largest of its 3x3
neighbourhood and at least the threshold; its position is the cell plus the offset; its
direction the circular mean of the bins' probabilities. The kind (ending or bifurcation) is not
predicted (the matcher does not use it).

What chose what: the architecture, the loss weights, the rate, the crop and the number of steps
were set beforehand (the scratch detector of stop 66, one run, showed the size was enough to
learn where minutiae are); the checkpoint and the threshold are chosen on held-out *training*
identities (:data:`VAL_IDENTITIES`) by the F1 of found minutiae within :data:`MATCH_PX` of a true
one. The dev identities (0-99) and FVC are not read here.

Reference:
  Tang, Gao, Feng, Zhou, "FingerNet: An unified deep network for fingerprint minutiae
  extraction", IJCB 2017 (minutiae score, offset and direction maps on 8-px cells).
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import pickle
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from devices.minutiae_detector import BINS, CELL, LAYERS, bin_angles, decode, normalised
from pretrain.data.fingerprint.impressions import master_coordinates, rigid_to_impression
from pretrain.data.fingerprint.synthetic import (
    FingerprintGenerator,
    GeneratorConfig,
    Master,
    impression_placement,
)
from pretrain.data.minutiae import Minutia, master_minutiae, print_mask
from pretrain.npz_cache import save_npz, settings_digest

TRAIN_IDENTITIES = range(300, 1300)  # backbone training identities (300.. in every run)
VAL_IDENTITIES = range(1300, 1350)  # held-out training identities: checkpoint and threshold
MATCH_PX = 8.0  # a found minutia within this of an unclaimed true one is a hit
NEAR_PX = 3.0  # a master minutia whose nearest impression pixel is further was not imaged
THRESHOLDS = tuple(np.round(np.arange(0.2, 0.91, 0.05), 2))


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """Training settings (set beforehand; see the module docstring).

    Attributes:
      steps: Adam steps (cosine-decayed rate).
      batch_size: crops per step.
      crop: side (px) of the square training crops.
      learning_rate: Adam's first rate.
      positive_weight: weight of a minutia cell in the logit's cross-entropy.
      eval_every: steps between held-out evaluations (and checkpoints).
      seed: initialisation, crops and mirroring.
    """

    steps: int = 10000
    batch_size: int = 16
    crop: int = 160
    learning_rate: float = 2e-3
    positive_weight: float = 8.0
    eval_every: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        counts = {"steps": self.steps, "batch_size": self.batch_size, "eval_every": self.eval_every}
        if min(counts.values()) < 1:
            raise ValueError(f"{counts} must all be >= 1.")


def impression_truth(
    master: Master,
    truth: Sequence[Minutia],
    identity: int,
    impression: int,
    *,
    seed: int,
    config: GeneratorConfig,
    image: np.ndarray,
) -> np.ndarray:
    """``(n, 4)`` rows x, y, angle, kind of the master's minutiae ``truth`` where impression
    ``impression`` (``image``) shows them: placed with the skin distortion, on the readable
    print."""
    where = impression_placement(identity, impression, seed=seed, config=config)
    shape = image.shape
    rows, cols = master_coordinates(where, shape, master.centre)
    readable = print_mask(image)
    out = []
    for m in truth:
        if not np.isfinite(m.angle):
            continue
        r0, c0 = rigid_to_impression(where, shape, master.centre, m.x, m.y)
        top, left = max(0, int(r0) - 24), max(0, int(c0) - 24)
        window = np.hypot(
            rows[top : int(r0) + 25, left : int(c0) + 25] - m.y,
            cols[top : int(r0) + 25, left : int(c0) + 25] - m.x,
        )
        if window.size == 0:
            continue
        k = int(np.argmin(window))
        if window.flat[k] > NEAR_PX:
            continue
        r, c = divmod(k, window.shape[1])
        r, c = r + top, c + left
        if readable[r, c]:
            angle = (m.angle - where.rotation + np.pi) % (2 * np.pi) - np.pi
            out.append((float(c), float(r), angle, 0.0 if m.kind == "ending" else 1.0))
    return np.asarray(out, np.float64).reshape(-1, 4)


def _identity_prints(
    job: tuple[int, int, int, dict[str, Any]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, truth) of each impression of one identity (a worker's job)."""
    identity, impressions, seed, options = job
    config = GeneratorConfig.from_dict(options)
    gen = FingerprintGenerator(seed=seed, config=config, cache_size=1)
    master = gen.master(identity)
    truth = master_minutiae(master)
    out = []
    for k in range(impressions):
        image = gen.impression(identity, k)
        found = impression_truth(master, truth, identity, k, seed=seed, config=config, image=image)
        out.append((image, found))
    return out


def detector_data(
    identities: range,
    impressions: int,
    *,
    seed: int,
    generator: GeneratorConfig,
    workers: int = 2,
    progress: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """uint8 impressions ``(n, h, w)`` of ``impressions`` prints of each of ``identities`` and
    each one's true minutiae (:func:`impression_truth`), identity-major."""
    options = dataclasses.asdict(generator)
    jobs = [(int(i), impressions, seed, options) for i in identities]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        done = list(
            tqdm(
                pool.map(_identity_prints, jobs, chunksize=4),
                total=len(jobs),
                desc="detector prints",
                disable=not progress,
            )
        )
    prints = [p for identity in done for p in identity]
    return np.stack([p[0] for p in prints]), [p[1] for p in prints]


def cached_detector_data(
    workdir: Path,
    identities: range,
    impressions: int,
    *,
    seed: int,
    generator: GeneratorConfig,
    progress: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`detector_data`, kept in ``workdir`` under a name of its settings (and of this
    module's truth rule)."""
    key = settings_digest(
        [
            identities.start,
            identities.stop,
            impressions,
            seed,
            dataclasses.asdict(generator),
            NEAR_PX,
            "truth-v1",
        ]
    )
    path = workdir / f"detector-{identities.start}-{identities.stop}-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            counts = z["counts"]
            return z["images"], np.split(z["truth"], np.cumsum(counts)[:-1])
    images, truth = detector_data(
        identities, impressions, seed=seed, generator=generator, progress=progress
    )
    counts = np.asarray([len(t) for t in truth])
    save_npz(path, images=images, truth=np.concatenate(truth), counts=counts)
    return images, truth


def targets(truth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 ``(h // CELL, w // CELL, 5)``: minutia cell, ignored cell, offset x, offset y (in
    the cell, 0-1) and direction (radians) of one print's truth ``(n, 4)``."""
    gh, gw = shape[0] // CELL, shape[1] // CELL
    out = np.zeros((gh, gw, 5), np.float32)
    near = np.zeros((gh, gw), bool)
    for x, y, angle, _ in truth:
        r, c = int(y // CELL), int(x // CELL)
        if 0 <= r < gh and 0 <= c < gw:
            near[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2] = True
            out[r, c] = (1.0, 0.0, x / CELL - c, y / CELL - r, angle)
    out[..., 1] = near & (out[..., 0] == 0)
    return out


def mirrored(images: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-right mirrored crops and their targets (offset x and direction mirrored too)."""
    maps = maps[:, :, ::-1].copy()
    maps[..., 2] = np.where(maps[..., 0] > 0, 1.0 - maps[..., 2], 0.0)
    maps[..., 4] = np.where(maps[..., 0] > 0, np.pi - maps[..., 4], 0.0)
    return images[:, :, ::-1], maps


def init(key: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
    """He-initialised weights ``(k, k, in, out)`` and zero biases of :data:`LAYERS`."""
    params, cin = [], 1
    for kernel, _, _, cout in LAYERS:
        key, sub = jax.random.split(key)
        scale = np.sqrt(2.0 / (kernel * kernel * cin))
        params.append(
            (jax.random.normal(sub, (kernel, kernel, cin, cout)) * scale, jnp.zeros(cout))
        )
        cin = cout
    return params


def forward(params: Sequence[tuple[Any, Any]], x: jax.Array) -> jax.Array:
    """``(n, h // CELL, w // CELL, 3 + BINS)`` raw outputs of normalised images ``(n, h, w, 1)``
    (``h``, ``w`` multiples of :data:`CELL`)."""
    for k, ((w, b), (_, stride, dilation, _)) in enumerate(zip(params, LAYERS, strict=True)):
        x = (
            jax.lax.conv_general_dilated(
                x,
                w,
                (stride, stride),
                "SAME",
                rhs_dilation=(dilation, dilation),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
            + b
        )
        if k < len(LAYERS) - 1:
            x = jax.nn.relu(x)
    return x


def loss(
    params: Sequence[tuple[Any, Any]], x: jax.Array, t: jax.Array, positive_weight: float
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
    """The logit's weighted cross-entropy (per minutia) plus the offset's L1 and the
    direction's cross-entropy (mean over minutia cells)."""
    out = forward(params, x)
    pos, ignored = t[..., 0], t[..., 1]
    logit = out[..., 0]
    count = pos.sum() + 1.0
    score = (
        positive_weight * pos * jax.nn.softplus(-logit)
        + (1 - pos) * (1 - ignored) * jax.nn.softplus(logit)
    ).sum() / count
    offset = (jnp.abs(jax.nn.sigmoid(out[..., 1:3]) - t[..., 2:4]).sum(-1) * pos).sum() / count
    turn = jnp.asarray(bin_angles())
    gap = jnp.mod(t[..., 4:5] - turn + jnp.pi, 2 * jnp.pi) - jnp.pi
    soft = jnp.exp(-0.5 * (gap / (2 * np.pi / BINS)) ** 2)
    soft = soft / soft.sum(-1, keepdims=True)
    direction = (-(soft * jax.nn.log_softmax(out[..., 3:], -1)).sum(-1) * pos).sum() / count
    return score + offset + direction, (score, offset, direction)


_FORWARD = jax.jit(forward)


def outputs(params: Sequence[tuple[Any, Any]], images: np.ndarray, batch: int = 16) -> np.ndarray:
    """float32 raw outputs of uint8 images ``(n, h, w)`` (cropped to multiples of :data:`CELL`)."""
    h, w = (images.shape[1] // CELL) * CELL, (images.shape[2] // CELL) * CELL
    return np.concatenate(
        [
            np.asarray(_FORWARD(params, jnp.asarray(normalised(images[i : i + batch, :h, :w]))))
            for i in range(0, len(images), batch)
        ]
    )


def detect(
    params: Sequence[tuple[Any, Any]], images: np.ndarray, threshold: float
) -> list[np.ndarray]:
    """The minutiae ``(n, 4)`` of each uint8 500 dpi image."""
    return decode(outputs(params, images), threshold)


def hits(found: np.ndarray, truth: np.ndarray) -> tuple[int, list[float]]:
    """Found minutiae paired greedily (nearest first) with true ones within :data:`MATCH_PX`:
    the pairs' count and their direction errors (radians)."""
    if len(found) == 0 or len(truth) == 0:
        return 0, []
    d = np.hypot(found[:, None, 0] - truth[None, :, 0], found[:, None, 1] - truth[None, :, 1])
    used_f, used_t, turns = set(), set(), []
    for i, j in zip(*np.unravel_index(np.argsort(d, axis=None), d.shape), strict=True):
        if d[i, j] > MATCH_PX:
            break
        if i in used_f or j in used_t:
            continue
        used_f.add(i)
        used_t.add(j)
        turns.append(abs((found[i, 2] - truth[j, 2] + np.pi) % (2 * np.pi) - np.pi))
    return len(turns), turns


def scores(out: np.ndarray, truth: Sequence[np.ndarray]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and the median direction error (degrees) at each of
    :data:`THRESHOLDS`."""
    table = {}
    for threshold in THRESHOLDS:
        found = decode(out, float(threshold))
        pairs = [hits(f, t) for f, t in zip(found, truth, strict=True)]
        tp = sum(p[0] for p in pairs)
        n_found, n_true = sum(len(f) for f in found), sum(len(t) for t in truth)
        precision, recall = tp / max(n_found, 1), tp / max(n_true, 1)
        turns = [a for p in pairs for a in p[1]]
        table[f"{threshold:.2f}"] = {
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / max(precision + recall, 1e-9),
            "direction_error_deg_median": float(np.degrees(np.median(turns))) if turns else 180.0,
            "found_per_print": n_found / len(found),
        }
    return table


def best_threshold(table: dict[str, dict[str, float]]) -> str:
    """The threshold (key of :func:`scores`' table) of the largest F1."""
    return max(table, key=lambda k: table[k]["f1"])


def _save(path: Path, state: dict[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(state))
    partial.replace(path)


def _numpy(params: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(w), np.asarray(b)) for w, b in params]


def train_detector(
    train: tuple[np.ndarray, Sequence[np.ndarray]],
    val: tuple[np.ndarray, Sequence[np.ndarray]],
    config: DetectorConfig = DetectorConfig(),
    *,
    checkpoint: Path | None = None,
    progress: bool = False,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[dict[str, Any]]]:
    """Float parameters of the best evaluation (F1 at its best threshold on ``val``) and the
    evaluations' figures; resumes from ``checkpoint`` when it exists and saves it at every
    evaluation."""
    images, truth = train
    h, w = images.shape[1:]
    maps = np.stack([targets(t, (h, w)) for t in truth])
    mean = images.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    spread = images.std(axis=(1, 2), dtype=np.float64).astype(np.float32) + 1e-3
    opt = optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.steps))
    state: dict[str, Any] = {
        "step": 0,
        "params": _numpy(init(jax.random.PRNGKey(config.seed))),
        "history": [],
        "best": None,
        "best_f1": -1.0,
        "rng": np.random.default_rng(config.seed).bit_generator.state,
    }
    if checkpoint is not None and checkpoint.exists():
        state = pickle.loads(checkpoint.read_bytes())
    params = [(jnp.asarray(a), jnp.asarray(b)) for a, b in state["params"]]
    opt_state = state.get("opt") or opt.init(params)
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]

    @jax.jit
    def step(params, opt_state, xb, tb):
        (value, parts), grads = jax.value_and_grad(loss, has_aux=True)(
            params, xb, tb, config.positive_weight
        )
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value, parts

    crop, cells = config.crop, config.crop // CELL
    bar = tqdm(
        total=config.steps, initial=state["step"], desc="minutiae detector", disable=not progress
    )
    started, losses = time.time(), []
    while state["step"] < config.steps:
        idx = rng.integers(0, len(images), config.batch_size)
        r0 = rng.integers(0, (h - crop) // CELL + 1, config.batch_size)
        c0 = rng.integers(0, (w - crop) // CELL + 1, config.batch_size)
        xb = np.stack(
            [
                images[i, r * CELL : r * CELL + crop, c * CELL : c * CELL + crop]
                for i, r, c in zip(idx, r0, c0, strict=True)
            ]
        )
        tb = np.stack(
            [maps[i, r : r + cells, c : c + cells] for i, r, c in zip(idx, r0, c0, strict=True)]
        )
        flip = rng.random(config.batch_size) < 0.5
        if flip.any():
            xb[flip], tb[flip] = mirrored(xb[flip], tb[flip])
        xn = ((mean[idx, None, None] - xb.astype(np.float32)) / spread[idx, None, None])[..., None]
        params, opt_state, value, _ = step(params, opt_state, jnp.asarray(xn), jnp.asarray(tb))
        losses.append(float(value))
        state["step"] += 1
        bar.update()
        if state["step"] % config.eval_every == 0 or state["step"] == config.steps:
            table = scores(outputs(params, val[0]), val[1])
            at = best_threshold(table)
            row = {
                "step": state["step"],
                "loss": float(np.mean(losses)),
                "seconds": time.time() - started,
                "threshold": float(at),
                **table[at],
            }
            losses, started = [], time.time()
            state["history"].append(row)
            if progress:
                tqdm.write(
                    f"step {row['step']}: loss {row['loss']:.3f}, val F1 {row['f1']:.3f} at "
                    f"{at} (precision {row['precision']:.3f}, recall {row['recall']:.3f}, "
                    f"direction {row['direction_error_deg_median']:.1f} deg)"
                )
            if row["f1"] > state["best_f1"]:
                state["best"], state["best_f1"] = _numpy(params), row["f1"]
            state["params"], state["opt"] = _numpy(params), opt_state
            state["rng"] = rng.bit_generator.state
            if checkpoint is not None:
                _save(checkpoint, state)
    bar.close()
    return state["best"], state["history"]


def save_weights(
    path: Path, params: Sequence[tuple[np.ndarray, np.ndarray]], threshold: float
) -> None:
    """Writes float32 weights and the chosen threshold to ``path`` (npz)."""
    arrays: dict[str, Any] = {"threshold": np.float32(threshold)}
    arrays |= {f"w{k}": np.asarray(w, np.float32) for k, (w, _) in enumerate(params)}
    arrays |= {f"b{k}": np.asarray(b, np.float32) for k, (_, b) in enumerate(params)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **arrays)


def load_weights(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """:func:`save_weights`' parameters and threshold."""
    with np.load(path) as z:
        params = [(z[f"w{k}"], z[f"b{k}"]) for k in range(len(LAYERS))]
        return params, float(z["threshold"])


def fit(
    workdir: Path,
    out: Path,
    *,
    generator: GeneratorConfig,
    train_identities: range = TRAIN_IDENTITIES,
    val_identities: range = VAL_IDENTITIES,
    impressions: int = 8,
    seed: int = 0,
    config: DetectorConfig = DetectorConfig(),
    progress: bool = True,
) -> dict[str, Any]:
    """Trains the detector on ``generator``'s prints (resumable from ``workdir``), writes the
    chosen weights and threshold to ``out`` and returns its figures."""
    train = cached_detector_data(
        workdir, train_identities, impressions, seed=seed, generator=generator, progress=progress
    )
    val = cached_detector_data(
        workdir, val_identities, impressions, seed=seed, generator=generator, progress=progress
    )
    params, history = train_detector(
        train, val, config, checkpoint=workdir / "detector-checkpoint.pkl", progress=progress
    )
    table = scores(outputs(params, val[0]), val[1])
    threshold = best_threshold(table)
    save_weights(out, params, float(threshold))
    return {
        "generator": dataclasses.asdict(generator),
        "train_identities": [train_identities.start, train_identities.stop],
        "val_identities": [val_identities.start, val_identities.stop],
        "impressions": impressions,
        "seed": seed,
        "config": dataclasses.asdict(config),
        "true_minutiae_per_print_median": float(np.median([len(t) for t in train[1]])),
        "train_seconds": sum(row["seconds"] for row in history),  # over resumed sessions too
        "history": history,
        "threshold": float(threshold),
        "val": table,
        "weights_bytes": out.stat().st_size,
        "weights_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
