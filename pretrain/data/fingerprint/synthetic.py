"""Synthetic fingerprints: master prints per identity, impressions per master, as a dataset.

Everything is a pure function of ``(seed, identity)`` for a master and ``(seed, identity,
impression)`` for an impression, so any identity can be generated alone, in any order, in any
process, and batches are just loops over the same functions.

Example:
  >>> gen = FingerprintGenerator(seed=0)
  >>> image = gen.impression(identity=12, impression=3)   # uint8 (256, 256), 500 dpi
  >>> data = synthetic_fingerprints(range(100), impressions=8, seed=0)  # (800, 128, 128, 1)

References:
  Cappelli, Maio, Maltoni, "Synthetic fingerprint-database generation", ICPR 2002.
  Cappelli, "Synthetic fingerprint generation", in Handbook of Fingerprint Recognition, 2nd ed.,
  Springer 2009, ch. 6.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from devices.preprocess import FINGERPRINT_SPEC, PreprocessSpec, preprocess_image
from pretrain.data.dataset import ArrayDataset
from pretrain.data.fingerprint.creases import FIELDS as CREASE_FIELDS
from pretrain.data.fingerprint.creases import sample_creases
from pretrain.data.fingerprint.flow import FITTED_CLASSES, FLOWS, fitted_flow, load_table
from pretrain.data.fingerprint.frequency import PERIOD_RANGE, period_map, smooth_noise
from pretrain.data.fingerprint.impressions import (
    PARTIAL_PROB,
    PARTIAL_REACH,
    SHIFT_MAX,
    SHIFT_SD,
    Placement,
    render,
    sample_placement,
)
from pretrain.data.fingerprint.orientation import (
    SingularPoints,
    orientation_field,
    sample_class,
    sample_singular_points,
)
from pretrain.data.fingerprint.ridges import grow_ridges
from pretrain.data.fingerprint.silhouette import Silhouette, sample_silhouette, silhouette_radius

DPI = 500
# Knots a side of the orientation field's random turn: over the 384x320 master, one every
# ~70 px (7 ridges), slower than the flow around a core changes, faster than the finger's shape.
ORIENTATION_NOISE_CELLS = 5
NO_CREASES = np.zeros((0, len(CREASE_FIELDS)))


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Sizes and growth settings; the defaults are the ones the backbone is trained on.

    Attributes:
      master_shape: ``(h, w)`` of the master canvas at 500 dpi (holds a 12-18 mm fingertip).
      impression_shape: ``(h, w)`` of an impression at 500 dpi: 256x256 is the window the
        fingerprint preprocessing crops (13 mm), then halves to the 128x128 model input.
      growth_step: the ridge growth grid is this many 500 dpi pixels per cell.
      iterations: Gabor growth iterations.
      seed_spacing: one growth seed per ``seed_spacing^2`` pixels of silhouette.
      shift_sd: spread (px per axis) of where the finger is placed in an impression.
      shift_max: largest placement offset (px per axis).
      partial_prob: share of impressions where one side of the finger does not touch.
      partial_reach: ``(low, high)`` px from the window centre to that side's edge.
      orientation_noise: standard deviation (radians) of a smooth random turn added to the
        master's orientation field (:data:`ORIENTATION_NOISE_CELLS` knots a side). The
        zero-pole field's singular points are perfectly symmetric, so the device's core filter
        answers them more strongly than real cores (``data stats``' ``core_strength``); the
        turn keeps every singular point where it is and bends the flow around it. 0 (the
        default) draws the prints of before the setting existed.
      orientation_noise_share: the share of masters (identities) whose flow is bent; the others
        are drawn exactly as with ``orientation_noise`` 0. 1 (the default) bends every master.
      period_range: ``(low, high)`` px at 500 dpi: each master's mean ridge period is drawn
        uniformly from it (:data:`pretrain.data.fingerprint.frequency.PERIOD_RANGE` by
        default); local periods stay within 6-14 px.
      finger_scale: the fingertip's size against the default silhouette's (12-14 mm wide,
        12-18 mm tall); ``master_shape`` must hold it. The FVC sensor sets' prints cover more
        finger than the default one touches (``data stats``' ``foreground_px``, median 81k px
        over the five sets against 57k for the default fingers in a 400x400 impression): 1.25
        matches them in 448x448 impressions. 1 (the default) draws the prints of before.
      creases: the mean number of skin creases per finger (Poisson;
        :mod:`~pretrain.data.fingerprint.creases`): white lines across the ridges at the same
        place of the finger in every impression. Drawn on the master's own stream, so 0 (the
        default) draws the prints of before.
      flow: ``"zero_pole"`` (the default) corrects each singular point's zero-pole field by a
        small random turn of the identity; ``"sfinge"`` gives each loop and whorl the singular
        points and corrections of one fitted to SFinGe's prints
        (:mod:`~pretrain.data.fingerprint.flow`), drawn on its own stream, so the master's
        other draws stay those of the default; ``"sfinge_blend"`` a random blend of two such.
      flow_share: with a fitted ``flow``, the share of masters (identities) that take a fitted
        flow; the others are drawn exactly as with ``"zero_pole"``. 1 (the default) fits every
        loop and whorl.
      loop_delta_scale: ``(x, y)`` factors on a fitted loop's delta offset from its core. The
        FVC sensor sets' one-core prints run steeper below the core than the fitted flows draw
        them (:class:`pretrain.data.stats.PrintStats` medians: 0.42 of the ridges there within
        30 deg of vertical, the nearest delta 109 px away at 56 deg below the horizontal; a
        blend of the table's flows: 0.24, 130 px, 57 deg). ``(0.8, 1.3)`` lies closest to
        them (0.41, 139 px, 62 deg; ``notebooks/bench/bench_flow_stats.py``). ``(1, 1)`` (the
        default) keeps the table's.
      twin_share: the share of identity pairs ``(2k, 2k + 1)`` that are flow twins: the odd
        identity takes its even partner's fingertip, class, singular points, flow and period
        map, and grows its own ridges from its own seeds, so the two differ in ridge detail
        (minutiae) only. Each master alone is drawn as without the setting (the even one is
        unchanged, the odd one is another draw of the same generator); only pairs of fingers
        change. Real fingers share much of their flow (the FVC cone), which the backbone
        should not read as identity. 0 (the default) draws the prints of before.
    """

    master_shape: tuple[int, int] = (384, 320)
    impression_shape: tuple[int, int] = (256, 256)
    growth_step: int = 2
    iterations: int = 12
    seed_spacing: float = 34.0
    shift_sd: float = SHIFT_SD
    shift_max: float = SHIFT_MAX
    partial_prob: float = PARTIAL_PROB
    partial_reach: tuple[float, float] = PARTIAL_REACH
    orientation_noise: float = 0.0
    orientation_noise_share: float = 1.0
    period_range: tuple[float, float] = PERIOD_RANGE
    finger_scale: float = 1.0
    creases: float = 0.0
    flow: str = "zero_pole"
    flow_share: float = 1.0
    loop_delta_scale: tuple[float, float] = (1.0, 1.0)
    twin_share: float = 0.0

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> GeneratorConfig:
        """A config from JSON-able options (lists for the shapes); unknown names are refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"unknown generator option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}."
            )
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in options.items()
        }
        return cls(**values)

    def __post_init__(self) -> None:
        for name in ("master_shape", "impression_shape"):
            h, w = getattr(self, name)
            if h < 64 or w < 64:
                raise ValueError(f"{name} must be at least 64x64, got {h}x{w}.")
        if self.master_shape[0] % self.growth_step or self.master_shape[1] % self.growth_step:
            raise ValueError("master_shape must be a multiple of growth_step.")
        if self.iterations < 1 or self.seed_spacing <= 0:
            raise ValueError("iterations and seed_spacing must be positive.")
        if not (self.shift_sd >= 0 and self.shift_max >= 0):
            raise ValueError(
                f"shift_sd and shift_max must be >= 0, got {self.shift_sd}, {self.shift_max}."
            )
        if not 0 <= self.partial_prob <= 1:
            raise ValueError(f"partial_prob must be in [0, 1], got {self.partial_prob}.")
        reach = self.partial_reach
        if len(reach) != 2 or not 0 <= reach[0] <= reach[1]:
            raise ValueError(f"partial_reach must be (low, high), 0 <= low <= high; got {reach}.")
        if not 0 <= self.orientation_noise <= 1:
            raise ValueError(
                f"orientation_noise must be in [0, 1] radians, got {self.orientation_noise}."
            )
        if not 0 <= self.orientation_noise_share <= 1:
            raise ValueError(
                f"orientation_noise_share must be in [0, 1], got {self.orientation_noise_share}."
            )
        if not 0.5 <= self.finger_scale <= 2.0:
            raise ValueError(f"finger_scale must be in [0.5, 2], got {self.finger_scale}.")
        if not 0 <= self.creases <= 20:
            raise ValueError(f"creases must be in [0, 20] per finger, got {self.creases}.")
        if self.flow not in FLOWS:
            raise ValueError(f"flow must be one of {', '.join(FLOWS)}; got {self.flow!r}.")
        if not 0 <= self.flow_share <= 1:
            raise ValueError(f"flow_share must be in [0, 1], got {self.flow_share}.")
        if not 0 <= self.twin_share <= 1:
            raise ValueError(f"twin_share must be in [0, 1], got {self.twin_share}.")
        scale = self.loop_delta_scale
        if len(scale) != 2 or not all(0.25 <= v <= 4.0 for v in scale):
            raise ValueError(f"loop_delta_scale must be (x, y), each in [0.25, 4]; got {scale}.")
        period = self.period_range
        if len(period) != 2 or not 6.0 <= period[0] <= period[1] <= 14.0:
            raise ValueError(
                f"period_range must be (low, high), 6 <= low <= high <= 14 px; got {period}."
            )


class Master(NamedTuple):
    """One identity's master print.

    Attributes:
      ridges: float32 ``master_shape`` band-limited ridge field, positive on ridges.
      silhouette: the fingertip outline.
      points: class, singular points and orientation corrections.
      theta: float32 ridge orientation on the growth grid (radians, image axes).
      period: float32 ridge period on the growth grid, in 500 dpi pixels.
      centre: ``(x, y)`` impression windows are centred on (before their random shift).
      creases: float64 ``(k, 7)`` skin creases in master pixels
        (:func:`~pretrain.data.fingerprint.creases.sample_creases`; none by default).
    """

    ridges: np.ndarray
    silhouette: Silhouette
    points: SingularPoints
    theta: np.ndarray
    period: np.ndarray
    centre: tuple[float, float]
    creases: np.ndarray = NO_CREASES

    @property
    def fp_class(self) -> str:
        return self.points.fp_class

    def image(self) -> np.ndarray:
        """The master as a clean uint8 picture: black ridges, white valleys and background."""
        h, w = self.ridges.shape
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        inside = silhouette_radius(self.silhouette, rows, cols) <= 1.0
        ink = 1.0 / (1.0 + np.exp(-np.clip(5.0 * self.ridges, -30, 30))) * inside
        return np.rint(255 * (1 - ink)).astype(np.uint8)


def _rng(seed: int, *key: int) -> np.random.Generator:
    if seed < 0 or any(k < 0 for k in key):
        raise ValueError(f"seed, identity and impression must be >= 0, got {(seed, *key)}.")
    return np.random.default_rng([seed, *key])


def _chosen(seed: int, identity: int, share: float, stream: int) -> bool:
    """Whether ``identity`` is among a setting's ``share`` of masters, drawn on the setting's
    own ``stream`` (a share of 1 draws every master as before the share existed)."""
    return share >= 1 or bool(_rng(seed, identity, 0, stream).random() < share)


def flow_identity(identity: int, *, seed: int, config: GeneratorConfig = GeneratorConfig()) -> int:
    """The identity whose flow ``identity``'s master takes: its even partner when the pair is
    among ``config.twin_share``'s flow twins, else itself."""
    partner = identity - identity % 2
    if config.twin_share <= 0 or partner == identity:
        return identity
    return partner if _chosen(seed, partner, config.twin_share, 6) else identity


def generate_master(
    identity: int, *, seed: int, config: GeneratorConfig = GeneratorConfig()
) -> Master:
    """The master print of ``identity`` (a pure function of ``seed`` and ``identity``).

    Steps (SFinGe): silhouette; class with natural frequencies; singular points; orientation
    field (zero-pole model with Vizcaya-Gerhardt correction); ridge period map; ridge growth by
    iterative space-variant Gabor filtering from random seeds; interpolation to 500 dpi.
    """
    # A flow twin draws everything but its ridge seeds (and creases) as its partner does.
    source = flow_identity(identity, seed=seed, config=config)
    rng = _rng(seed, source, 0)
    step = config.growth_step
    silhouette = sample_silhouette(rng, config.master_shape, config.finger_scale)
    points = sample_singular_points(rng, sample_class(rng), silhouette)
    if (
        config.flow != "zero_pole"
        and points.fp_class in FITTED_CLASSES
        and _chosen(seed, source, config.flow_share, 5)
    ):
        blend = config.flow == "sfinge_blend"
        points = fitted_flow(
            _rng(seed, source, 0, 4),
            points,
            load_table(),
            blend=blend,
            delta_scale=config.loop_delta_scale,
        )
    gh, gw = config.master_shape[0] // step, config.master_shape[1] // step
    # Cell (i, j) covers pixels [i*step, (i+1)*step): its centre is at i*step + (step-1)/2.
    rows = np.repeat((np.arange(gh) * step + (step - 1) / 2)[:, None], gw, axis=1)
    cols = np.repeat((np.arange(gw) * step + (step - 1) / 2)[None, :], gh, axis=0)
    theta = orientation_field(points, rows, cols).astype(np.float32)
    if config.orientation_noise > 0 and _chosen(seed, source, config.orientation_noise_share, 2):
        # Its own stream: the master's other draws stay those of the setting's absence.
        bend = smooth_noise(_rng(seed, source, 0, 1), theta.shape, ORIENTATION_NOISE_CELLS)
        theta = (theta + config.orientation_noise * bend).astype(np.float32)
    period = period_map(rng, points, rows, cols, config.period_range).astype(np.float32)
    inside = np.flatnonzero(silhouette_radius(silhouette, rows, cols).ravel() < 1.05)
    area = inside.size * step * step
    count = max(1, min(inside.size, round(area / config.seed_spacing**2)))
    seeds = np.zeros(theta.shape, np.float32)
    seed_rng = rng if source == identity else _rng(seed, identity, 0, 7)
    seeds.ravel()[seed_rng.choice(inside, count, replace=False)] = seed_rng.choice(
        [-4.0, 4.0], count
    )
    grown = grow_ridges(theta, period / step, seeds, iterations=config.iterations)
    ridges = ndimage.zoom(grown, step, order=3, grid_mode=True, mode="grid-mirror")
    if len(points.cores):
        cx, cy = points.cores.mean(axis=0)
        centre = (0.5 * (cx + silhouette.cx), cy + 30.0)
    else:
        centre = (silhouette.cx, silhouette.cy)
    creases = NO_CREASES
    if config.creases > 0:  # its own stream, like the bend's
        crease_rng = _rng(seed, identity, 0, 3)
        creases = sample_creases(crease_rng, silhouette, config.creases, config.finger_scale)
    return Master(ridges.astype(np.float32), silhouette, points, theta, period, centre, creases)


def generate_impression(
    identity: int,
    impression: int,
    *,
    seed: int,
    config: GeneratorConfig = GeneratorConfig(),
    master: Master | None = None,
) -> np.ndarray:
    """Impression ``impression`` of ``identity``: uint8 ``config.impression_shape`` at 500 dpi.

    Args:
      identity: which finger.
      impression: which acquisition of it.
      seed: the generator seed.
      config: sizes and growth settings.
      master: the identity's master if already generated (must match ``seed`` and ``identity``).
    """
    if master is None:
        master = generate_master(identity, seed=seed, config=config)
    rng = _rng(seed, identity, 1 + impression)
    return render(
        master.ridges,
        master.silhouette,
        master.centre,
        config.impression_shape,
        rng=rng,
        shift_sd=config.shift_sd,
        shift_max=config.shift_max,
        partial_prob=config.partial_prob,
        partial_reach=config.partial_reach,
        creases=master.creases,
    )


def impression_placement(
    identity: int, impression: int, *, seed: int, config: GeneratorConfig = GeneratorConfig()
) -> Placement:
    """Where :func:`generate_impression` places impression ``impression`` of ``identity``: the
    first draw of the impression's stream (for truth-based diagnostics and training targets)."""
    rng = _rng(seed, identity, 1 + impression)
    shape = config.impression_shape
    return sample_placement(rng, shape, shift_sd=config.shift_sd, shift_max=config.shift_max)


class FingerprintGenerator:
    """Masters and impressions of one seed, keeping recently used masters in an LRU cache.

    Args:
      seed: the generator seed (keyword-only).
      config: sizes and growth settings.
      cache_size: masters kept in memory (~0.5 MB each at the default size).
    """

    def __init__(
        self, *, seed: int, config: GeneratorConfig = GeneratorConfig(), cache_size: int = 64
    ) -> None:
        self.seed = seed
        self.config = config
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[int, Master] = collections.OrderedDict()

    def master(self, identity: int) -> Master:
        if identity in self._cache:
            self._cache.move_to_end(identity)
            return self._cache[identity]
        master = generate_master(identity, seed=self.seed, config=self.config)
        if self.cache_size > 0:
            self._cache[identity] = master
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return master

    def impression(self, identity: int, impression: int) -> np.ndarray:
        return generate_impression(
            identity, impression, seed=self.seed, config=self.config, master=self.master(identity)
        )

    def impressions(
        self, identities: Iterable[int], impressions: int, *, progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """uint8 ``(n * impressions, h, w)`` images and int64 identity of each, identity-major."""
        ids = list(identities)
        images = np.empty((len(ids) * impressions, *self.config.impression_shape), np.uint8)
        owners = np.repeat(np.asarray(ids, np.int64), impressions)
        bar = tqdm(total=len(images), desc="synthetic prints", unit="print", disable=not progress)
        for i, identity in enumerate(ids):
            for k in range(impressions):
                images[i * impressions + k] = self.impression(identity, k)
                bar.update()
        bar.close()
        return images, owners


def synthetic_fingerprints(
    identities: Iterable[int],
    impressions: int,
    *,
    seed: int,
    spec: PreprocessSpec = FINGERPRINT_SPEC,
    config: GeneratorConfig = GeneratorConfig(),
    progress: bool = False,
) -> ArrayDataset:
    """A labelled dataset of synthetic prints, preprocessed for the model.

    Args:
      identities: identity numbers to generate (labels are their positions in this list).
      impressions: impressions per identity.
      seed: generator seed.
      spec: preprocessing (default: the fingerprint spec, 128x128x1).
      config: generator sizes and settings.
      progress: show a progress bar.

    Returns:
      ``ArrayDataset`` of ``(n * impressions, *spec.shape)`` float32 images.
    """
    gen = FingerprintGenerator(seed=seed, config=config, cache_size=1)
    raw, _ = gen.impressions(identities, impressions, progress=progress)
    n = len(raw) // impressions if impressions else 0
    images = (
        np.stack([preprocess_image(image, spec) for image in raw])
        if len(raw)
        else np.zeros((0, *spec.shape), np.float32)
    )
    labels = np.repeat(np.arange(n, dtype=np.int32), impressions)
    return ArrayDataset(images, labels, f"synthetic-seed{seed}")
