"""The OTA form of an embedding backbone: Deep Compression retrained on the embedding task.

The same compressors as ``pretrain.compression`` (magnitude pruning, then k-means weight sharing
with centroid fine-tuning) on the same trainer (:class:`pretrain.compression.CompressedTrainer`),
whose loss is the model's training task: for an embedding backbone, the margin softmax over the
training identities, with its classifier starting imprinted from the current embeddings
(normalised class means). The model sees ``compressor.apply(params)`` in the forward pass, so
pruned weights stay zero and shared weights move together. The packed result becomes a signed,
Huffman-coded ``.pfb``.

The recipe is given per layer *kind* (``stem``, ``depthwise``, ``pointwise``, ``embed``) and
expanded over whatever blocks the backbone has.

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016.
  Qi, Brown, Lowe, "Low-shot learning with imprinted weights", CVPR 2018 (imprinted classifier).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import pretrain.compression as pc
from devices.cosine import normalize
from devices.files import atomic_write
from export.artifact.split import TEST_TIME, folded_options, training_config, training_dataset
from export.bundle import build_bundle
from pretrain import SavedModel, build_model, make_config
from pretrain.data import ArrayDataset
from pretrain.models.embednet import EmbedNet, fold_standardization
from pretrain.train import load_splits
from pretrain.train.steps import init_state

KINDS = ("stem", "depthwise", "pointwise", "embed")


@dataclasses.dataclass(frozen=True)
class OtaRecipe:
    """How to compress an EmbedNet for the air.

    Attributes:
      sparsity: final fraction pruned per layer kind.
      bits: weight-sharing code width per layer kind.
      rounds: prune -> retrain rounds (cubic schedule towards ``sparsity``).
      steps_per_round: retraining steps of each round (batches of the last stage's size).
      quant_steps: centroid fine-tuning steps.
      learning_rate: retraining learning rate (cosine-annealed within each round).
      quant_lr: centroid learning rate (their gradients are sums over members).
      max_identities: retrain on at most this many training identities (a subset of those the
        model was trained on; the imprinted classifier covers exactly them).
      float16: store codebooks and biases as float16.
      augment: retrain with the last stage's augmentation (False: plain images, faster).
      distill: weight of a distillation term added to the task's loss: the mean cosine distance
        between the compressed model's embeddings and the uncompressed model's (the ``start``
        parameters, e.g. whitened) on the same (augmented) batch; 0 trains on the task alone.

    The registered recipes (:func:`recipe_for`, by the model's training dataset) say what they
    give and how long they take.
    """

    sparsity: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"stem": 0.3, "depthwise": 0.5, "pointwise": 0.88, "embed": 0.9}
    )
    bits: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: {"stem": 6, "depthwise": 5, "pointwise": 4, "embed": 4}
    )
    rounds: int = 3
    steps_per_round: int = 150
    quant_steps: int = 100
    learning_rate: float = 0.005
    quant_lr: float = 1e-4
    max_identities: int = 500
    float16: bool = True
    augment: bool = True
    distill: float = 0.0

    def __post_init__(self) -> None:
        for what in (self.sparsity, self.bits):
            unknown = sorted(set(what) - set(KINDS))
            if unknown:
                raise ValueError(f"unknown layer kind(s) {unknown}; kinds: {', '.join(KINDS)}.")
        if self.rounds < 1 or self.steps_per_round < 0 or self.quant_steps < 0:
            raise ValueError("rounds must be >= 1 and step counts >= 0.")
        if not self.distill >= 0:
            raise ValueError(f"distill must be >= 0, got {self.distill}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "sparsity": dict(self.sparsity),
            "bits": dict(self.bits),
        }


EMBEDNET = OtaRecipe()
"""The default: 88-90% of the 1x1 and embedding weights pruned, 4-bit codes; about 22x smaller
than the float32 backbone (measured on the default EmbedNet: 19.4 KB of 430 KB)."""

FACE = OtaRecipe(rounds=3, steps_per_round=80, quant_steps=40, max_identities=20)
"""Face EmbedNet (ORL s1-s20, all 20 identities). Command: ``make bench-export``. Expected:
about 22x smaller than float32 (``pfb_bytes`` in ``notebooks/results/export.json``, with the
decoded bundle's accuracy on s21-s40). Time here (2 shared CPU cores): about 3 minutes."""

GENTLE_SPARSITY: Mapping[str, float] = {
    "stem": 0.3,
    "depthwise": 0.5,
    "pointwise": 0.7,
    "embed": 0.8,
}
"""The 1x1 and embedding layers pruned 70% / 80% (the default: 88% / 90%), which the dev
searches chose for the print and the wide face backbones alike."""

FINGERPRINT_TASK = OtaRecipe(rounds=3, steps_per_round=100, quant_steps=50, max_identities=300)
"""The print recipe before the dev search: the task's loss alone."""

FINGERPRINT = dataclasses.replace(
    FINGERPRINT_TASK,
    distill=10.0,
    sparsity=GENTLE_SPARSITY,
    steps_per_round=600,
    quant_steps=300,
)
"""Fingerprint EmbedNet (retrained on its first 300 synthetic training identities x 8
impressions, distilled towards the float model's embeddings, the 1x1 and embedding layers pruned
70% / 80%, 600 retraining steps per pruning round and 300 of centroid fine-tuning). Command:
``make bench-export``. Expected: a download of about 76 KB, about 11x smaller than the official
recipe's model, accuracy in ``export.json``. Time here: 32 minutes (1,914 s) beside a second
compression on the 2 cores, so about 20 alone (the previous recipe, half as long, took 13).

Chosen on the 100 synthetic validation identities (``bench_export.py --search fingerprint``:
the installed int8 model's 5-shot over 10 splits minus the unwhitened float model's), by the
best dev delta within the 10x download budget (83,168 bytes). On the backbone of
``embed_fingerprint_scale2.py`` (notebooks/results/export_search_fingerprint_scale2.json, float
91.47%): the task alone (:data:`FINGERPRINT_TASK`) -10.20 points, EER +2.97, 55,623 bytes; with
``distill=10`` -10.17, EER +2.86, 56,246 bytes; that with the 1x1 / embedding layers pruned
78% / 85% instead of 88% / 90% -4.07, EER +1.29, 67,601 bytes; pruned 70% / 80% and retrained
twice as long -1.27, EER +0.34, 75,781 bytes; three times as long (300 / 150 steps) -0.33,
EER +0.36, 75,817 bytes, chosen then. On the placement backbone (export_search_fingerprint_
placement.json) that recipe gave -1.20, EER +0.71, 75,464 bytes. On the partial-contact
backbone (``embed_fingerprint_partial.py``'s; export_search_fingerprint_partial.json; float
88.60% on its harder dev prints) it lost -4.40, EER +1.46, 75,900 bytes; pruned 65% / 75%
-4.13, EER +1.69, 81,026 bytes; retrained six times as long (this recipe) **-2.60**, EER
+1.20, 76,365 bytes: chosen. On the period backbone (``embed_fingerprint_period.py``'s;
export_search_fingerprint_period.json; float 91.00% on its dev prints) this recipe, the one
candidate searched again: -2.17, EER +0.68, 76,077 bytes. On the mixed backbone
(``embed_fingerprint_mixed.py``'s; export_search_fingerprint_mixed.json; float 93.33% on its
dev prints): -2.00, EER +0.86, 76,076 bytes (17 minutes on 2 cores). The same backbone on the
learned anchor's windows (``embed_fingerprint_anchor.py``, step 1, committed since 2026-12-05;
export_search_fingerprint.json; float 98.70% on its dev prints): -1.13, EER +0.62, 75,980 bytes.
"""

FACE_LFW_TASK = OtaRecipe(rounds=3, steps_per_round=120, quant_steps=60, max_identities=500)
"""The face recipe before the dev search: the task's loss alone (dev 5-shot -9.85 points)."""

FACE_LFW = dataclasses.replace(
    FACE_LFW_TASK, distill=10.0, sparsity=GENTLE_SPARSITY, steps_per_round=720, quant_steps=360
)
"""Face EmbedNet trained on LFW + Extended Yale B (``embed_face_wide.py``, 1.0M parameters;
retrained on its first 500 training identities with >= 2 images, distilled towards the float
model's embeddings, 720 retraining steps per pruning round and 360 of centroid fine-tuning).
Command: ``make bench-export``. Expected: a download of about 330 KB, over 10x smaller than the
official recipe's 4.16 MB model. Time here: about 30 minutes on 2 free cores.

Chosen on the 120 LFW dev people (``bench_export.py --search face``, the installed int8 model's
5-shot over 10 splits minus the float model's 63.21%; notebooks/results/export_search.json):
the previous backbone's recipe (the 1x1 layers pruned 82%, 360 steps a round) -7.66 points, EER
+2.28, 248,386 bytes; the 1x1 layers pruned 70%, embed 80%, depthwise 50% (``wide_gentle``)
-2.90, EER +1.11, 326,612 bytes; that retrained twice as long (``wide_gentle_long``, chosen: the
best dev delta within the 10x budget of 416,221 bytes) -1.83, EER +0.68, 327,075 bytes.

For the previous face backbone (``embed_face_lfw.py``'s 338K EmbedNet, 45.70% dev 5-shot;
notebooks/results/export_search_embed_face_lfw.json) the chosen recipe was the 1x1 layers
pruned 82%, depthwise 55%, embed 90%, 360 / 180 steps: the task alone (:data:`FACE_LFW_TASK`)
-9.85 points, EER +3.30; with ``distill=10`` -6.36, +1.37; gentler 1x1 pruning -4.35, +1.16;
retraining twice as long -1.75, +0.19; three times -1.02, +0.20 (132,816 bytes).
"""

pc.register_recipe("embednet", EMBEDNET)
pc.register_recipe("embednet:lfw_yale_b", FACE_LFW)
pc.register_recipe("embednet:orl_faces", FACE)
pc.register_recipe("embednet:synthetic_fingerprints", FINGERPRINT)


def recipe_for(saved: SavedModel) -> OtaRecipe:
    """The registered recipe of the dataset ``saved`` was trained on (default: ``EMBEDNET``)."""
    name = f"embednet:{training_dataset(saved)}"
    return pc.recipe(name if name in pc.recipe_names() else "embednet")


def kind_of(layer: str) -> str:
    """``"block3/pointwise"`` -> ``"pointwise"``; ``"stem"`` and ``"embed"`` are themselves; an
    EmbedNet's ``"gdc"`` pool is a depthwise convolution and compressed as one."""
    kind = layer.rsplit("/", 1)[-1]
    return "depthwise" if kind == "gdc" else kind


def per_layer(params: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """A per-kind setting expanded to every kernel layer of ``params``."""
    layers = [pc.layer_of(n) for n in pc.selected(params, pc.kernels())]
    return {layer: values[kind_of(layer)] for layer in layers if kind_of(layer) in values}


class OtaResult(NamedTuple):
    """A compressed backbone.

    Attributes:
      params: the decoded-equivalent parameters (pruned, weight-shared), the model's full tree.
      bundle: the signed ``.pfb`` bytes.
      history: per round / phase: sparsity, steps, mean loss, seconds.
      recipe: the recipe, as a dict.
    """

    params: Any
    bundle: bytes
    history: list[dict[str, Any]]
    recipe: dict[str, Any]


OTA_BUNDLE, OTA_RECORD = "bundle.pfb", "ota.json"


def save_ota(ota: OtaResult, folder: str | os.PathLike[str]) -> Path:
    """A compressed backbone's signed bundle and its record (recipe, history) in ``folder``
    (``bundle.pfb``, ``ota.json``), so that a later export ships these same bytes
    (:func:`load_ota`, ``export_download(ota=...)``) instead of compressing again."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / OTA_BUNDLE, ota.bundle)
    record = {"recipe": ota.recipe, "history": ota.history}
    atomic_write(out / OTA_RECORD, json.dumps(record, indent=1).encode())
    return out


def load_ota(folder: str | os.PathLike[str]) -> OtaResult:
    """The compressed backbone :func:`save_ota` wrote (``params`` is None: the bundle holds the
    weights; the export verifies and decodes it).

    Raises:
      ValueError: the folder lacks either file or its record is not a saved compression.
    """
    where = Path(folder)
    try:
        bundle = (where / OTA_BUNDLE).read_bytes()
        record = json.loads((where / OTA_RECORD).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{where}: not a saved compression ({err}).") from None
    if not isinstance(record, dict) or not isinstance(record.get("recipe"), dict):
        raise ValueError(f"{where / OTA_RECORD}: no recipe recorded.")
    return OtaResult(None, bundle, list(record.get("history") or []), record["recipe"])


def _retrain_splits(saved: SavedModel, recipe: OtaRecipe) -> tuple[Any, ArrayDataset]:
    values = training_config(saved)
    if not values:
        raise ValueError("the model records no training config: nothing to retrain on.")
    values.pop("init_from", None)
    options = dict(values.get("dataset_options") or {})
    if values.get("dataset") == "synthetic_fingerprints":
        options["identities"] = min(options.get("identities", 2000), recipe.max_identities)
    values["dataset_options"] = options
    if not recipe.augment:
        values["task_options"] = {**(values.get("task_options") or {}), "augment": {}}
    config = make_config(values, where="OTA retraining config")
    train = load_splits(config).train  # the held-out splits are never drawn
    keep = train.labels < recipe.max_identities
    if not keep.all():
        train = ArrayDataset(train.images[keep], train.labels[keep], train.name)
    return config, train


def _imprinted(module: Any, params: Any, data: ArrayDataset, classes: int) -> jax.Array:
    """``(d, classes)`` normalised class means of normalised embeddings (distinct images)."""
    apply = jax.jit(lambda p, x: module.apply({"params": p}, x))
    sums: np.ndarray | None = None
    counts = np.zeros(classes)
    for start in range(0, len(data), 256):
        x = data.images[start : start + 256]
        y = data.labels[start : start + 256]
        e = normalize(np.asarray(apply(params, x)))
        if sums is None:
            sums = np.zeros((classes, e.shape[1]))
        np.add.at(sums, y, e)
        np.add.at(counts, y, 1)
    assert sums is not None
    means = normalize(sums / np.maximum(counts[:, None], 1))
    return jnp.asarray(means.T, jnp.float32)


def _run(
    compressor: pc.Compressor,
    cstate: Any,
    params: Any,
    classifier: jax.Array,
    *,
    config: Any,
    train: ArrayDataset,
    steps: int,
    lr: float,
    key: jax.Array,
    desc: str,
    progress: bool,
    teacher: Any = None,
    distill: float = 0.0,
) -> tuple[Any, jax.Array, float]:
    """``steps`` steps of the embedding task's loss on ``compressor.apply(params)``, on the
    compression pipeline's trainer (:class:`pretrain.compression.CompressedTrainer`), the
    learning rate cosine-annealed over the steps.

    Returns:
      ``(projected model parameters, classifier kernel, mean loss)``.
    """
    config = dataclasses.replace(config, learning_rate=lr)
    task = pc.distilled_task(config, teacher, distill)
    trainer = pc.CompressedTrainer(config, train.images, compressor, cstate, task=task)
    projected, _ = trainer.project(params)
    if steps == 0:
        return projected, classifier, math.nan
    # The step donates its state: the classifier must not be the caller's buffer.
    start = {"model": projected, "classifier": {"kernel": jnp.copy(classifier)}}
    state = trainer.replicate(init_state(start, trainer.tx))
    state, loss = trainer.train_steps(
        state, train, steps=steps, key=key, lr_scale=pc.cosine, desc=desc, progress=progress
    )
    out, _ = trainer.project(state.params["model"])
    return out, state.params["classifier"]["kernel"], loss


def compress_backbone(
    saved: SavedModel,
    *,
    private_key: Any,
    recipe: OtaRecipe = EMBEDNET,
    key: jax.Array,
    start: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> OtaResult:
    """Prunes and weight-shares an EmbedNet with retraining on its embedding task; signs a .pfb.

    Args:
      saved: the trained backbone (its info holds the last stage's config).
      private_key: Ed25519 key signing the bundle.
      recipe: what to do.
      key: PRNG key (batch orders).
      start: the parameters to compress (the model's full tree, standardisation folded), e.g.
        with the export's whitening folded in (:func:`export.artifact.whiten.fold_whitening`);
        default: the saved model's.
      progress: progress bars.
    """
    if saved.info["model"] != "embednet":
        raise ValueError(f"OTA retraining is for embednet backbones, not {saved.info['model']!r}.")
    options = {k: v for k, v in saved.info["model_options"].items() if k not in TEST_TIME}
    full = build_model("embednet", **options)
    assert isinstance(full, EmbedNet)
    module, params = fold_standardization(full, saved.params)
    if start is not None:
        if str(jax.tree.structure(dict(start))) != str(jax.tree.structure(params)):
            raise ValueError("start must hold the model's parameter tree (standardisation folded).")
        params = jax.tree.map(jnp.asarray, dict(start))
    options["standardize"] = False  # every bundle records it
    options.update(folded_options(full, module))  # and whatever else the fold turned off
    config, train = _retrain_splits(saved, recipe)
    # Train with the folded, XLA-friendly form: the same function as the saved model.
    config = dataclasses.replace(config, model_options={**options, "impl": "fast"})
    classes = int(train.labels.max()) + 1
    sparsity = per_layer(params, recipe.sparsity)
    history: list[dict[str, Any]] = []
    schedule = pc.polynomial(sparsity, recipe.rounds)
    # Imprinted once from the trained model, then trained along (the model only drifts).
    classifier = _imprinted(module, params, train, classes)
    fast = build_model("embednet", **config.model_options)
    teacher = pc.distillation_teacher(fast, params)

    for r in range(recipe.rounds):
        started = time.perf_counter()
        target = schedule(r)
        assert isinstance(target, Mapping)  # a per-layer schedule gives per-layer fractions
        prune = pc.magnitude_pruning(target)
        cstate = prune.init(params)
        params, classifier, loss = _run(
            prune,
            cstate,
            params,
            classifier,
            config=config,
            train=train,
            steps=recipe.steps_per_round,
            lr=recipe.learning_rate,
            key=jax.random.fold_in(key, r),
            desc=f"prune round {r + 1}/{recipe.rounds}",
            progress=progress,
            teacher=teacher,
            distill=recipe.distill,
        )
        by_kind = {kind_of(layer): v for layer, v in target.items()}
        history.append(
            {
                "phase": f"prune {r + 1}",
                "sparsity": by_kind,
                "loss": loss,
                "steps": recipe.steps_per_round,
                "seconds": time.perf_counter() - started,
            }
        )
    started = time.perf_counter()
    share = pc.weight_sharing(per_layer(params, recipe.bits))
    sstate = share.init(params)
    shared, _, loss = _run(
        share,
        sstate,
        params,
        classifier,
        config=config,
        train=train,
        steps=recipe.quant_steps,
        lr=recipe.quant_lr,
        key=jax.random.fold_in(key, 99),
        desc="centroid fine-tuning",
        progress=progress,
        teacher=teacher,
        distill=recipe.distill,
    )
    # Same assignments; the centroids are the members' (fine-tuned) means.
    packed = share.encode(shared, sstate)
    history.append(
        {
            "phase": "weight sharing",
            "bits": dict(recipe.bits),
            "loss": loss,
            "steps": recipe.quant_steps,
            "seconds": time.perf_counter() - started,
        }
    )
    dtype = "float16" if recipe.float16 else "float32"
    blob = build_bundle(
        packed.leaves,
        model="embednet",
        options=options,
        private_key=private_key,
        codebook_dtype=dtype,
        raw_dtype=dtype,
    )
    return OtaResult(shared, blob, history, recipe.to_dict())
