"""Identity datasets for embedding pretraining, registered by name with the train package.

``synthetic_fingerprints``: SFinGe-style prints (:mod:`pretrain.data.fingerprint`), generated in
chunks of identities and cached on disk. Identities are laid out so that the held-out ones never
move: validation identities first, then the test (evaluation) identities, then the training
identities, so stages with different training sets share the same held-out people.

``orl_faces``: ORL subjects; pretraining reads only the subjects it is given (s1-s20 by
default): s21-s40 are the evaluation people and are never loaded here.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import math
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

import devices.localiser
import devices.preprocess
import devices.registration
import pretrain.data.minutiae
import pretrain.data.minutiae_maps
import pretrain.data.stats
from devices.localiser import ANCHOR_SPEC, ANCHOR_VIEWS_SPEC
from devices.preprocess import FACE_SPEC, FINGERPRINT_SPEC, PreprocessSpec, preprocess_batch_views
from devices.registration import CORE_SPEC
from pretrain.config import ConfigError
from pretrain.data import (
    ArrayDataset,
    FingerprintGenerator,
    GeneratorConfig,
    Later,
    load_orl,
    synthetic_fingerprints,
)
from pretrain.data import fingerprint as _fingerprint
from pretrain.data.faces import SUBJECTS
from pretrain.data.fingerprint import flow as _flow
from pretrain.embedding.cache import code_digest, lookup, store
from pretrain.train.datasets import Splits, register_dataset

DEFAULT_GENERATOR = GeneratorConfig()

CHUNK = 50  # identities per cache entry: a killed generation loses at most one chunk
# Entries hold at least this many impressions per identity; fewer are sliced from them (each
# impression is a pure function of (seed, identity, impression)), so stages that use different
# counts of the same identities share the entries.
STORED_IMPRESSIONS = 8
CACHED = ("prints", "minutiae_maps")  # what synthetic_prints draws and caches


# The fingerprint crops a dataset may ask for: the foreground-centred window, the window
# registered on the core (``devices.registration``) or on the learned anchor
# (``devices.localiser``); each is the spec the saved model carries.
# ``"anchor_views"`` trains on the same windows as ``"anchor"``; its spec adds the second
# registration hypothesis a matcher scores (:data:`devices.localiser.ANCHOR_VIEWS_SPEC`).
FINGERPRINT_CROPS = {
    "foreground": FINGERPRINT_SPEC,
    "core": CORE_SPEC,
    "anchor": ANCHOR_SPEC,
    "anchor_views": ANCHOR_VIEWS_SPEC,
}


def fingerprint_spec(crop: str = "foreground", window: int = 0) -> PreprocessSpec:
    """The model-input spec of synthetic and real prints for the dataset options ``crop`` and
    ``window``: a square window of ``window`` source pixels in place of the crop's own (0: the
    crop's, 256 x 256), cut to the model input at the crop's scale (a 320-px window is a
    160 x 160 input at 500 dpi's half)."""
    if crop not in FINGERPRINT_CROPS:
        raise ConfigError(f"crop must be one of {sorted(FINGERPRINT_CROPS)}, got {crop!r}.")
    spec = FINGERPRINT_CROPS[crop]
    if not window:
        return spec
    scale = spec.input_size[0] / spec.crop_size[0]
    if window < 64 or (window * scale) % 1:
        raise ConfigError(
            f"window must be 0 (the crop's) or >= 64 source px that the crop's scale "
            f"{scale:g} cuts to whole pixels, got {window}."
        )
    size = int(window * scale)
    return dataclasses.replace(spec, crop_size=(window, window), input_size=(size, size))


def print_spec(options: Mapping[str, Any]) -> PreprocessSpec:
    """The model-input spec of a ``synthetic_fingerprints`` run's dataset ``options`` (its
    ``crop`` and ``window``; :func:`fingerprint_spec`): what its prints were cut as, which the
    evaluation, the export and the device repeat."""
    return fingerprint_spec(options.get("crop", "foreground"), int(options.get("window", 0)))


@functools.cache
def _code_digest() -> str:
    """Digest of the generator's and the preprocessing's code (:func:`code_digest`): a code
    change rebuilds the cache.

    Read once per process: a long run keeps reading the entries of the code it runs, even when
    the files change under it.
    """
    folder = Path(inspect.getsourcefile(_fingerprint) or "").parent
    return code_digest([*sorted(folder.glob("*.py")), devices.preprocess, devices.registration])


@functools.cache
def _maps_digest() -> str:
    """What minutiae maps' entries also depend on: the code that finds and maps the minutiae
    (read once per process, as :func:`_code_digest`)."""
    return code_digest([pretrain.data.minutiae, pretrain.data.minutiae_maps, pretrain.data.stats])


@functools.cache
def _localiser_key() -> dict[str, str]:
    """What an ``"anchor"`` crop's entries also depend on: the localiser's code and weights
    (read once per process, as :func:`_code_digest`)."""
    return {
        "code": code_digest([devices.localiser]),
        "weights_sha256": devices.localiser.weights_sha256(),
    }


@functools.cache
def _flow_table_sha256() -> str:
    """What a fitted flow's entries also depend on: the table they draw from (read once per
    process, as :func:`_code_digest`)."""
    return hashlib.sha256(_flow.TABLE.read_bytes()).hexdigest()


class IdentityRanges(NamedTuple):
    """Identity numbers of each split of the synthetic fingerprint dataset."""

    val: range
    test: range
    train: range


def identity_ranges(identities: int, val_identities: int, test_identities: int) -> IdentityRanges:
    """Validation first, then test, then training identities (held-out ranges never move)."""
    val = range(0, val_identities)
    test = range(val.stop, val.stop + test_identities)
    return IdentityRanges(val, test, range(test.stop, test.stop + identities))


def _build_chunk(
    start: int,
    stop: int,
    impressions: int,
    seed: int,
    spec: PreprocessSpec = FINGERPRINT_SPEC,
    generator: GeneratorConfig = DEFAULT_GENERATOR,
    what: str = "prints",
) -> tuple[int, np.ndarray]:
    """Prints (or, ``what="minutiae_maps"``, their minutiae maps) of identities
    ``start..stop-1`` (a worker process's job)."""
    if what == "minutiae_maps":
        maps = pretrain.data.minutiae_maps.minutiae_maps(
            range(start, stop), impressions, seed=seed, spec=spec, config=generator
        )
        return start, maps
    prints = synthetic_fingerprints(
        range(start, stop), impressions, seed=seed, spec=spec, config=generator
    )
    return start, prints.images


def default_workers() -> int:
    """Processes for print generation: ``$POCKETFIT_WORKERS``, else the CPU count."""
    value = os.environ.get("POCKETFIT_WORKERS", "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"POCKETFIT_WORKERS must be a positive integer, got {value!r}.")
        return int(value)
    return os.cpu_count() or 1


def synthetic_prints(
    identities: range,
    impressions: int,
    *,
    seed: int,
    cache: str = "",
    progress: bool = True,
    workers: int = 0,
    spec: PreprocessSpec = FINGERPRINT_SPEC,
    min_stored: int = STORED_IMPRESSIONS,
    generator: GeneratorConfig = DEFAULT_GENERATOR,
    what: str = "prints",
) -> ArrayDataset:
    """Preprocessed synthetic prints of ``identities`` (labels 0.. in that order), cached; with
    ``what="minutiae_maps"``, their minutiae maps instead
    (:func:`pretrain.data.minutiae_maps.minutiae_maps`, same order and shape), cached apart.

    Entries hold ``max(impressions, min_stored)`` impressions per identity, so that stages
    using fewer share them; people drawn once with few impressions (an artifact's background)
    pass ``min_stored=impressions`` and generate no more than they use.

    Every chunk of :data:`CHUNK` identities is one cache entry keyed by the seed, the identities,
    the impressions, the generator settings, the preprocessing ``spec`` and a digest of their
    code. Missing chunks are generated in ``workers`` processes (0 = :func:`default_workers`);
    each print is a pure function of (seed, identity, impression), so the result does not
    depend on it.
    """
    if impressions < 1:
        raise ConfigError(f"impressions must be >= 1, got {impressions}.")
    if what not in CACHED:
        raise ConfigError(f"what must be one of {CACHED}, got {what!r}.")
    stored = max(impressions, min_stored)
    base = {
        "kind": "synthetic-fingerprints" if what == "prints" else "synthetic-minutiae-maps",
        "seed": seed,
        "impressions": stored,
        "generator": dataclasses.asdict(generator),
        # The entries are first windows, the same with or without a second hypothesis.
        "spec": dataclasses.replace(spec, second_anchor_below=0).to_dict(),
        "code": _code_digest(),
    }
    if spec.crop == "anchor":
        base["localiser"] = _localiser_key()
    if generator.flow != "zero_pole":
        base["flow_table_sha256"] = _flow_table_sha256()
    if what == "minutiae_maps":
        base["maps_code"] = _maps_digest()
    bounds = [
        (start, min(start + CHUNK, identities.stop))
        for start in range(identities.start, identities.stop, CHUNK)
    ]
    chunks: dict[int, np.ndarray] = {}
    for start, stop in bounds:
        found = lookup({**base, "identities": [start, stop]}, directory=cache or None, prefix=what)
        if found is not None:
            chunks[start] = found["images"]
    missing = [(start, stop) for start, stop in bounds if start not in chunks]
    if missing:
        workers = min(workers or default_workers(), len(missing))
        todo = sum((stop - start) * stored for start, stop in missing)
        bar = tqdm(
            total=todo,
            desc=f"synthetic {what.replace('_', ' ')} (seed {seed}, {workers} processes)",
            unit="print",
            disable=not progress,
            mininterval=1.0,
        )
        sizes = dict(missing)

        def keep(start: int, images: np.ndarray) -> None:
            store(
                {**base, "identities": [start, sizes[start]]},
                {"images": images},
                directory=cache or None,
                prefix=what,
            )
            chunks[start] = images
            bar.update(len(images))

        if workers == 1:
            for start, stop in missing:
                keep(*_build_chunk(start, stop, stored, seed, spec, generator, what))
        else:
            # spawn, not fork: the parent may already run JAX's threads.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                jobs = [
                    pool.submit(_build_chunk, a, b, stored, seed, spec, generator, what)
                    for a, b in missing
                ]
                for job in as_completed(jobs):
                    keep(*job.result())
        bar.close()
    images = []
    for start, stop in bounds:
        chunk = chunks[start].reshape(stop - start, stored, *spec.shape)
        images.append(chunk[:, :impressions].reshape(-1, *spec.shape))
    stacked = np.concatenate(images) if images else np.zeros((0, *spec.shape), np.float32)
    labels = np.repeat(np.arange(len(identities), dtype=np.int32), impressions)
    name = f"synthetic-seed{seed}[{identities.start}:{identities.stop}]x{impressions}"
    return ArrayDataset(stacked, labels, name if what == "prints" else f"{name}-minutiae")


def synthetic_fingerprint_splits(
    identities: int = 2000,
    impressions: int = 8,
    val_identities: int = 100,
    test_identities: int = 200,
    held_out_impressions: int = 8,
    validate: bool = True,
    seed: int = 0,
    cache: str = "",
    crop: str = "foreground",
    generator: Mapping[str, Any] | None = None,
    minutiae_maps: bool = False,
    window: int = 0,
) -> Splits:
    """Train / validation / test identities of synthetic prints (see :func:`identity_ranges`).

    Args:
      identities: training identities.
      impressions: impressions per training identity.
      val_identities: identities held out for the plateau schedule and early stopping.
      test_identities: identities held out for evaluation (the protocol's synthetic set).
      held_out_impressions: impressions per validation and test identity.
      validate: hold the validation identities out as the validation split; False leaves
        them unused (a self-supervised stage that must not see labels) and keeps the layout.
      seed: generator seed.
      cache: cache folder ("" = ``$POCKETFIT_CACHE`` or ``runs/cache``).
      crop: ``"foreground"`` (``FINGERPRINT_SPEC``), ``"core"`` (``CORE_SPEC``: the window
        registered on the print's core), ``"anchor"`` (``ANCHOR_SPEC``: on the learned
        anchor) or ``"anchor_views"`` (the same windows; its spec lets a matcher add the second
        peak's on a flat heatmap); see :func:`fingerprint_spec`.
      generator: :class:`pretrain.data.GeneratorConfig` options for every split (e.g.
        ``{"impression_shape": [320, 320], "shift_sd": 46}``); None keeps the defaults.
      minutiae_maps: the training images carry a second channel, each print's minutiae map
        (:mod:`pretrain.data.minutiae_maps`; a registered crop only), for a task that trains a
        minutiae head beside the identity loss (``margin_softmax``'s ``minutiae_weight``). The
        held-out splits stay one-channel prints.
      window: the window's side in source pixels (0: the crop's own, 256); the model input
        keeps the crop's scale (:func:`fingerprint_spec`).
    """
    spec = fingerprint_spec(crop, window)
    config = generator_config(generator)
    if identities < 2 or test_identities < 2:
        raise ConfigError("synthetic_fingerprints needs at least 2 training and 2 test identities.")
    ranges = identity_ranges(identities, val_identities, test_identities)
    prints = functools.partial(
        synthetic_prints, seed=seed, cache=cache, spec=spec, generator=config
    )
    if minutiae_maps and spec.crop not in pretrain.data.minutiae_maps.MAP_CROPS:
        raise ConfigError(f"minutiae_maps need a registered crop (anchor, core), got {crop!r}.")

    def train() -> ArrayDataset:
        drawn = prints(ranges.train, impressions)
        if not minutiae_maps:
            return drawn
        maps = prints(ranges.train, impressions, what="minutiae_maps")
        both = np.concatenate([drawn.images, maps.images], axis=-1)
        return ArrayDataset(both, drawn.labels, f"{drawn.name}+minutiae")

    # Each split is drawn when first read: a reader of one split never draws the others.
    val = None
    if val_identities and validate:
        val = Later(lambda: prints(ranges.val, held_out_impressions))
    return Splits(Later(train), val, Later(lambda: prints(ranges.test, held_out_impressions)))


def synthetic_test_set(**options: Any) -> ArrayDataset:
    """The test (evaluation) identities of ``synthetic_fingerprint_splits(**options)`` alone."""
    return synthetic_fingerprint_splits(**options).test


def synthetic_test_windows(**options: Any) -> np.ndarray:
    """float32 ``(n, w, *shape)``: every window of the test identities' prints, in
    :func:`synthetic_test_set`'s order, for a crop whose spec gives a print more than one
    (:func:`devices.preprocess.preprocess_batch_views`; ``w`` is its ``max_views``). Drawn again,
    not cached (the cache holds first windows): about a minute for 1,600 prints."""
    a = print_options(options)
    generator = FingerprintGenerator(seed=a["seed"], config=generator_config(a["generator"]))
    images, _ = generator.impressions(
        print_ranges(a).test, a["held_out_impressions"], progress=True
    )
    return preprocess_batch_views(list(images), print_spec(a))


def synthetic_val_set(**options: Any) -> ArrayDataset:
    """The validation (development) identities of ``synthetic_fingerprint_splits(**options)``
    alone (also for a stage that left them unused, ``validate=False``): what choices after
    training (export recipes, whitening) are made on."""
    val = synthetic_fingerprint_splits(**{**options, "validate": True}).val
    if val is None:
        raise ConfigError("the options hold no validation identities (val_identities=0).")
    return val


def print_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset options of a ``synthetic_fingerprints`` run with every default filled in (the
    arguments :func:`synthetic_fingerprint_splits` receives); unknown options are a TypeError."""
    bound = inspect.signature(synthetic_fingerprint_splits).bind(**options)
    bound.apply_defaults()
    return dict(bound.arguments)


def print_ranges(options: Mapping[str, Any]) -> IdentityRanges:
    """The train / validation / test identity ranges of :func:`print_options`' ``options``."""
    a = print_options(options)
    return identity_ranges(a["identities"], a["val_identities"], a["test_identities"])


def generator_config(options: Mapping[str, Any] | None) -> GeneratorConfig:
    """The dataset option ``generator`` as a :class:`pretrain.data.GeneratorConfig` (bad options
    as ConfigError)."""
    try:
        return GeneratorConfig.from_dict(options or {})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"dataset option generator: {err}") from None


def _subjects(bounds: Sequence[int]) -> range:
    if len(bounds) != 2 or not 1 <= bounds[0] <= bounds[1] <= SUBJECTS:
        raise ConfigError(f"subjects must be (first, last) within 1..{SUBJECTS}, got {bounds}.")
    return range(int(bounds[0]), int(bounds[1]) + 1)


FACE_OPTIONS = ("input_size", "crop")


def face_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset options that shape a face input (``FACE_OPTIONS``), as keyword arguments of
    :func:`face_spec` and :func:`orl_subjects`: training, evaluation and export read the same."""
    return {k: options[k] for k in FACE_OPTIONS if options.get(k) is not None}


def face_spec(input_size: Sequence[int] | None = None, crop: str | None = None) -> PreprocessSpec:
    """``FACE_SPEC`` with its input size ``(height, width)`` and/or crop replaced."""
    changes: dict[str, Any] = {}
    if input_size is not None:
        changes["input_size"] = tuple(int(v) for v in input_size)
    if crop is not None:
        changes["crop"] = crop
    try:
        return dataclasses.replace(FACE_SPEC, **changes)
    except ValueError as err:
        raise ConfigError(f"face preprocessing: {err}") from None


def orl_subjects(
    subjects: range,
    root: str = "",
    input_size: Sequence[int] | None = None,
    crop: str | None = None,
) -> ArrayDataset:
    """The preprocessed ORL faces of ``subjects`` (1-based), labels 0.. in order.

    Preprocessing is ``FACE_SPEC`` (64x64) unless ``input_size`` / ``crop`` replace its fields
    (:func:`face_spec`). Within a subject the images keep their file order ``1.pgm .. 10.pgm``.
    """
    faces = load_orl(root or None, face_spec(input_size, crop))
    keep = np.isin(faces.labels, np.asarray(subjects) - 1)
    labels = faces.labels[keep] - (subjects.start - 1)
    return ArrayDataset(
        faces.images[keep], labels.astype(np.int32), f"orl[s{subjects.start}-s{subjects.stop - 1}]"
    )


def orl_splits(
    train_subjects: Sequence[int] = (1, 20),
    val_subjects: int = 0,
    repeat: int = 1,
    root: str = "",
    input_size: Sequence[int] | None = None,
    crop: str | None = None,
) -> Splits:
    """ORL faces of ``train_subjects`` for pretraining; the evaluation subjects are not read.

    Args:
      train_subjects: ``(first, last)`` subject numbers, inclusive.
      val_subjects: the last this many of them are held out for validation (open-set EER).
      repeat: the training set holds each image this many times, so that one epoch (one
        validation, one checkpoint) spans several passes over the few faces there are; each
        copy is augmented differently.
      root: override for ``$POCKETFIT_DATA``.
      input_size, crop: replace those fields of ``FACE_SPEC`` (:func:`face_spec`); the
        evaluation suite and the saved model take them from the same options.

    Returns:
      Splits whose test set is the validation subjects, or the training subjects themselves
      when none are held out (pretraining never sees the evaluation people, s21-s40).
    """
    subjects = _subjects(train_subjects)
    if not 0 <= val_subjects <= len(subjects) - 2:
        raise ConfigError(f"val_subjects must leave >= 2 training subjects, got {val_subjects}.")
    if repeat < 1:
        raise ConfigError(f"repeat must be >= 1, got {repeat}.")
    cut = subjects.stop - val_subjects
    faces = orl_subjects(range(subjects.start, cut), root, input_size, crop)
    train = ArrayDataset(
        np.tile(faces.images, (repeat, 1, 1, 1)), np.tile(faces.labels, repeat), faces.name
    )
    if not val_subjects:
        return Splits(train, None, faces)
    val = orl_subjects(range(cut, subjects.stop), root, input_size, crop)
    return Splits(train, val, val)


def steps_per_epoch_of(examples: int, batch_size: int) -> int:
    """Full batches per epoch (as the trainer counts them)."""
    return examples // batch_size


def epochs_for_steps(steps: int, examples: int, batch_size: int) -> int:
    """The fewest epochs that take at least ``steps`` optimizer steps."""
    per = steps_per_epoch_of(examples, batch_size)
    if per < 1:
        raise ValueError(f"{examples} examples make no batch of {batch_size}.")
    return max(1, math.ceil(steps / per))


register_dataset("synthetic_fingerprints", synthetic_fingerprint_splits)
register_dataset("orl_faces", orl_splits)
