"""The two learning-curve tasks, run cell by cell with every result kept on disk.

* ``mnist``: each hand-made descriptor with the linear classifier, against LeNet-5 trained by
  :func:`pretrain.fit`, on random training subsets of MNIST's 60,000 (20% of each subset held
  out: it chooses the classifier's L2 and the CNN's checkpoint); test error on the 10,000.
* ``faces``: k images of each of ORL's 40 people to train on, the other 10 - k to test. The
  learned features are the LFW-pretrained face backbone's embeddings (ORL never seen in
  pretraining); every method gets the same linear classifier, whose L2 is chosen per method and
  k on the LFW development people (the same k-shot protocol), never on ORL.

A cell (task, method, size, seed) is a small JSON file under the run's folder; a rerun skips the
cells it finds, so an interrupted run continues where it stopped. A CNN cell and its workdir carry
a digest of the training recipe, so a cell trained by another recipe (e.g. a shorter budget) is
retrained, never reused. Descriptors are cached with :func:`pretrain.embedding.cached`
(``$POCKETFIT_CACHE`` or ``runs/cache``).

The CNN's training budget is one rule at every size, chosen on validation slices only:
:func:`pilot_cnn` trains one subset with no patience stop and :func:`patience_table` reads off
what each patience would have stopped at and kept (the bench's ``--pilot``).

This module imports :mod:`pretrain.embedding` and :mod:`pretrain.train`, which import
:mod:`pretrain.evaluation`; so :mod:`pretrain.evaluation`'s ``__init__`` does not import it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from devices.files import atomic_write
from pretrain.config import TrainConfig
from pretrain.data import ArrayDataset, load_mnist
from pretrain.embedding import cached, embed, lfw_dev_set, orl_faces
from pretrain.embedding.cache import code_digest
from pretrain.evaluation import baselines, descriptors
from pretrain.evaluation.curves import (
    CurveError,
    Subset,
    choose_l2_k_shot,
    draw_subset,
    k_shot_cell,
    linear_cell,
    summarize,
)
from pretrain.evaluation.descriptors import DescriptorSpec
from pretrain.train import Splits, fit, load_model

# Descriptor options per task (the literature's usual settings for the image size, not tuned
# here): MNIST 28x28, faces the backbone's 96x80 input.
MNIST_DESCRIPTORS = {
    "sift": DescriptorSpec("sift", {"cell": 4, "stride": 6}),
    "lbp": DescriptorSpec("lbp", {"grid": 4}),
    "hog": DescriptorSpec("hog", {"cell": 4}),
    "gist": DescriptorSpec("gist", {"pad": 4}),
}
FACE_DESCRIPTORS = {
    "sift": DescriptorSpec("sift", {"cell": 8, "stride": 16}),
    "lbp": DescriptorSpec("lbp", {"grid": 4}),
    "hog": DescriptorSpec("hog", {"cell": 8}),
    "gist": DescriptorSpec("gist", {"pad": 8}),
}
# Each CNN epoch sees at least this many examples (small subsets are repeated), so the
# config's epoch count, plateau and early-stopping patience mean the same at every size.
MIN_EPOCH_EXAMPLES = 3000
# The CNN's budget, one rule at every size (each epoch >= MIN_EPOCH_EXAMPLES examples; the rest
# is lenet5.py's recipe, its plateau schedule included): stop after 4 epochs without a new best
# validation error, at most 20 epochs, the best-validation checkpoint tested. Chosen on the
# validation slices of `--pilot 1000 10000 --seeds 0` (cap 40, no patience stop; about 3
# minutes at load ~10): the best validation error was reached by epoch 3 of 15 (1,000: 7.0%,
# train error 0 from epoch 3) and at epoch 6 of 18 (10,000: 1.75%), both runs ending on the
# learning-rate floor; every patience from 2 keeps those bests, 4 is the smallest that gives
# the schedule's first cut (after 3 epochs) an epoch to act, and 20 is above both runs' length.
CNN_OVERRIDES = ["epochs=20", "early_stop_patience=4", "keep_checkpoints=1"]
# ORL's shape, for the development people the faces' L2 is chosen on.
FACE_IMAGES_PER_PERSON = 10


@functools.cache
def _code_digest() -> str:
    return code_digest([descriptors, baselines])


def _config_digest(config: TrainConfig, min_epoch_examples: int = MIN_EPOCH_EXAMPLES) -> str:
    """A short name for a CNN recipe (the config without its seed, and the epoch length): CNN
    cells and workdirs carry it, so a changed recipe never reuses a stale cell."""
    recipe = {**config.to_dict(), "seed": None, "min_epoch_examples": min_epoch_examples}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def cached_descriptors(
    spec: DescriptorSpec, images: np.ndarray, *, data_key: str, cache: str = ""
) -> np.ndarray:
    """``spec``'s features of ``images`` (named ``data_key``), from the cache when present."""
    key = {
        "kind": "descriptors",
        "descriptor": spec.name,
        "options": spec.options,
        "data": data_key,
        "shape": list(images.shape),
        "code": _code_digest(),
    }
    arrays = cached(
        key,
        lambda: {"features": spec(images)},
        directory=cache or None,
        prefix=f"desc-{spec.name}",
    )
    return arrays["features"]


class CellStore:
    """One JSON file per finished cell under ``folder``; a rerun reads them instead."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, task: str, method: str, size: int, seed: int) -> Path:
        return self.folder / f"{task}-{method}-{size}-{seed}.json"

    def get(
        self, task: str, method: str, size: int, seed: int, key: str | None = None
    ) -> dict[str, Any] | None:
        """The stored cell; None when absent, unreadable or stored under another ``key``."""
        path = self.path(task, method, size, seed)
        if not path.is_file():
            return None
        try:
            cell = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        return cell if key is None or cell.get("key") == key else None

    def put(self, task: str, method: str, size: int, seed: int, cell: dict[str, Any]) -> None:
        atomic_write(self.path(task, method, size, seed), (json.dumps(cell) + "\n").encode())

    def run(
        self,
        task: str,
        method: str,
        size: int,
        seed: int,
        work: Callable[[], dict[str, Any]],
        key: str | None = None,
    ) -> dict[str, Any]:
        """The stored cell, or ``work()`` stored (with ``key``: a cell stored under another key,
        e.g. a CNN trained by an older recipe, is recomputed and replaced)."""
        cell = self.get(task, method, size, seed, key)
        if cell is None:
            cell = work() if key is None else {**work(), "key": key}
            self.put(task, method, size, seed, cell)
        return cell

    def curves(self, task: str) -> dict[str, list[dict[str, Any]]]:
        """Every stored cell of ``task`` summarised: ``{method: summarize(...)}``."""
        points: dict[str, dict[int, list[float]]] = {}
        for path in sorted(self.folder.glob(f"{task}-*.json")):
            _, method, size, _seed = path.stem.rsplit("-", 3)
            cell = json.loads(path.read_text())
            points.setdefault(method, {}).setdefault(int(size), []).append(cell["error_pct"])
        return {m: summarize(p) for m, p in points.items()}


def repeat_to(data: ArrayDataset, examples: int) -> ArrayDataset:
    """``data`` repeated whole until it has at least ``examples`` examples."""
    times = max(1, math.ceil(examples / max(len(data), 1)))
    if times == 1:
        return data
    return ArrayDataset(
        np.concatenate([data.images] * times), np.concatenate([data.labels] * times), data.name
    )


def cnn_cell(
    config: TrainConfig,
    train: ArrayDataset,
    val: ArrayDataset,
    test: ArrayDataset,
    workdir: str | Path,
    *,
    min_epoch_examples: int = MIN_EPOCH_EXAMPLES,
) -> dict[str, Any]:
    """Trains ``config`` on ``train`` (checkpoint chosen on ``val``); its test error."""
    config = dataclasses.replace(config, train_size=0, val_size=0)
    splits = Splits(repeat_to(train, min_epoch_examples), val, test)
    result = fit(config, workdir, resume=True, progress=False, splits=splits)
    return {
        "error_pct": 100 * result.test_error,
        "val_error_pct": 100 * result.val_error,
        "epochs": result.epochs,
        "steps": int(result.history[-1]["step"]) if result.history else 0,
        "wall_s": result.wall_s,
        "val_error_by_epoch": [100 * h["val_error"] for h in result.history],
    }


def patience_table(val_errors: Sequence[float], patiences: Sequence[int]) -> dict[str, Any]:
    """What stopping after ``P`` epochs without a new best validation error would have kept,
    for each ``P``, read off one run's per-epoch validation errors in % (stopping early changes
    nothing before the stop, so one long run answers every ``P``): ``{P: {stop_epoch,
    best_epoch, val_error_pct}}``.

    The improvement test is :func:`pretrain.fit`'s own: the error as a fraction against the best
    so far stored in float32, so a tie counts as an improvement when float32 rounds the best up
    (e.g. 7.0%, kept as 0.0700000003) and not when it rounds down (e.g. 4.0%).
    """
    table: dict[str, Any] = {}
    for patience in patiences:
        best, best_epoch, stop, since = math.inf, 0, len(val_errors), 0
        for epoch, value in enumerate(val_errors, start=1):
            if value / 100 < float(np.float32(best / 100)):
                best, best_epoch, since = value, epoch, 0
            else:
                since += 1
                if since >= patience:
                    stop = epoch
                    break
        table[str(patience)] = {
            "stop_epoch": stop,
            "best_epoch": best_epoch,
            "val_error_pct": best,
        }
    return table


def run_mnist(
    store: CellStore,
    *,
    sizes: Sequence[int],
    seeds: Sequence[int],
    cnn: TrainConfig | None,
    methods: Sequence[str] = tuple(MNIST_DESCRIPTORS),
    cache: str = "",
    grid: Sequence[float] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every MNIST cell: descriptors first (all sizes), then the CNN by increasing size."""
    train_set, test_set = load_mnist("train"), load_mnist("test")
    extra = {"grid": grid} if grid else {}
    subsets = {
        (s, seed): draw_subset(len(train_set), s, seed=seed) for s in sizes for seed in seeds
    }
    # Descriptors of the training images some subset uses (not all 60,000 for small sizes).
    if not subsets:
        raise CurveError("no MNIST cells: give at least one size and one seed.")
    used = np.unique(np.concatenate([np.concatenate(sub) for sub in subsets.values()]))
    position = np.full(len(train_set), -1, np.int64)
    position[used] = np.arange(len(used))
    used_key = f"mnist-train[{hashlib.sha256(used.tobytes()).hexdigest()[:16]}]"
    for method in methods:
        spec = MNIST_DESCRIPTORS[method]
        if all(store.get("mnist", method, s, seed) for s, seed in subsets):
            continue
        tr = cached_descriptors(spec, train_set.images[used], data_key=used_key, cache=cache)
        te = cached_descriptors(spec, test_set.images, data_key="mnist-test", cache=cache)
        labels = train_set.labels[used]
        for (size, seed), sub in tqdm(subsets.items(), desc=f"mnist {method}", leave=False):
            local = Subset(position[sub.train], position[sub.val])
            store.run(
                "mnist",
                method,
                size,
                seed,
                functools.partial(linear_cell, tr, labels, local, (te, test_set.labels), **extra),
            )
    if cnn is not None:
        key = _config_digest(cnn)
        for (size, seed), subset in tqdm(subsets.items(), desc="mnist cnn", leave=False):
            workdir = store.folder / "cnn" / f"mnist-{size}-{seed}-{key}"
            store.run(
                "mnist",
                "cnn",
                size,
                seed,
                functools.partial(
                    cnn_cell,
                    dataclasses.replace(cnn, seed=seed),
                    train_set.take(subset.train),
                    train_set.take(subset.val),
                    test_set,
                    workdir,
                ),
                key,
            )
    return store.curves("mnist")


def pilot_cnn(
    store: CellStore, *, size: int, seed: int, cnn: TrainConfig, cap: int
) -> dict[str, Any]:
    """The CNN on subset ``(size, seed)`` trained to ``cap`` epochs with no patience stop (the
    plateau cuts and the learning-rate floor still act), stored as task ``pilot``. Its
    validation errors by epoch choose the patience and the epoch cap (:func:`patience_table`);
    the validation slice stands in for the test set, so the test images are never read."""
    train_set = load_mnist("train")
    subset = draw_subset(len(train_set), size, seed=seed)
    val = train_set.take(subset.val)
    config = dataclasses.replace(cnn, seed=seed, epochs=cap, early_stop_patience=cap)
    key = _config_digest(config)
    workdir = store.folder / "cnn" / f"pilot-{size}-{seed}-{key}"

    def work() -> dict[str, Any]:
        cell = cnn_cell(config, train_set.take(subset.train), val, val, workdir)
        del cell["error_pct"]  # the validation slice again, not a test error
        recipe = {k: getattr(config, k) for k in ("plateau_patience", "plateau_factor")}
        return {"size": size, "seed": seed, "cap": cap, **recipe, **cell}

    return store.run("pilot", f"cnn_{key}", size, seed, work, key)


def ten_per_person(data: ArrayDataset, count: int = FACE_IMAGES_PER_PERSON) -> ArrayDataset:
    """The first ``count`` images of every identity that has that many, relabelled 0..k-1."""
    keep: list[int] = []
    for identity in np.unique(data.labels):
        members = np.flatnonzero(data.labels == identity)
        if len(members) >= count:
            keep.extend(members[:count])
    index = np.asarray(keep)
    labels = np.unique(data.labels[index], return_inverse=True)[1].astype(np.int32)
    return ArrayDataset(data.images[index], labels, f"{data.name}[{count} each]")


class FaceFeatures(NamedTuple):
    """``{method: (dev features, ORL features)}`` and the two label arrays."""

    features: dict[str, tuple[np.ndarray, np.ndarray]]
    dev_labels: np.ndarray
    orl_labels: np.ndarray


def face_features(model_dir: str | Path, *, cache: str = "") -> FaceFeatures:
    """Every descriptor and ``cnn`` (the backbone's embeddings) of the LFW development people
    (ORL's shape: 10 images each) and of ORL's 400 faces, at the backbone's input size."""
    saved = load_model(model_dir)
    size = saved.info["info"]["preprocess"]["input_size"]
    dev = ten_per_person(lfw_dev_set(input_size=size, cache=cache))
    orl = orl_faces(size)
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, spec in FACE_DESCRIPTORS.items():
        features[name] = (
            cached_descriptors(spec, dev.images, data_key=dev.name, cache=cache),
            cached_descriptors(spec, orl.images, data_key=orl.name, cache=cache),
        )
    features["cnn"] = (
        embed(saved.module, saved.params, dev.images),
        embed(saved.module, saved.params, orl.images),
    )
    return FaceFeatures(features, dev.labels, orl.labels)


def run_faces(
    store: CellStore,
    faces: FaceFeatures,
    *,
    shots: Sequence[int],
    seeds: Sequence[int],
    dev_seeds: Sequence[int] = (0, 1, 2),
    grid: Sequence[float] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every faces cell; each method's L2 at each k chosen on the development people first."""
    extra = {"grid": grid} if grid else {}
    cells = [(m, k) for m in faces.features for k in shots]
    for method, k in tqdm(cells, desc="faces", leave=False):
        dev_x, orl_x = faces.features[method]
        if all(store.get("faces", method, k, s) is not None for s in seeds):
            continue
        l2, dev_errors = choose_l2_k_shot(dev_x, faces.dev_labels, k, seeds=dev_seeds, **extra)
        for seed in seeds:
            store.run(
                "faces",
                method,
                k,
                seed,
                functools.partial(
                    k_shot_cell, orl_x, faces.orl_labels, k, seed=seed, l2=l2, dev=dev_errors
                ),
            )
    return store.curves("faces")
