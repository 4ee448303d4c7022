"""Choosing a backbone's OTA recipe on development people: the installed int8 model, scored.

:func:`dev_score` runs the whole download path (:func:`export.artifact.download.export_download`:
whiten, compress with the candidate recipe, build the artifact from the compressed backbone, pack
the download) and scores the device's int8 ``embed`` against the uncompressed (whitened) float
backbone on the development people only: 5-shot identification over the same 10 random splits
as ``make bench-embed`` and the EER over all pairs. :data:`CANDIDATES` are the candidates
``bench_export.py --search face|fingerprint`` tries; :func:`choose` keeps the best 5-shot delta
among those whose download stays under the size budget. :func:`whitening_scores` measures the
float backbone with and without the export's whitening on the same people. The development
people are the LFW dev people for faces and the synthetic validation identities for prints; the
evaluation people (ORL, FVC, the synthetic test identities) are never read here.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from devices.contract import MODEL
from devices.cosine import normalize
from export.artifact.build import embed_batches
from export.artifact.download import export_download
from export.artifact.ota import FACE_LFW, FACE_LFW_TASK, FINGERPRINT_TASK, OtaRecipe, save_ota
from export.artifact.pipeline import fit_whitening
from export.artifact.sources import data_sources
from export.artifact.split import split_backbone, training_config, training_dataset

FACE_LFW_CANDIDATES: dict[str, OtaRecipe] = {
    "task": FACE_LFW_TASK,
    "distill": dataclasses.replace(FACE_LFW_TASK, distill=10.0),
    "distill_gentle_1x1": dataclasses.replace(
        FACE_LFW_TASK,
        distill=10.0,
        sparsity={"stem": 0.3, "depthwise": 0.55, "pointwise": 0.85, "embed": 0.9},
    ),
    "distill30_1x1_82": dataclasses.replace(
        FACE_LFW_TASK,
        distill=30.0,
        sparsity={"stem": 0.3, "depthwise": 0.55, "pointwise": 0.82, "embed": 0.9},
    ),
    "distill30_1x1_5bit": dataclasses.replace(
        FACE_LFW_TASK,
        distill=30.0,
        sparsity={"stem": 0.3, "depthwise": 0.55, "pointwise": 0.85, "embed": 0.85},
        bits={"stem": 6, "depthwise": 5, "pointwise": 5, "embed": 4},
    ),
    "distill_1x1_82_long": dataclasses.replace(
        FACE_LFW_TASK,
        distill=10.0,
        sparsity={"stem": 0.3, "depthwise": 0.55, "pointwise": 0.82, "embed": 0.9},
        steps_per_round=240,
        quant_steps=120,
    ),
    "distill_1x1_82_long3": dataclasses.replace(
        FACE_LFW_TASK,
        distill=10.0,
        sparsity={"stem": 0.3, "depthwise": 0.55, "pointwise": 0.82, "embed": 0.9},
        steps_per_round=360,
        quant_steps=180,
    ),
    # The wide face backbone (embed_face_wide.py, 1.0M parameters): its official model is 2.9x
    # the previous one's, so the 10x budget leaves room for gentler pruning.
    "wide_gentle": dataclasses.replace(FACE_LFW, steps_per_round=360, quant_steps=180),
    "wide_gentle_long": FACE_LFW,
}
"""``bench_export.py --search face``: the recipe as it stood (the task's margin softmax alone),
with a distillation term towards the float model's embeddings, and that with gentler pruning of
the 1x1 convolutions (most of the weights) paid for by the depthwise ones. Then, with the
distillation three times stronger (the dev delta is the float model's function, which the term
matches), the rest of the download budget spent two ways at the same retraining time: the 1x1
layers pruned 82% instead of 85%, or kept at 85% with 5-bit codes and the embedding layer pruned
85% (both about 5.8 KB more than ``distill_gentle_1x1``, packed without retraining). Then the
retraining itself twice as long (``distill_1x1_82_long``: 240 steps per pruning round, 120 of
centroid fine-tuning; distillation 10, the 1x1 layers pruned 82%): the chosen recipe's loss was
still falling when its rounds ended (``export.json`` ``face.ota.history``); and three times as
long (``distill_1x1_82_long3``). Those were scored on ``embed_face_lfw.py``'s backbone
(``export_search_embed_face_lfw.json``); on the wide one (``export_search.json``) the chosen
recipe against the 1x1 layers pruned 70% (``wide_gentle``) and that retrained twice as long
(``wide_gentle_long``)."""


def _distilled(pointwise: float, embed: float, steps: int) -> OtaRecipe:
    """The print task distilled (weight 10), the 1x1 / embedding layers pruned ``pointwise`` /
    ``embed``, ``steps`` retraining steps per round and half as many of centroid fine-tuning."""
    sparsity = {"stem": 0.3, "depthwise": 0.5, "pointwise": pointwise, "embed": embed}
    return dataclasses.replace(
        FINGERPRINT_TASK,
        distill=10.0,
        sparsity=sparsity,
        steps_per_round=steps,
        quant_steps=steps // 2,
    )


FINGERPRINT_CANDIDATES: dict[str, OtaRecipe] = {
    "task": FINGERPRINT_TASK,
    "distill": dataclasses.replace(FINGERPRINT_TASK, distill=10.0),
    "distill_gentle": _distilled(0.78, 0.85, FINGERPRINT_TASK.steps_per_round),
    "distill_gentler_long": _distilled(0.7, 0.8, 200),
    "distill_gentler_long3": _distilled(0.7, 0.8, 300),
    "distill_gentler_long6": _distilled(0.7, 0.8, 600),
    "distill_gentlest_long3": _distilled(0.65, 0.75, 300),
}
"""``bench_export.py --search fingerprint``: the print recipe as it stood (the task's margin
softmax alone), with the distillation term that cut the face recipe's dev loss, and that with
the 1x1 and embedding layers pruned less (78% / 85% instead of 88% / 90%), spending the download
budget's headroom. Then the rest of that headroom (1x1 / embedding layers pruned 70% / 80%)
with the retraining twice as long (``distill_gentler_long``: 200 steps per round, 100 of
centroid fine-tuning), and three times as long (``distill_gentler_long3``). On the
partial-contact backbone, whose dev prints are harder, ``distill_gentler_long3`` lost 4.4 dev
5-shot points: retraining six times as long (``distill_gentler_long6``) and the last of the
budget's headroom (1x1 / embedding layers pruned 65% / 75%, ``distill_gentlest_long3``)."""

CANDIDATES: dict[str, dict[str, OtaRecipe]] = {
    "face": FACE_LFW_CANDIDATES,
    "fingerprint": FINGERPRINT_CANDIDATES,
}
"""The candidates ``bench_export.py --search <modality>`` tries."""

MIN_DOWNLOAD_RATIO = 10.0
"""A candidate's download must stay this many times smaller than the official recipe's model."""


def dev_people(saved: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, labels, order)`` of a backbone's development people: the LFW dev people of an
    LFW-trained face backbone, the validation identities of a synthetic-print backbone."""
    from pretrain.embedding import synthetic_val_set
    from pretrain.embedding.face_data import lfw_dev_set
    from pretrain.embedding.suites import within_identity_order

    dataset = training_dataset(saved)
    options = training_config(saved).get("dataset_options", {})
    if dataset == "synthetic_fingerprints":
        dev = synthetic_val_set(**options)
        return dev.images, dev.labels, within_identity_order(dev.labels)
    if dataset != "lfw_yale_b":
        raise ValueError(
            "the dev search is for LFW-trained face and synthetic-print backbones, "
            f"not {dataset!r}."
        )
    size = tuple(options.get("input_size", (96, 80)))
    roles = {
        k: options[k] for k in ("dev_people", "background_people", "role_seed") if k in options
    }
    dev = lfw_dev_set("", size, **roles)
    return dev.images, dev.labels, within_identity_order(dev.labels)


def whitening_scores(
    model_dir: str | os.PathLike[str],
    eps_values: tuple[float, ...] = (1e-3, 1e-2, 1e-1),
    *,
    background: int = 200,
) -> dict[str, Any]:
    """The float backbone's dev 5-shot / EER unwhitened and whitened (each ``eps``), the
    whitener fitted where the export fits it (:func:`export.artifact.pipeline.fit_whitening`).

    Returns:
      ``{"none" | "eps <eps>": {"five_shot_pct", "eer_pct"}, "fit_on": ...}``.
    """
    import pretrain
    from pretrain.evaluation.repeated import face_report

    saved = pretrain.load_model(model_dir)
    backbone = split_backbone(saved)
    images, labels, order = dev_people(saved)
    raw = backbone.embeddings(images)
    sources = data_sources(saved, calibration=4, background=background)

    def scores(e: np.ndarray) -> dict[str, float]:
        r = face_report(e, labels, order=order)
        return {
            "five_shot_pct": float(r["identification_pct"]["5"]),
            "eer_pct": float(r["eer_pct"]),
        }

    out: dict[str, Any] = {"none": scores(raw)}
    record: dict[str, Any] = {}
    for eps in eps_values:
        w, record = fit_whitening(backbone, sources, eps)
        out[f"eps {eps:g}"] = scores(normalize(raw @ w))
    out["fit_on"] = record.get("fit_on", "")
    return out


def dev_score(
    model_dir: str | os.PathLike[str],
    recipe: OtaRecipe,
    *,
    private_key: Any,
    key: jax.Array,
    background: int = 1000,
    progress: bool = True,
    keep: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The installed int8 model of ``recipe``'s download vs the float backbone, on dev people.
    ``keep``: a folder to save the compression in (:func:`export.artifact.ota.save_ota`), so the
    export of the chosen candidate ships the very bytes scored here.

    Returns:
      ``five_shot_pct`` / ``eer_pct`` per model (``float``, ``compressed_int8``), their deltas
      (compressed minus float, points), ``download_bytes``, ``seconds`` and the recipe.
    """
    import pretrain
    from pretrain.evaluation.repeated import face_report

    saved = pretrain.load_model(model_dir)
    images, labels, order = dev_people(saved)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        down = export_download(
            model_dir,
            Path(tmp) / "artifact",
            private_key=private_key,
            key=key,
            recipe=recipe,
            background=background,
            progress=progress,
        )
    if keep is not None:
        save_ota(down.ota, keep)
    reports = {
        "float": face_report(down.float_backbone.embeddings(images), labels, order=order),
        "compressed_int8": face_report(
            embed_batches(down.files[MODEL], images), labels, order=order
        ),
    }
    five = {k: float(r["identification_pct"]["5"]) for k, r in reports.items()}
    eer = {k: float(r["eer_pct"]) for k, r in reports.items()}
    return {
        "recipe": recipe.to_dict(),
        "five_shot_pct": five,
        "eer_pct": eer,
        "five_shot_delta_pts": five["compressed_int8"] - five["float"],
        "eer_delta_pts": eer["compressed_int8"] - eer["float"],
        "download_bytes": len(down.bundle),
        "history": down.ota.history,
        "seconds": time.perf_counter() - started,
    }


def choose(scores: Mapping[str, Mapping[str, Any]], max_download_bytes: float) -> str:
    """The best dev 5-shot delta (ties: the smaller EER delta) among downloads within budget."""
    within = {k: s for k, s in scores.items() if s["download_bytes"] <= max_download_bytes}
    if not within:
        raise ValueError(
            f"no candidate's download is within {max_download_bytes:.0f} bytes "
            f"(smallest {min(s['download_bytes'] for s in scores.values())}); prune more."
        )
    return max(
        within, key=lambda k: (within[k]["five_shot_delta_pts"], -within[k]["eer_delta_pts"])
    )


def merge_search(
    old: Mapping[str, Any], scores: Mapping[str, Mapping[str, Any]], max_download_bytes: float
) -> dict[str, Any]:
    """An ``export_search.json`` record with ``scores`` merged in.

    Candidates scored again replace their old entries; every other candidate and every other
    top-level key of ``old`` (notes) is kept; ``chosen`` is recomputed over all candidates.

    Args:
      old: the record as read (``{}`` for none).
      scores: newly scored candidates, by name (:func:`dev_score` results).
      max_download_bytes: the download budget :func:`choose` applies.
    """
    candidates = {**old.get("candidates", {}), **scores}
    return {
        **old,
        "candidates": candidates,
        "chosen": choose(candidates, max_download_bytes),
        "max_download_bytes": max_download_bytes,
    }
