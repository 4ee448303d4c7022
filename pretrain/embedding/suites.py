"""Evaluation suites of identity embeddings, chosen by name: the protocol on the issue's splits.

Each suite embeds people the model never saw in pretraining, scores them with
:mod:`pretrain.evaluation` (verification over all pairs, k-shot identification by imprinting),
and scores the traditional baselines (HOG, LBP; cosine matching) on the identical split in the
same call.

``face``: ORL subjects s21-s40 (pretraining reads s1-s20 only); images 1-5 of each subject form
the enrollment pool, 6-10 are the probes.

``fingerprint``: (a) the held-out synthetic identities of the run's dataset options: EER and FRR
at each FAR; (b) the five real-sensor FVC B sets (not 2000_DB4_B, which is SFinGe output): 50
fingers x 8 impressions, each finger its own identity, impressions 1-5 enroll and 6-8 probe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import numpy as np

from devices.preprocess import FINGERPRINT_SPEC, PreprocessError, PreprocessSpec, preprocess_image
from pretrain.config import TrainConfig
from pretrain.data import SENSOR_SETS, ArrayDataset, DataError, read_sensor_sets
from pretrain.embedding.data import (
    face_options,
    orl_subjects,
    print_spec,
    synthetic_test_set,
    synthetic_test_windows,
)
from pretrain.evaluation import BASELINES, evaluate_features, matchers_protocol
from pretrain.evaluation.domain import domain_offset, offsets_by_group

Suite = Callable[..., dict[str, Any]]
_SUITES: dict[str, Suite] = {}


def register_suite(name: str) -> Callable[[Suite], Suite]:
    """Decorator adding an evaluation suite ``suite(module, params, *, config, **options)``."""

    def add(fn: Suite) -> Suite:
        if name in _SUITES:
            raise ValueError(f"suite {name!r} is already registered.")
        _SUITES[name] = fn
        return fn

    return add


def suite_names() -> list[str]:
    """Registered suite names, sorted."""
    return sorted(_SUITES)


def run_suite(
    name: str, module: nn.Module, params: Any, *, config: TrainConfig, **options: Any
) -> dict[str, Any]:
    """Runs suite ``name`` on a model; ``config`` is the config of the stage that trained it."""
    if name not in _SUITES:
        raise ValueError(f"unknown evaluation suite {name!r}; registered: {suite_names()}.")
    return _SUITES[name](module, params, config=config, **options)


def embed(
    module: nn.Module, params: Any, images: np.ndarray, *, batch_size: int = 200
) -> np.ndarray:
    """Embeddings of ``images`` in fixed-size batches (one compilation), as float32 numpy."""
    return embed_jitted(
        jax.jit(lambda p, x: module.apply({"params": p}, x)), params, images, batch_size
    )


def embed_jitted(
    apply: Callable[[Any, Any], Any], params: Any, images: np.ndarray, batch_size: int = 200
) -> np.ndarray:
    """:func:`embed` with a compiled ``apply(params, batch)`` the caller keeps across calls."""
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        pad = batch_size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
        out.append(np.asarray(apply(params, chunk))[: batch_size - pad])
    return np.concatenate(out).astype(np.float32)


def within_identity_order(labels: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each identity, in dataset order."""
    order = np.zeros(len(labels), np.int64)
    for identity in np.unique(labels):
        idx = np.flatnonzero(labels == identity)
        order[idx] = np.arange(idx.size)
    return order


def score(
    features: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    images: np.ndarray,
    owners: np.ndarray | None = None,
) -> dict[str, Any]:
    """The protocol on ``features``, and on each baseline's features of ``images`` (``owners``:
    see :func:`pretrain.evaluation.identification_accuracy`).

    ``baseline`` is the stronger traditional method by 5-shot identification (the comparison a
    skeptic would pick); ``baselines`` holds both.
    """
    report = evaluate_features(features, labels, order=order, owners=owners)
    baselines = {
        name: evaluate_features(fn(images), labels, order=order, owners=owners)
        for name, fn in BASELINES.items()
    }
    best = max(baselines, key=lambda k: baselines[k]["identification_pct"]["5"])
    report["baseline"] = {"method": best, **baselines[best]}
    report["baselines"] = baselines
    report["identities"] = int(np.unique(labels).size)
    report["samples"] = int(labels.size)
    report["domain_offset"] = domain_offset(features, labels)
    return report


@register_suite("face")
def face_suite(
    module: nn.Module,
    params: Any,
    *,
    config: TrainConfig | None = None,
    subjects: tuple[int, int] = (21, 40),
    root: str = "",
) -> dict[str, Any]:
    """ORL ``subjects`` (default s21-s40): 1/3/5-shot identification and verification.

    The faces are preprocessed as the training stage's (``input_size`` / ``crop`` of its
    ``dataset_options``, else ``FACE_SPEC``).
    """
    options = face_options(config.dataset_options) if config is not None else {}
    faces = orl_subjects(range(subjects[0], subjects[1] + 1), root, **options)
    order = within_identity_order(faces.labels)
    features = embed(module, params, faces.images)
    report = score(features, faces.labels, order, faces.images)
    report["set"] = faces.name
    report["split"] = "per subject, images 1-5 enroll (first k for k-shot), 6-10 probe"
    return report


class SensorSets(NamedTuple):
    """The real-sensor FVC B sets as one identity set (see :func:`fvc_sensor_sets`)."""

    images: np.ndarray
    labels: np.ndarray
    impressions: np.ndarray
    names: tuple[str, ...]
    set_of: np.ndarray
    owners: np.ndarray


def fvc_sensor_sets(
    root: str = "", sets: tuple[str, ...] = SENSOR_SETS, spec: PreprocessSpec = FINGERPRINT_SPEC
) -> SensorSets:
    """The real-sensor FVC B sets as one identity set.

    Each finger of each set is its own identity (the sets' labels follow one another);
    ``impressions`` holds the number in the file name (1-8), ``set_of`` each print's set name and
    ``owners`` each print's finger by :func:`pretrain.data.finger_owner` (two sets hold the same
    fingers, :data:`pretrain.data.SAME_FINGERS`): score with ``owners`` so that those are
    neither impostor pairs nor wrong answers.
    """
    prints = read_sensor_sets(root or None, sets)
    images = np.empty((len(prints.images), *spec.shape), np.float32)
    for i, image in enumerate(prints.images):
        try:
            images[i] = preprocess_image(image, spec)
        except PreprocessError as err:  # named as its file is: <finger>_<impression>
            finger = prints.fingers[prints.labels[i]]
            raise DataError(f"fvc/{finger}_{prints.impressions[i]}: {err}") from err
    return SensorSets(
        images,
        prints.labels,
        prints.impressions,
        sets,
        prints.set_of,
        np.asarray(prints.owners)[prints.labels],
    )


def synthetic_features(
    module: nn.Module, params: Any, options: Mapping[str, Any]
) -> tuple[ArrayDataset, np.ndarray]:
    """The held-out synthetic identities of ``synthetic_fingerprint_splits(**options)`` and their
    features as the protocol scores them: ``(n, d)``, or ``(n, w, d)`` for every window of a
    spec with a second registration hypothesis (:func:`window_features`)."""
    held = synthetic_test_set(**options)
    features = embed(module, params, held.images)
    if print_spec(options).max_views > 1:
        features = window_features(module, params, held, features, options)
    return held, features


def synthetic_report(module: nn.Module, params: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The protocol on the held-out synthetic identities of ``synthetic_fingerprint_splits(
    **options)`` (its ``generator`` option says how they are rendered)."""
    held, features = synthetic_features(module, params, options)
    order = within_identity_order(held.labels)
    report = score(features, held.labels, order, held.images)
    report["set"] = held.name
    report["split"] = "per identity, impressions 1-5 enroll (first k for k-shot), 6-8 probe"
    return report


def window_features(
    module: nn.Module,
    params: Any,
    held: ArrayDataset,
    first: np.ndarray,
    options: Mapping[str, Any],
) -> np.ndarray:
    """``(n, w, d)`` embeddings of every window of the held-out prints, for a spec with a second
    registration hypothesis: the protocol then scores each pair's best windows and each probe's
    best window, as the device does. ``first`` holds the embeddings of ``held``'s own (first)
    windows; only the further windows a print has are run (a padded one repeats its first)."""
    windows = synthetic_test_windows(**options)
    if not np.array_equal(windows[:, 0], held.images):
        raise RuntimeError("the held-out prints drawn again differ from the cached ones.")
    out = np.repeat(np.asarray(first)[:, None], windows.shape[1], axis=1)
    for j in range(1, windows.shape[1]):
        have = np.flatnonzero(np.any(windows[:, j] != windows[:, 0], axis=(1, 2, 3)))
        if have.size:
            out[have, j] = np.asarray(embed(module, params, windows[have, j]))
    return out


@register_suite("fingerprint")
def fingerprint_suite(
    module: nn.Module,
    params: Any,
    *,
    config: TrainConfig,
    root: str = "",
    sets: tuple[str, ...] = SENSOR_SETS,
) -> dict[str, Any]:
    """Held-out synthetic identities of ``config.dataset_options``, then the real FVC sets: the
    k-shot split of the five sensor sets (``fvc``) and the FVC protocol of all six sets, with
    the HOG and LBP baselines (``fvc_protocol``)."""
    synthetic = synthetic_report(module, params, config.dataset_options)
    spec = print_spec(config.dataset_options)
    prints = fvc_sensor_sets(root, sets, spec)
    features = embed(module, params, prints.images)
    fvc = score(features, prints.labels, prints.impressions, prints.images, prints.owners)
    fvc["sets"] = list(prints.names)
    fvc["domain_offset_by_set"] = offsets_by_group(features, prints.labels, prints.set_of)
    fvc["split"] = "per finger, impressions 1-5 enroll (first k for k-shot), 6-8 probe"
    fvc["same_fingers"] = (
        "one finger in two sets (pretrain.data.SAME_FINGERS) is two identities, never scored "
        "against each other: not an impostor pair, not a wrong answer"
    )
    protocol = matchers_protocol(
        lambda x: embed(module, params, x), spec=spec, baselines=BASELINES, root=root or None
    )
    return {"synthetic": synthetic, "fvc": fvc, "fvc_protocol": protocol}
