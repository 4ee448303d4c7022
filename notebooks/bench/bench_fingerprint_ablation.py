"""Fingerprint ablation: each input variant x matcher on the FVC protocol, dev data first.

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_fingerprint_ablation.py \
        [--variant foreground --variant core ...] [--matcher lbp ...] [--no-fvc]
        [--dev-identities 30] [--dev-scale 1.25] [--dev-config <generator config>]
        [--finetune-steps 250] [--pose-truth] [--period-spread] [--registration-pairs]
        [--tag <row suffix>]

Development data: the synthetic validation identities 0-99 of generator seed 0 (the committed
backbone trains on identities from 300 on), 8 impressions each, scored by the FVC protocol (every
impression pair of a finger: 2,800 genuine; first impressions across fingers: 4,950 impostor).
Choices are made on these rows. ``--dev-config`` draws the same identities with a generator
config's ``GENERATOR`` instead (e.g. ``embed_fingerprint_mixed.py``: half the masters' flow
bent, so that registration fails on a share of genuine pairs as on FVC). The FVC B sets are then reported with
:func:`pretrain.evaluation.evaluate_fvc` (mean EER over the five sensor sets; 2000_DB4_B is
SFinGe output).

Variants (model inputs): ``foreground`` (today's ``FINGERPRINT_SPEC``), ``core`` /
``core_rotation`` (:mod:`devices.registration`), ``core_shift9`` / ``core_turn5`` /
``core_shift9_turn3`` (extra template views 16 px / 10 deg apart, best view scored),
``core_shift9_wide`` / ``core_shift5_wide`` (views 64 px apart: a 3x3 grid, or a cross), ``core_period`` /
``core_period_clamp`` (the print resized to the generator's mean ridge period, or into its
range, before the core registration; ``--dev-scale s`` resizes the dev prints by ``s`` first,
as a sensor of another resolution would), ``oracle`` (dev only: the
generator's own placement undone, perfect rigid registration), ``raw`` (the aligned-correlation
yardstick, its only matcher; slow: use ``--dev-identities 30``). Matchers: LBP and HOG (cosine),
the committed backbone ``notebooks/results/models/embed_fingerprint`` (embedding cosine) and the
same after the shipped artifact's whitener (``backbone_whitened``). ``--finetune-steps N`` first
trains the backbone N more CosFace steps on the variant's inputs of 200 training identities.
``--pose-truth`` measures the registration against the generator's ground truth;
``--period-spread`` the prints' ridge periods on dev and FVC (median, spread within and between
fingers); ``--registration-pairs`` which dev genuine pairs the registration lands on different
points of the finger, why, and what it costs the backbone (:func:`registration_pairs`).

Writes ``notebooks/results/fingerprint_ablation.json`` (merged by row name, so runs of single
rows add up) and prints the table. Raw prints are cached in ``--workdir``. Times on 2 shared
cores: a variant x the three cosine matchers with FVC ~4 min; ``raw`` on 30 identities with FVC
~6 min; ``--finetune-steps 250`` ~15 min per variant.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _results import RESULTS, ROOT, print_table, run_main, write_results
from bench_fingerprint_generator import load_config, names

import pretrain
from devices.localiser import ANCHOR_SPEC, anchor_pose
from devices.preprocess import (
    PreprocessSpec,
    foreground_blocks,
    preprocess_batch,
    preprocess_image,
    resize,
    to_gray_u8,
)
from devices.registration import (
    BLOCK,
    CORE_SPEC,
    WINDOW_SPEC,
    Pose,
    RegistrationConfig,
    estimate_pose,
    framed,
    register_views,
    registered_inputs,
    warp_window,
)
from devices.verification import threshold_for_far
from export.artifact.whiten import whitener
from pretrain.data import ArrayDataset, aligned_correlation
from pretrain.data.fingerprint import FingerprintGenerator, GeneratorConfig, master_coordinates
from pretrain.data.fingerprint.frequency import PERIOD_RANGE
from pretrain.data.fingerprint.impressions import Placement, rigid_to_master
from pretrain.data.fingerprint.synthetic import Master, impression_placement
from pretrain.data.fvc import fvc_sets, read_fvc
from pretrain.data.stats import foreground_mask, ridge_periods
from pretrain.embedding.suites import embed
from pretrain.evaluation import (
    BASELINES,
    MakeScorer,
    Scorer,
    default_prepare,
    evaluate_fvc,
    features_scorer,
    fvc_pairs,
    protocol_figures,
    set_report,
    views_scorer,
)
from pretrain.train import Splits

DEV_IDENTITIES = range(0, 100)
DEV_IMPRESSIONS = 8
SEED = 0
# The people notebooks/results/artifacts/fingerprint's whitener was fitted on (its manifest:
# "synthetic identities 2400-2499 x 2 impressions (seed 0)").
WHITENING = range(2400, 2500)
BACKBONE = ROOT / "notebooks" / "results" / "models" / "embed_fingerprint"
FOREGROUND_SPEC = PreprocessSpec(modality="fingerprint", input_size=(1, 1), foreground_block=BLOCK)

Prepare = Callable[[Sequence[np.ndarray]], np.ndarray]


def _registered(**options: Any) -> Prepare:
    config = RegistrationConfig(**options)
    return lambda images: registered_inputs(list(images), config)


def _views(shifts: tuple[tuple[int, int], ...], turns: tuple[int, ...], **options: Any) -> Prepare:
    """Registered windows with extra template views: samples ``(n, views, 128, 128, 1)``."""
    config = RegistrationConfig(**options)

    def prepare(images: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for image in images:
            views = register_views(image, config, shifts=shifts, turns=turns)
            out.append(np.stack([preprocess_image(v, WINDOW_SPEC) for v in views]))
        return np.stack(out)

    return prepare


def rescaled(gray: np.ndarray, scale: float) -> np.ndarray:
    """``gray`` resized by ``scale`` (area when shrinking, bilinear when growing), uint8."""
    h, w = gray.shape
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return np.clip(np.rint(resize(gray, size, "area")), 0, 255).astype(np.uint8)


def print_period(gray: np.ndarray) -> float | None:
    """Median ridge period (px) over the print's foreground windows, None if none is found."""
    periods = ridge_periods(gray, foreground_mask(gray))
    return float(np.median(periods)) if len(periods) else None


def _period(rule: str) -> Prepare:
    """Core-registered windows of prints first resized so that their median ridge period is the
    generator's mean (``normalize``) or within the generator's range of masters (``clamp``)."""
    lo, hi = PERIOD_RANGE
    register = _registered(rotate=False)

    def prepare(images: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for image in images:
            gray = to_gray_u8(image)
            period = print_period(gray)
            if period is not None:
                target = (lo + hi) / 2 if rule == "normalize" else min(max(period, lo), hi)
                if abs(target / period - 1) > 0.01:
                    gray = rescaled(gray, target / period)
            out.append(gray)
        return register(out)

    return prepare


def period_spread(images: Sequence[np.ndarray], owners: np.ndarray) -> dict[str, float]:
    """Median ridge period of a set's prints (:func:`print_period`) and the spread of its log,
    in %: within a finger (std over its impressions, mean over fingers) and between fingers
    (std of the fingers' means)."""
    log = np.log([print_period(to_gray_u8(image)) or np.nan for image in images])
    owners = np.asarray(owners)
    fingers = np.unique(owners)
    within = np.nanmean([np.nanstd(log[owners == f]) for f in fingers])
    between = np.nanstd([np.nanmean(log[owners == f]) for f in fingers])
    return {
        "median_px": float(np.exp(np.nanmedian(log))),
        "within_finger_pct": 100 * float(within),
        "between_fingers_pct": 100 * float(between),
    }


SHIFT9 = tuple((dr, dc) for dr in (0, -16, 16) for dc in (0, -16, 16))
# Views as far apart as the misregistrations FVC shows (19-46% of genuine pairs registered more
# than 64 px apart, notebooks/results/data.json), against 16 px above.
SHIFT9_WIDE = tuple((dr, dc) for dr in (0, -64, 64) for dc in (0, -64, 64))
SHIFT5_WIDE = ((0, 0), (-64, 0), (64, 0), (0, -64), (0, 64))
VARIANTS: dict[str, Prepare] = {
    "foreground": default_prepare,  # today's FINGERPRINT_SPEC: window on the foreground centroid
    "core": _registered(rotate=False),
    "core_rotation": _registered(rotate=True),
    "core_shift9": _views(SHIFT9, (0,), rotate=False),  # template views 16 px apart
    "core_turn5": _views(((0, 0),), (0, -10, 10, -20, 20), rotate=False),
    "core_shift9_turn3": _views(SHIFT9, (0, -10, 10), rotate=False),
    "core_shift9_wide": _views(SHIFT9_WIDE, (0,), rotate=False),
    "core_shift5_wide": _views(SHIFT5_WIDE, (0,), rotate=False),
    # the learned anchor (devices/localiser.npz) in place of the symmetry core; same framing
    "anchor": lambda images: preprocess_batch(list(images), ANCHOR_SPEC),
    "core_period": _period("normalize"),
    "core_period_clamp": _period("clamp"),
}


def backbone_features(model: Path = BACKBONE) -> Callable[[np.ndarray], np.ndarray]:
    saved = pretrain.load_model(model)
    return lambda samples: embed(saved.module, saved.params, samples)


def whitened_features(
    whitening: np.ndarray, model: Path = BACKBONE
) -> Callable[[np.ndarray], np.ndarray]:
    """The backbone's embedding after the export's ZCA whitener (``export.artifact.whitener``,
    eps 1e-3) fitted on ``whitening``: the function the shipped artifact computes."""
    features = backbone_features(model)
    w = whitener(features(whitening))
    return lambda samples: features(samples) @ w


def matchers(
    names: Sequence[str], *, views: bool, whitening: np.ndarray, model: Path = BACKBONE
) -> dict[str, MakeScorer]:
    """Cosine matchers; with ``views`` the best template view against the probe's first."""
    out: dict[str, MakeScorer] = {}
    for name in names:
        if name == "backbone":
            fn = backbone_features(model)
        elif name == "backbone_whitened":
            fn = whitened_features(whitening, model)
        else:
            fn = BASELINES[name]
        out[name] = views_scorer(fn) if views else features_scorer(fn)
    return out


def dev_prints(
    workdir: Path, name: str | None = None, generator: GeneratorConfig | None = None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Raw uint8 dev prints, their identities and impression numbers (1..8), cached; drawn by
    the default generator, or by ``generator`` (cached under ``name``)."""
    tail = "" if name is None else f"_{name}"
    path = workdir / f"dev_seed{SEED}_{DEV_IDENTITIES.start}-{DEV_IDENTITIES.stop}{tail}.npz"
    if path.exists():
        data = np.load(path)
        images, owners = data["images"], data["owners"]
    else:
        gen = FingerprintGenerator(seed=SEED, config=generator or GeneratorConfig(), cache_size=1)
        images, owners = gen.impressions(DEV_IDENTITIES, DEV_IMPRESSIONS, progress=True)
        workdir.mkdir(parents=True, exist_ok=True)
        np.savez(path, images=images, owners=owners)
    impressions = np.tile(np.arange(1, DEV_IMPRESSIONS + 1), len(images) // DEV_IMPRESSIONS)
    return list(images), owners, impressions


def whitening_prints(workdir: Path) -> list[np.ndarray]:
    """Raw prints of the people the shipped artifact's whitener was fitted on, cached."""
    path = workdir / f"whitening_seed{SEED}_{WHITENING.start}-{WHITENING.stop}.npz"
    if path.exists():
        return list(np.load(path)["images"])
    gen = FingerprintGenerator(seed=SEED, cache_size=1)
    images, _ = gen.impressions(WHITENING, 2, progress=True)
    np.savez(path, images=images)
    return list(images)


def placement_of(owner: int, number: int, generator: GeneratorConfig) -> Placement:
    """The placement of impression ``number`` (1..8, as ``impressions`` counts) of ``owner``."""
    return impression_placement(int(owner), int(number) - 1, seed=SEED, config=generator)


def oracle_windows(
    owners: np.ndarray,
    impressions: np.ndarray,
    images: Sequence[np.ndarray],
    generator: GeneratorConfig,
) -> np.ndarray:
    """Dev prints turned and moved back into their master's frame by the generator's own
    placement (rigid part; skin distortion stays): perfect rigid registration, dev only."""
    out = np.empty((len(images), *WINDOW_SPEC.shape), np.float32)
    for k, (owner, number, image) in enumerate(zip(owners, impressions, images, strict=True)):
        placement = placement_of(owner, number, generator)
        sx, sy = (round(float(v)) for v in placement.shift)
        turn = round(-float(np.degrees(placement.rotation))) % 360
        config = RegistrationConfig(core_at=(128 + sy, 128 + sx))
        pose = Pose(
            row=image.shape[0] // 2, col=image.shape[1] // 2, degrees=turn, strength=0, found=True
        )
        out[k] = preprocess_image(warp_window(image, pose, config), WINDOW_SPEC)
    return out


def pose_truth(
    owners: np.ndarray,
    impressions: np.ndarray,
    images: Sequence[np.ndarray],
    generator: GeneratorConfig,
) -> dict:
    """How far :func:`devices.registration.estimate_pose` lands from the generator's truth.

    Truth: the impression pixel whose master coordinate (``master_coordinates`` of the
    impression's placement) is nearest a master core (within 3 px; a core outside the window
    is skipped); rotation: how far each pose's angle is from its finger's circular mean pose
    angle, against the generator's own rotation spread (N(0, 6 deg) within 15 deg).
    """
    gen = FingerprintGenerator(seed=SEED, config=generator, cache_size=1)
    config = RegistrationConfig(rotate=True)
    errors, spread, found = [], [], 0
    for finger in np.unique(owners):
        master = gen.master(int(finger))
        angles = []
        for k in np.flatnonzero(owners == finger):
            image = images[int(k)]
            pose = estimate_pose(image, config)
            found += pose.found
            if pose.found:
                angles.append(np.radians(pose.degrees))
            placement = placement_of(finger, impressions[k], generator)
            rows, cols = master_coordinates(placement, image.shape, master.centre)
            near = [
                np.hypot(pose.row - r, pose.col - c) if pose.found else np.inf
                for r, c in cores_in_view(master, rows, cols)
            ]
            if near:
                errors.append(min(near))
        if len(angles) > 1:
            mean = np.angle(np.exp(1j * np.asarray(angles)).mean())
            spread.extend(np.abs(np.angle(np.exp(1j * (np.asarray(angles) - mean)))).tolist())
    e, a = np.asarray(errors), np.degrees(np.asarray(spread))
    return {
        "prints": len(images),
        "core_found": found,
        "prints_with_a_core_in_view": int(e.size),
        "core_error_px": {"median": float(np.median(e)), "p90": float(np.percentile(e, 90))},
        "core_within_16px_pct": float(100 * np.mean(e <= 16)),
        "angle_off_finger_mean_deg": {
            "median": float(np.median(a)),
            "p90": float(np.percentile(a, 90)),
        },
    }


def cores_in_view(master: Master, rows: np.ndarray, cols: np.ndarray) -> list[tuple[int, int]]:
    """The impression pixels ``(row, col)`` of the master's cores: for each core, the pixel whose
    master coordinate (``rows``, ``cols`` of :func:`master_coordinates`) is nearest it, if within
    3 px (a core outside the window is skipped)."""
    out = []
    for x, y in master.points.cores:
        d = np.hypot(rows - y, cols - x)
        if d.min() < 3:
            out.append(divmod(int(np.argmin(d)), rows.shape[1]))
    return out


# A pick this far from the other impression's, in the master, is "misregistered" (as
# pretrain.data.stats_pairs.MISREGISTERED_PX: a quarter of the window); a pick within HIT_PX of
# a master core found it.
MISREGISTERED_PX = 64
HIT_PX = 24
DISTANCE_BINS_PX = (0, 16, 32, 64)


def _pick_and_cause(
    gray: np.ndarray, pose: Pose, master: Master, placement: Placement
) -> tuple[tuple[float, float], str]:
    """Where the device's core registration (``pose``) lands in the master (row, col), and why
    there."""
    rows, cols = master_coordinates(placement, gray.shape, master.centre)
    h, w = gray.shape
    if 0 <= pose.row < h and 0 <= pose.col < w:
        pick = (float(rows[pose.row, pose.col]), float(cols[pose.row, pose.col]))
    else:  # a learned anchor outside the print: the placement's rigid part
        pick = rigid_to_master(placement, gray.shape, master.centre, pose.row, pose.col)
    fg = foreground_blocks(gray, FOREGROUND_SPEC)
    in_contact = [
        (r, c)
        for r, c in cores_in_view(master, rows, cols)
        if fg[min(r // BLOCK, fg.shape[0] - 1), min(c // BLOCK, fg.shape[1] - 1)]
    ]
    if not len(master.points.cores):
        return pick, "no_core"  # an arch
    if not in_contact:
        return pick, "core_not_in_contact"
    if not pose.found:
        return pick, "weak"
    near = min(np.hypot(pose.row - r, pose.col - c) for r, c in in_contact)
    return pick, "hit" if near <= HIT_PX else "wrong_pick"


def registration_pairs(
    owners: np.ndarray,
    impressions: np.ndarray,
    images: Sequence[np.ndarray],
    generator: GeneratorConfig,
    model: Path = BACKBONE,
    pose_of: Callable[[np.ndarray], Pose] = estimate_pose,
) -> dict[str, Any]:
    """Which genuine pairs the core registration lands on different points of the finger, why,
    and what that costs the backbone (dev prints: the generator's truth is known).

    Per print, the core the device registers on (``CORE_SPEC``'s :func:`estimate_pose`, or
    ``pose_of``, e.g. the learned anchor's :func:`devices.localiser.anchor_pose`) is
    mapped into its master through the impression's placement, with a cause: ``hit`` (within
    ``HIT_PX`` of a master core in contact), ``wrong_pick`` (a core in contact, the pick
    elsewhere), ``weak`` (a core in contact, no response strong enough: the foreground centre
    was used), ``core_not_in_contact`` (none in the window's foreground), ``no_core`` (an arch).
    Per genuine pair of the protocol: the distance between its two picks in the master, binned;
    per bin its share of the pairs and the backbone's FNMR at FMR 1% (cosine of the
    core-registered inputs, the threshold from the protocol's impostor pairs). ``lost_pct``:
    the share of all genuine pairs a bin loses (the bins' sum is the FNMR). For the pairs over
    ``MISREGISTERED_PX``, the share of each pair of causes.
    """
    gen = FingerprintGenerator(seed=SEED, config=generator, cache_size=1)
    picks, causes = [], []
    inputs = np.empty((len(images), *WINDOW_SPEC.shape), np.float32)
    for k, (owner, number, image) in enumerate(zip(owners, impressions, images, strict=True)):
        gray = to_gray_u8(image)
        pose = pose_of(gray)  # once: the window below is the spec's input from it
        inputs[k] = preprocess_image(
            warp_window(gray, pose, framed(CORE_SPEC.crop_size)), WINDOW_SPEC
        )
        placement = placement_of(owner, number, generator)
        pick, cause = _pick_and_cause(gray, pose, gen.master(int(owner)), placement)
        picks.append(pick)
        causes.append(cause)
    where = np.asarray(picks)
    scorer = features_scorer(backbone_features(model))(inputs)
    pairs = fvc_pairs(owners, impressions)
    genuine = scorer(pairs.genuine[:, 0], pairs.genuine[:, 1])
    threshold = threshold_for_far(scorer(pairs.impostor[:, 0], pairs.impostor[:, 1]), 0.01)
    distance = np.hypot(*(where[pairs.genuine[:, 0]] - where[pairs.genuine[:, 1]]).T)
    rejected = genuine < threshold
    bins: dict[str, Any] = {}
    edges = (*DISTANCE_BINS_PX, np.inf)
    for lo, hi in itertools.pairwise(edges):
        inside = (distance >= lo) & (distance < hi)
        name = f"{lo}-{hi:g}px" if np.isfinite(hi) else f">={lo}px"
        bins[name] = {
            "share_pct": 100 * float(inside.mean()),
            "fnmr_pct": 100 * float(rejected[inside].mean()) if inside.any() else None,
            "lost_pct": 100 * float((rejected & inside).mean()),
        }
    far = distance > MISREGISTERED_PX
    both = collections.Counter(
        "+".join(sorted((causes[i], causes[j]))) for i, j in pairs.genuine[far]
    )
    return {
        "prints": dict(collections.Counter(causes)),
        "genuine_pairs": len(genuine),
        "fnmr_at_fmr1_pct": 100 * float(rejected.mean()),
        "distance_bins": bins,
        "misregistered_pct": 100 * float(far.mean()),
        "misregistered_causes_pct": {
            k: 100 * v / max(1, int(far.sum())) for k, v in both.most_common()
        },
    }


def training_prints(workdir: Path, identities: range) -> tuple[list[np.ndarray], np.ndarray]:
    """Raw prints of backbone training identities (8 each) and labels 0.., cached."""
    path = workdir / f"train_seed{SEED}_{identities.start}-{identities.stop}.npz"
    if path.exists():
        data = np.load(path)
        return list(data["images"]), data["labels"]
    gen = FingerprintGenerator(seed=SEED, cache_size=1)
    images, owners = gen.impressions(identities, DEV_IMPRESSIONS, progress=True)
    labels = (owners - identities.start).astype(np.int32)
    np.savez(path, images=images, labels=labels)
    return list(images), labels


def finetune(variant: str, args: argparse.Namespace) -> Path:
    """The committed backbone trained on for ``--finetune-steps`` more CosFace steps (the
    config's metric stage: its learning rate, margin, augmentation) on ``variant``'s inputs of
    training identities 300.. (validation: the dev identities, same inputs); returns the model
    directory. Equal data, seed and steps for every variant: only the input differs."""
    workdir = Path(args.workdir)
    images, labels = training_prints(workdir, range(300, 300 + args.finetune_identities))
    dev, owners, _ = dev_prints(workdir)
    prepare = VARIANTS[variant]
    train = ArrayDataset(prepare(images), labels, f"train[{variant}]")
    val = ArrayDataset(prepare(dev), owners.astype(np.int32), f"dev[{variant}]")
    path = ROOT / "pretrain" / "configs" / "embed_fingerprint.py"
    run = pretrain.load_run(path, [])
    if not isinstance(run, pretrain.StagedConfig):
        raise SystemExit(f"{path} has no stages; --finetune-steps trains its 'metric' stage.")
    stage = dict(run.stages)["metric"]
    per_epoch = len(train) // stage.batch_size
    config = dataclasses.replace(
        stage,
        init_from=str(BACKBONE),
        epochs=max(1, -(-args.finetune_steps // per_epoch)),
        plateau_patience=max(stage.plateau_patience, 2),
    )
    out = workdir / f"finetune_{variant}_{args.finetune_steps}"
    if out.exists():
        shutil.rmtree(out)
    return pretrain.fit(config, out, splits=Splits(train, val, val)).model_dir


def raw_prints(images: Sequence[np.ndarray]) -> np.ndarray:
    """The raw prints as they are, one object per print (an FVC set's sizes may differ): the
    samples :func:`correlation_scorer` reads."""
    out = np.empty(len(images), dtype=object)
    for k, image in enumerate(images):
        out[k] = image
    return out


def correlation_scorer(raw: Sequence[np.ndarray] | np.ndarray) -> Scorer:
    """:func:`pretrain.data.aligned_correlation` of two raw prints (rotations +-15 deg, shifts
    +-40 input px): a slow pixel-level yardstick, not a device matcher."""
    return lambda i, j: np.array(
        [aligned_correlation(raw[a], raw[b]) for a, b in zip(i, j, strict=True)]
    )


def dev_generator(path: str | None) -> tuple[str | None, GeneratorConfig]:
    """``(stage name, generator)`` of a generator config (``--dev-config``, read as
    ``bench_fingerprint_generator.py`` reads it), or ``(None, the default generator)``."""
    if path is None:
        return None, GeneratorConfig()
    config = load_config(Path(path))
    return names(config)[1], GeneratorConfig.from_dict(config.GENERATOR)


def run(args: argparse.Namespace) -> dict[str, Any]:
    name, gen_config = dev_generator(args.dev_config)
    images, owners, impressions = dev_prints(Path(args.workdir), name, gen_config)
    keep = len(images) if args.dev_identities is None else args.dev_identities * DEV_IMPRESSIONS
    images, owners, impressions = images[:keep], owners[:keep], impressions[:keep]
    suffix = "" if args.dev_identities is None else f"@dev{args.dev_identities}"
    if name is not None:
        suffix += f"@{name}"
    if args.anchor:
        suffix += "@anchor"
    if args.tag:
        suffix += f"@{args.tag}"
    if args.dev_scale != 1.0:  # a sensor of another resolution, simulated on the dev prints
        images = [rescaled(to_gray_u8(image), args.dev_scale) for image in images]
        suffix += f"@scale{args.dev_scale:g}"
    white_raw = whitening_prints(Path(args.workdir))
    rows: dict[str, Any] = {}
    if args.pose_truth:
        rows[f"pose_truth{suffix}"] = pose_truth(owners, impressions, images, gen_config)
        rows[f"pose_truth{suffix}"]["command"] = _command(args, "--pose-truth")
        print(json.dumps(rows[f"pose_truth{suffix}"], indent=1), flush=True)
    if args.registration_pairs:
        pose_of = anchor_pose if args.anchor else estimate_pose
        found = registration_pairs(owners, impressions, images, gen_config, pose_of=pose_of)
        found["command"] = _command(args, "--registration-pairs")
        rows[f"registration_pairs{suffix}"] = found
        print(json.dumps(found, indent=1), flush=True)
    if args.period_spread:
        spread = {"synthetic_dev": period_spread(images, owners)}
        for name in fvc_sets():
            fvc = read_fvc(name)
            spread[name] = period_spread(list(fvc.images), np.asarray(fvc.labels))
        rows["period_spread"] = spread
        print(json.dumps(spread, indent=1), flush=True)
    if "raw" in args.variant:
        row: dict[str, Any] = {"dev": set_report(correlation_scorer(images), owners, impressions)}
        if not args.no_fvc:
            row.update(
                protocol_figures(
                    evaluate_fvc(correlation_scorer, prepare=raw_prints, progress=False)
                )
            )
        row["command"] = _command(args, "--variant raw")
        rows[f"raw/correlation{suffix}"] = row
        print(f"raw/correlation: dev EER {row['dev']['eer_pct']:.2f}%", flush=True)
    for variant in (v for v in args.variant if v != "raw"):
        oracle = variant == "oracle"
        prepare = VARIANTS["core" if oracle else variant]
        started = time.perf_counter()
        samples = (
            oracle_windows(owners, impressions, images, gen_config) if oracle else prepare(images)
        )
        prep_s = time.perf_counter() - started
        white = prepare(white_raw)
        if white.ndim == 5:
            white = white[:, 0]
        model = finetune(variant, args) if args.finetune_steps else BACKBONE
        tuned = f"+finetune{args.finetune_steps}" if args.finetune_steps else ""
        found = matchers(args.matcher, views=samples.ndim == 5, whitening=white, model=model)
        for name, make in found.items():
            row = {"dev": set_report(make(samples), owners, impressions)}
            row["dev"]["prepare_ms_per_print"] = 1000 * prep_s / len(images)
            if not (args.no_fvc or oracle):
                row.update(protocol_figures(evaluate_fvc(make, prepare=prepare, progress=False)))
            row["command"] = _command(args, f"--variant {variant}", f"--matcher {name}")
            rows[f"{variant}/{name}{suffix}{tuned}"] = row
            print(f"{variant}/{name}: dev EER {row['dev']['eer_pct']:.2f}%", flush=True)
    return rows


def _command(args: argparse.Namespace, *flags: str) -> str:
    """The command that makes a row: ``flags`` (what the row is), then the run's options."""
    out = " ".join(("python notebooks/bench/bench_fingerprint_ablation.py", *flags))
    if args.finetune_steps:
        out += f" --finetune-steps {args.finetune_steps}"
        out += f" --finetune-identities {args.finetune_identities}"
    if args.dev_identities is not None:
        out += f" --dev-identities {args.dev_identities}"
    if args.dev_scale != 1.0:
        out += f" --dev-scale {args.dev_scale:g}"
    if args.dev_config:
        out += f" --dev-config {args.dev_config}"
    if args.anchor:
        out += " --anchor"
    if args.tag:
        out += f" --tag {args.tag}"
    return out + (" --no-fvc" if args.no_fvc else "")


def table(rows: dict[str, Any]) -> None:
    out = []
    for key, row in rows.items():
        if "dev" not in row:
            continue
        fvc = row.get("fvc_protocol", {})
        per_set = [fvc.get(s, {}).get("eer_pct") for s in sorted(fvc)]
        out.append(
            (
                key,
                row["dev"]["eer_pct"],
                row["dev"]["fnmr_at_fmr1_pct"],
                row.get("fvc_protocol_mean_eer_pct"),
                " ".join(f"{v:.1f}" for v in per_set if v is not None),
            )
        )
    print_table(("variant/matcher", "dev EER %", "dev FNMR@1%", "FVC mean EER %", "per set"), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--variant",
        action="append",
        choices=[*sorted(VARIANTS), "raw", "oracle"],
        help="raw: the aligned-correlation yardstick on the raw prints (its only matcher); "
        "oracle: dev prints registered by the generator's own placement (no FVC rows)",
    )
    parser.add_argument("--dev-identities", type=int, help="first N dev identities only")
    parser.add_argument("--finetune-steps", type=int, default=0, help="train the backbone on")
    parser.add_argument("--finetune-identities", type=int, default=200)
    parser.add_argument("--pose-truth", action="store_true", help="registration vs generator truth")
    parser.add_argument(
        "--registration-pairs",
        action="store_true",
        help="genuine pairs registered on different points of the finger: why, and the cost",
    )
    parser.add_argument(
        "--anchor",
        action="store_true",
        help="--registration-pairs by the learned anchor (devices/localiser.npz), rows '@anchor'",
    )
    parser.add_argument(
        "--matcher", action="append", choices=["backbone", "backbone_whitened", *sorted(BASELINES)]
    )
    parser.add_argument(
        "--dev-scale",
        type=float,
        default=1.0,
        help="resize the dev prints by this factor first (a sensor of another resolution)",
    )
    parser.add_argument(
        "--period-spread",
        action="store_true",
        help="ridge period per print: median, spread within and between fingers (dev and FVC)",
    )
    parser.add_argument(
        "--dev-config",
        help="draw the dev prints with this generator config's GENERATOR "
        "(e.g. pretrain/configs/embed_fingerprint_mixed.py); rows get '@<its stage>'",
    )
    parser.add_argument(
        "--tag", help="a suffix for the rows' names ('@<tag>'), e.g. the backbone's commit"
    )
    parser.add_argument("--no-fvc", action="store_true", help="dev rows only")
    parser.add_argument("--workdir", default="/work/runs/prints_ablation")
    args = parser.parse_args()
    diagnostic = args.pose_truth or args.period_spread or args.registration_pairs
    args.variant = args.variant or ([] if diagnostic else list(VARIANTS))
    args.matcher = args.matcher or ["lbp", "hog", "backbone", "backbone_whitened"]
    started = time.perf_counter()
    rows = run(args)
    previous = RESULTS / "fingerprint_ablation.json"
    merged = json.loads(previous.read_text())["rows"] if previous.exists() else {}
    merged.update(rows)
    command = " ".join(shlex.quote(a) for a in sys.argv)
    write_results(
        "fingerprint_ablation",
        {"rows": merged, "wall_s": time.perf_counter() - started},
        command=command,
    )
    table(merged)


if __name__ == "__main__":
    run_main(main)
