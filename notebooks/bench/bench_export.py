"""bench-export: LiteRT artifacts of the embedding backbones (and the LeNets), measured.

Command:
  make bench-export
  python notebooks/bench/bench_export.py [--only face fingerprint lenet300 lenet5]
      [--model face=DIR ...] [--key ~/.config/pocketfit/signing.key] [--smoke | --dry-run]
  python notebooks/bench/bench_export.py --search face|fingerprint [--candidates NAME ...] [--smoke]

Per embedding backbone (``notebooks/results/models/embed_face_lfw`` and ``embed_fingerprint``;
rerunning picks up whatever weights those folders hold): the head-only float32 and int8
artifacts of the uncompressed backbone (the headline ``float_bytes`` / ``int8_bytes``); the
download (``export.artifact.download``: whiten, Deep Compression retrained on the embedding task,
kernels on their int8 grid, the head-only artifact built from them, packed into one signed
``.pfb``), its bytes by part, installed bytes and peak RAM, the official TFLite recipe's model of
the same network, and an install from it (``python -m personalize install``'s function) compared
byte for byte; the committed int8 artifact with every scope built from the same compressed
backbone (its weights bundle inside); ``embed`` latency per
image and ``train`` latency per step in the LiteRT interpreter (1 thread, median); the embedding
protocol (1/3/5-shot identification by imprinting, EER) on the people pretraining never saw, for
the float JAX model, the int8 artifact, the decoded compressed backbone and the installed
download's int8 model (also over 10 random enrollment splits, as bench-embed). The LeNets (if their models and
bundles exist) get the same sizes, latencies and 5-shot identification on the MNIST test digits.

Writes notebooks/results/export.json, notebooks/results/artifacts/{face,fingerprint,lenet300,
lenet5}/ and the downloads artifacts/{face,fingerprint}.pfb, with artifacts/signing.pub (the private key stays at --key, created
there if missing, never inside the repository). --smoke uses a tiny OTA recipe and writes into a
temporary folder only; --dry-run runs everything but writes nothing either.

--search face scores export.artifact.ota_search.FACE_LFW_CANDIDATES on the LFW development
people only (the installed int8 model vs the float backbone; about 20-30 minutes per candidate)
and writes notebooks/results/export_search.json after each candidate, merged with the candidates
already there (export.artifact.ota_search.merge_search; each records its own command and commit);
--search fingerprint does the same for FINGERPRINT_CANDIDATES on the synthetic validation
identities (export_search_fingerprint.json, with the whitening choice's figures).

Time here (2 shared CPU cores): about 10 minutes (9:23 measured, 12:49 with other jobs running;
most of it the OTA retraining).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from _results import RESULTS, ROOT, print_table, run_main, shown, write_results

import export
import pretrain
from devices import host_info
from devices.bundle import download as dl
from devices.contract import BACKGROUND_MINUTIAE, MODEL
from devices.files import atomic_write
from devices.print_minutiae import read_prints
from devices.views import views_of_input
from export.artifact import build_artifact, ota_search
from export.artifact.convert import size_breakdown, subgraph_ops
from export.artifact.download import export_download
from export.artifact.ota import load_ota, recipe_for
from export.artifact.pipeline import export_model, signing_key
from export.artifact.split import (
    preprocess_of,
    split_backbone,
    training_config,
    training_dataset,
)
from export.baselines import build_official
from personalize import install
from pretrain.embedding import face_options, fvc_sensor_sets, orl_subjects, synthetic_test_set
from pretrain.embedding.face_data import lfw_dev_set
from pretrain.embedding.face_suite import orl_faces
from pretrain.embedding.suites import within_identity_order
from pretrain.evaluation import evaluate_features, identification_accuracy
from pretrain.evaluation.repeated import face_report

EMBEDDINGS = ("face", "fingerprint")
LENETS = ("lenet300", "lenet5")
SCOPES = ("head", "head_biases", "last_block")
REPEATS = 50
TRAIN_BATCH = 5  # one enrollment: 5 shots
CLASSES = 8  # head slots of every artifact (and of the official recipe's Dense head)
# Background rows of the downloads: faces, the LFW background role (all 1,000 people); prints,
# 200 impressions of 100 fresh generator identities, alternately drawn by the model's generator and
# the default one (export.artifact.sources.BACKGROUND_GENERATORS: 400 rows calibrated better on
# the dev people but cost the download its 10x margin under the official recipe).
BACKGROUND_PEOPLE = {"face": 1000, "fingerprint": 200}
MODELS = {"face": "embed_face_lfw", "fingerprint": "embed_fingerprint"}
OTA_KEPT = ROOT / "runs" / "ota-search"  # --search keeps each candidate's compression here


def median_ms(fn: Any, repeats: int = REPEATS) -> float:
    fn()  # warm-up (allocations, XNNPACK packing)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - started))
    return statistics.median(times)


def latencies(model: bytes, manifest: dict[str, Any], image: np.ndarray) -> dict[str, float]:
    """``embed`` per image and each train signature per step (batch 5), median, 1 thread."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=1)
    embed = it.get_signature_runner("embed")
    x = image[None].astype(np.float32)
    out = {"embed_ms": median_ms(lambda: embed(images=x))}
    batch = np.repeat(x, TRAIN_BATCH, axis=0)
    cached = embed(images=batch)
    labels = np.arange(TRAIN_BATCH, dtype=np.int32) % 2
    lr, wd = np.float32(0.01), np.float32(1e-4)
    for scope, info in manifest["scopes"].items():
        runner = it.get_signature_runner(info["signature"])
        source = cached[info["input"]]
        key = "train_step_ms" if scope == "head" else f"train_{scope}_step_ms"
        out[key] = median_ms(
            lambda r=runner, s=source, n=info["input"]: r(
                **{n: s}, labels=labels, lr=lr, weight_decay=wd
            )
        )
    return out


def interpreter_embed(
    model: bytes, images: np.ndarray, batch: int = 64, *, refine: bool = False
) -> np.ndarray:
    """The ``embed`` signature's embeddings; ``refine=True``: its int8 ``features`` through the
    float ``refine`` signature instead (where int8 loses accuracy: front or last block)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=2)
    runner, last = (
        it.get_signature_runner("embed"),
        it.get_signature_runner("refine") if refine else None,
    )
    out = []
    for i in range(0, len(images), batch):
        got = runner(images=np.asarray(images[i : i + batch], np.float32))
        out.append(last(features=got["features"])["embeddings"] if last else got["embeddings"])
    return np.concatenate(out)


def embed_ops(model: bytes) -> dict[str, Any]:
    """Operator counts of the ``embed`` subgraph and the fused activations of its convolutions."""
    ops = subgraph_ops(model, "embed")
    counts: dict[str, int] = {}
    for name, _ in ops:
        counts[name] = counts.get(name, 0) + 1
    acts = sorted({str(a) for n, a in ops if n.endswith("CONV_2D")})
    return {"counts": counts, "conv_fused_activations": acts}


def five_shot_flips(
    reference: np.ndarray,
    other: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    owners: np.ndarray | None = None,
) -> dict[str, Any]:
    """Which 5-shot probes change their answer between two embeddings of the same images, and
    the float cosine margin (best - runner-up template) each changed probe had: a probe that
    flips on a margin of a few thousandths is a tie, not a calibration failure. ``owners``: a
    probe is not offered its own owner's other labels (``pretrain.evaluation``)."""
    from pretrain.evaluation.protocol import (
        enroll_probe_split,
        imprint,
        normalize,
        offered,
        owner_of_labels,
    )

    enroll, probe = enroll_probe_split(labels, pool=5, order=order)
    chosen = np.concatenate([enroll[labels[enroll] == c][:5] for c in np.unique(labels)])
    owner_of = None if owners is None else owner_of_labels(labels, owners)
    right, scores = {}, {}
    for name, features in (("reference", reference), ("other", other)):
        classes, templates = imprint(features[chosen], labels[chosen])
        sims = normalize(features[probe]) @ templates.T
        allowed = offered(labels[probe], classes, owner_of)
        scores[name] = sims if allowed is None else np.where(allowed, sims, -np.inf)
        right[name] = classes[np.argmax(scores[name], axis=1)] == labels[probe]
    top = np.sort(scores["reference"], axis=1)
    margins = top[:, -1] - top[:, -2]
    lost = right["reference"] & ~right["other"]
    gained = ~right["reference"] & right["other"]
    changed = lost | gained
    return {
        "lost": int(lost.sum()),
        "gained": int(gained.sum()),
        "float_margins_of_changed": [round(float(m), 5) for m in margins[changed]],
        "float_margin_median_all": float(np.median(margins)),
    }


def jax_embed(module: Any, params: Any, images: np.ndarray, batch: int = 200) -> np.ndarray:
    from pretrain.embedding import embed

    return embed(module, params, images, batch_size=batch)


def protocol(
    features: np.ndarray, labels: np.ndarray, order: np.ndarray, owners: np.ndarray | None = None
) -> dict[str, Any]:
    report = evaluate_features(features, labels, order=order, owners=owners)
    return {"identification_pct": report["identification_pct"], "eer_pct": report["eer_pct"]}


def evaluation_sets(modality: str, saved: Any) -> dict[str, tuple[Any, ...]]:
    """``{set: (images, labels, order, owners)}``: the protocol's people, never seen in
    pretraining (the first set is the headline one: ORL all 40 for faces, held-out synthetic
    for prints); ``owners`` is None but for FVC, where two sets hold the same fingers."""
    options = training_config(saved).get("dataset_options", {})
    if modality == "face" and training_dataset(saved) == "lfw_yale_b":
        size = tuple(options.get("input_size", (96, 80)))
        roles = {
            k: options[k] for k in ("dev_people", "background_people", "role_seed") if k in options
        }
        orl, dev = orl_faces(size), lfw_dev_set("", size, **roles)
        return {
            "orl": (orl.images, orl.labels, within_identity_order(orl.labels), None),
            "lfw_dev": (dev.images, dev.labels, within_identity_order(dev.labels), None),
        }
    if modality == "face":  # preprocessed as in training (input_size / crop options)
        faces = orl_subjects(range(21, 41), "", **face_options(options))
        order = within_identity_order(faces.labels)
        return {"orl_s21_s40": (faces.images, faces.labels, order, None)}
    held = synthetic_test_set(**options)
    # the prints cut as the model's spec cuts them
    prints = fvc_sensor_sets(spec=preprocess_of(saved))
    return {
        "synthetic_held_out": (held.images, held.labels, within_identity_order(held.labels), None),
        "fvc": (prints.images, prints.labels, prints.impressions, prints.owners),
    }


def artifact_bytes(directory: Path) -> int:
    return (directory / MODEL).stat().st_size


def build_sizes(model_dir: Path, tmp: Path, key: Any, scopes: tuple[str, ...]) -> dict[str, Any]:
    """model.tflite bytes of float32 and int8 artifacts with ``scopes``, and where they go."""
    out: dict[str, Any] = {"breakdown": {}}
    for name, int8 in (("float_bytes", False), ("int8_bytes", True)):
        target = tmp / f"{model_dir.name}-{name}"
        export_model(model_dir, target, scopes=scopes, private_key=key, int8=int8)
        out[name] = artifact_bytes(target)
        out["breakdown"][name.split("_")[0]] = size_breakdown((target / MODEL).read_bytes())
    return out


def download_parts(record_bytes: dict[str, int], total: int) -> dict[str, int]:
    """A download's bytes by what they carry (the container's header and signature apart)."""
    side = {
        dl.SKELETON: "model_skeleton",
        dl.BACKGROUND_Q: "background",
        dl.BACKGROUND_EXPONENT: "background",
        dl.MANIFEST_RECORD: "manifest",
        dl.SIGNATURE_RECORD: "manifest_signature",
    }
    parts: dict[str, int] = {}
    for name, size in record_bytes.items():
        part = side.get(name, "compressed_weights")
        parts[part] = parts.get(part, 0) + size
    parts["container_and_signature"] = total - sum(parts.values())
    return parts


def installed_identical(bundle: Path, files: dict[str, bytes], public: Path, tmp: Path) -> bool:
    """Installs ``bundle`` as the device does and compares every file with the signed ones."""
    target = tmp / f"installed-{bundle.stem}"
    install(bundle, target, public)
    got = {p.name: p.read_bytes() for p in target.iterdir()}
    return got.keys() == files.keys() and all(got[n] == files[n] for n in files)


def repeated(
    features: np.ndarray, labels: np.ndarray, order: np.ndarray, owners: np.ndarray | None
) -> dict[str, Any]:
    """bench-embed's figures: identification over 10 random enrollment splits, EER."""
    report = face_report(features, labels, order=order, owners=owners)
    return {"identification_pct": report["identification_pct"], "eer_pct": report["eer_pct"]}


def run_embedding(
    modality: str,
    model_dir: Path,
    out_dir: Path,
    key: Any,
    tmp: Path,
    *,
    smoke: bool,
    ota_dir: Path | None = None,
    minutiae: bool = False,
) -> dict[str, Any]:
    print(f"\n== {modality}: {model_dir} ==", flush=True)
    saved = pretrain.load_model(model_dir)
    backbone = split_backbone(saved)
    result: dict[str, Any] = {"model_dir": shown(model_dir), "params": saved.info["params"]}
    started = time.perf_counter()
    head_only = build_sizes(model_dir, tmp, key, ("head",))
    result.update(head_only)
    result["int8_vs_float"] = head_only["int8_bytes"] / head_only["float_bytes"]
    wide = build_sizes(model_dir, tmp, key, SCOPES)
    result["all_scopes"] = {**wide, "int8_vs_float": wide["int8_bytes"] / wide["float_bytes"]}
    result["convert_s"] = time.perf_counter() - started

    print("download: whiten, prune + weight sharing on the embedding task, int8 grid", flush=True)
    recipe = recipe_for(saved)
    if smoke:
        recipe = dataclasses.replace(recipe, rounds=1, steps_per_round=2, quant_steps=2)
    started = time.perf_counter()
    bundle_path = tmp / f"{modality}.pfb"
    down = export_download(
        model_dir,
        tmp / f"{modality}-download",
        private_key=key,
        key=jax.random.key(0),
        recipe=recipe,
        background=BACKGROUND_PEOPLE[modality],
        bundle_path=bundle_path,
        ota=None if ota_dir is None else load_ota(ota_dir),
        minutiae=minutiae,
    )
    result["ota_reused_from"] = None if ota_dir is None else shown(ota_dir)
    ota = down.ota
    float_backbone = 4 * pretrain.count_params((backbone.front_params, backbone.last_params))
    result["pfb_bytes"] = len(ota.bundle)
    result["pfb_ratio_vs_float_backbone"] = float_backbone / len(ota.bundle)
    result["pfb_vs_float_artifact"] = len(ota.bundle) / head_only["float_bytes"]
    result["ota"] = {
        "recipe": ota.recipe,
        "history": ota.history,
        "seconds": time.perf_counter() - started,
        "float_backbone_bytes": float_backbone,
    }
    public = out_dir.parent / "signing.pub"
    parsed = dl.read_download(down.bundle, public_key=public)
    memory = down.manifest["memory_peak_bytes"]["phone_cpu"]
    result["download_bytes"] = len(down.bundle)
    result["download_parts"] = download_parts(parsed.record_bytes, parsed.nbytes)
    result["stored_bytes"] = sum(len(d) for d in down.files.values())
    result["stored_files"] = {n: len(d) for n, d in sorted(down.files.items())}
    result["peak_ram_bytes"] = max(memory.values())
    result["peak_ram"] = {"profile": "phone_cpu", "per_signature": memory}
    print("official TFLite on-device training recipe, same network", flush=True)
    result["official_download_bytes"] = len(build_official(backbone, CLASSES))
    result["official_vs_download"] = result["official_download_bytes"] / len(down.bundle)
    result["installed_from_bundle_identical"] = installed_identical(
        bundle_path, down.files, public, tmp
    )

    sources = down.sources
    manifest = build_artifact(
        down.backbone,
        out_dir,
        private_key=key,
        calibration=sources.calibration,
        background_images=sources.background[: BACKGROUND_PEOPLE[modality]],
        background_source=sources.background_source,
        scopes=SCOPES,
        background_levels=down.manifest["background"]["levels"],
        views=views_of_input(down.manifest["input"]),
        bundle=ota.bundle,
        source={**down.manifest["source"], "model_dir": shown(model_dir)},
        background_prints=(
            read_prints(down.files[BACKGROUND_MINUTIAE], BACKGROUND_MINUTIAE)
            if BACKGROUND_MINUTIAE in down.files
            else None
        ),
    )
    model = (out_dir / MODEL).read_bytes()
    device_model = down.files[MODEL]
    sets = evaluation_sets(modality, saved)
    first = next(iter(sets.values()))[0][0]
    result.update(latencies(model, manifest, first))
    result["embed_ops"] = embed_ops(model)
    result["artifact"] = {
        "dir": shown(out_dir),
        "bytes": artifact_bytes(out_dir),
        "scopes": list(manifest["scopes"]),
        "memory_peak_bytes": manifest["memory_peak_bytes"],
    }
    if not smoke:
        atomic_write(out_dir.parent / f"{modality}.pfb", down.bundle)
        result["download"] = shown(out_dir.parent / f"{modality}.pfb")

    result["whitening"] = down.whitening
    views = views_of_input(manifest["input"])
    result["flip_average"] = views.mirror
    result["views"] = views.to_dict()
    uncompressed_int8 = (tmp / f"{model_dir.name}-int8_bytes" / MODEL).read_bytes()
    accuracy: dict[str, Any] = {}
    for name, (images, labels, order, owners) in sets.items():
        print(f"protocol on {name} ({len(images)} images)", flush=True)
        trained_e = jax_embed(saved.module, saved.params, images)
        float_e = down.float_backbone.embeddings(images)
        int8_e = interpreter_embed(uncompressed_int8, images)
        device_e = interpreter_embed(device_model, images)
        row: dict[str, Any] = {
            "float": protocol(float_e, labels, order, owners),
            "float_as_trained": protocol(trained_e, labels, order, owners),
            "int8": protocol(int8_e, labels, order, owners),
            "ota_decoded": protocol(down.backbone.embeddings(images), labels, order, owners),
            "compressed_int8": protocol(device_e, labels, order, owners),
            "int8_front_float_last": protocol(
                interpreter_embed(model, images, refine=True), labels, order, owners
            ),
            "repeated_splits": {
                "float": repeated(float_e, labels, order, owners),
                "compressed_int8": repeated(device_e, labels, order, owners),
            },
        }
        rep = row["repeated_splits"]
        row["compressed_identification_5shot_delta_pts"] = (
            rep["compressed_int8"]["identification_pct"]["5"]
            - rep["float"]["identification_pct"]["5"]
        )
        row["compressed_eer_delta_pts"] = (
            rep["compressed_int8"]["eer_pct"] - rep["float"]["eer_pct"]
        )
        row["int8_loss_5shot_pts"] = (
            row["float"]["identification_pct"]["5"] - row["int8"]["identification_pct"]["5"]
        )
        row["ota_loss_5shot_pts"] = (
            row["float"]["identification_pct"]["5"] - row["ota_decoded"]["identification_pct"]["5"]
        )
        row["int8_within_0_5_pts"] = row["int8_loss_5shot_pts"] <= 0.5
        row["int8_float_cosine_mean"] = float(np.mean(np.sum(int8_e * float_e, axis=1)))
        row["int8_5shot_flips"] = five_shot_flips(float_e, int8_e, labels, order, owners)
        row["samples"] = len(images)
        row["identities"] = int(np.unique(labels).size)
        # One probe changing its answer moves 5-shot accuracy by this much.
        row["probes"] = len(images) - 5 * row["identities"]
        row["pts_per_probe"] = 100.0 / row["probes"]
        accuracy[name] = row
    result["accuracy"] = accuracy
    headline = next(iter(accuracy.values()))
    result["compressed_identification_5shot_delta_pts"] = headline[
        "compressed_identification_5shot_delta_pts"
    ]
    result["compressed_eer_delta_pts"] = headline["compressed_eer_delta_pts"]
    result["targets"] = {
        "official_vs_download_ge_10": result["official_vs_download"] >= 10,
        "installed_from_bundle_identical": result["installed_from_bundle_identical"],
        "compressed_5shot_delta_ge_-1": result["compressed_identification_5shot_delta_pts"] >= -1,
        "compressed_eer_delta_le_0_5": result["compressed_eer_delta_pts"] <= 0.5,
        "int8_vs_float_le_0_40": result["int8_vs_float"] <= 0.40,
    }
    return result


def run_lenet(name: str, model_dir: Path, out_dir: Path, key: Any, tmp: Path) -> dict[str, Any]:
    print(f"\n== {name}: {model_dir} ==", flush=True)
    result: dict[str, Any] = build_sizes(model_dir, tmp, key, ("head",))
    result["int8_vs_float"] = result["int8_bytes"] / result["float_bytes"]
    bundle = RESULTS / "bundles" / f"{name}.pfb"
    bundle_key = RESULTS / "bundles" / "signing.pub"
    has_bundle = bundle.is_file() and bundle_key.is_file()
    # Head only: the wide scopes would ship the float 800x500 fc1 of LeNet-5 as variables.
    manifest = export_model(
        model_dir,
        out_dir,
        scopes=("head",),
        private_key=key,
        int8=True,
        bundle=bundle if has_bundle else None,
        bundle_key=bundle_key if has_bundle else None,
    )
    if has_bundle:
        result["pfb_bytes"] = manifest["ota"]["bytes"]
        result["pfb_ratio_vs_float_network"] = export.read_bundle(
            bundle, public_key=bundle_key
        ).ratio
        result["pfb_vs_float_artifact"] = manifest["ota"]["bytes"] / result["float_bytes"]
        result["pfb_note"] = (
            "the bench-compression bundle of the whole LeNet (classifier layer included), signed "
            "by its own key (notebooks/results/bundles/signing.pub)"
        )
    model = (out_dir / MODEL).read_bytes()
    test = pretrain.load_mnist("test")
    result.update(latencies(model, manifest, test.images[0]))
    saved = pretrain.load_model(model_dir)
    backbone = split_backbone(saved)
    embed = jax.jit(backbone.embed())
    order = np.arange(len(test))
    float_e = np.concatenate(
        [np.asarray(embed(test.images[i : i + 1000])) for i in range(0, len(test), 1000)]
    )
    int8_e = interpreter_embed(model, test.images)
    f = identification_accuracy(float_e, test.labels, order=order)
    q = identification_accuracy(int8_e, test.labels, order=order)
    result["accuracy"] = {
        "mnist_test": {
            "float": {"identification_pct": f},
            "int8": {"identification_pct": q},
            "int8_loss_5shot_pts": f["5"] - q["5"],
            "samples": len(test),
            "identities": 10,
        }
    }
    result["artifact"] = {
        "dir": shown(out_dir),
        "bytes": artifact_bytes(out_dir),
        "model_dir": shown(model_dir),
    }
    return result


def table(results: dict[str, Any]) -> None:
    rows = []
    for name, r in results.items():
        acc = next(iter(r["accuracy"].values()))
        rows.append(
            (
                name,
                r["float_bytes"],
                r["int8_bytes"],
                r.get("pfb_bytes", "-"),
                r.get("download_bytes", "-"),
                r.get("official_download_bytes", "-"),
                r["embed_ms"],
                r["train_step_ms"],
                acc["float"]["identification_pct"]["5"],
                acc["int8"]["identification_pct"]["5"],
                r.get("compressed_identification_5shot_delta_pts", "-"),
                r.get("compressed_eer_delta_pts", "-"),
            )
        )
    print()
    print_table(
        (
            "backbone",
            "float B",
            "int8 B",
            ".pfb B",
            "download B",
            "official B",
            "embed ms",
            "train ms",
            "5-shot float %",
            "5-shot int8 %",
            "5-shot compressed - float",
            "EER compressed - float",
        ),
        rows,
    )


SEARCH_FILES = {"face": "export_search", "fingerprint": "export_search_fingerprint"}
SEARCH_PEOPLE = {
    "face": "the 120 LFW dev people",
    "fingerprint": "the 100 synthetic validation identities x 8 impressions",
}


def run_search(args: Any, dirs: dict[str, Path], key: Any) -> int:
    """``--search face|fingerprint``: the OTA recipe candidates scored on the development people
    only (export.artifact.ota_search) -> notebooks/results/export_search[_fingerprint].json
    (merged per candidate); for prints also the float backbone's dev figures with and without
    whitening (what chose ``export.artifact.whiten.UNWHITENED``)."""
    modality = args.search
    saved = pretrain.load_model(dirs[modality])
    candidates = dict(ota_search.CANDIDATES[modality])
    if args.candidates:
        unknown = sorted(set(args.candidates) - set(candidates))
        if unknown:
            print(f"unknown candidate(s) {unknown}; known: {sorted(candidates)}", file=sys.stderr)
            return 2
        candidates = {k: candidates[k] for k in args.candidates}
    if args.smoke:
        candidates = {
            k: dataclasses.replace(r, rounds=1, steps_per_round=2, quant_steps=2, max_identities=50)
            for k, r in candidates.items()
        }
    official = len(build_official(split_backbone(saved), CLASSES))
    budget = official / ota_search.MIN_DOWNLOAD_RATIO
    path = RESULTS / f"{SEARCH_FILES[modality]}.json"
    extra: dict[str, Any] = {}
    saved_search = json.loads(path.read_text()) if path.is_file() and not args.smoke else {}
    # The whitening figures depend on the backbone only: a run of some candidates keeps them.
    if modality == "fingerprint" and not (args.candidates and "whitening" in saved_search):
        print("\n== whitening (float backbone, dev identities) ==", flush=True)
        extra["whitening"] = ota_search.whitening_scores(dirs[modality])
        print(json.dumps(extra["whitening"], indent=1), flush=True)
    for name, recipe in candidates.items():
        print(f"\n== candidate {name} ==", flush=True)
        s = ota_search.dev_score(
            dirs[modality],
            recipe,
            private_key=key,
            key=jax.random.key(0),
            background=BACKGROUND_PEOPLE[modality],
            keep=None if args.smoke else OTA_KEPT / modality / name,
        )
        print(
            f"{name}: dev 5-shot {s['five_shot_pct']['float']:.2f} -> "
            f"{s['five_shot_pct']['compressed_int8']:.2f} ({s['five_shot_delta_pts']:+.2f}), "
            f"EER {s['eer_delta_pts']:+.2f}, {s['download_bytes']} bytes, {s['seconds']:.0f} s",
            flush=True,
        )
        host = host_info(ROOT)
        # Each candidate keeps its own provenance: the top-level machine and command are the
        # last merge's only.
        s["run"] = {"command": " ".join(sys.argv), **{k: host[k] for k in ("git_commit", "utc")}}
        # Merged and written after every candidate, reading the file now: a later candidate's
        # crash keeps this one, and candidates may run in parallel processes.
        old = json.loads(path.read_text()) if path.is_file() and not args.smoke else {}
        figures = {
            **ota_search.merge_search(old, {name: s}, budget),
            **extra,
            "official_download_bytes": official,
            "rule": "best dev 5-shot delta (installed int8 compressed minus float, mean over 10 "
            f"random enrollment splits of {SEARCH_PEOPLE[modality]}; ties: smaller EER delta) "
            f"among downloads >= {ota_search.MIN_DOWNLOAD_RATIO:g}x smaller than the official "
            "recipe's",
            "model_dir": shown(dirs[modality]),
        }
        print(json.dumps({k: v for k, v in figures.items() if k != "candidates"}, indent=1))
        if not args.smoke:
            print(f"wrote {write_results(SEARCH_FILES[modality], figures)}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", nargs="+", choices=(*EMBEDDINGS, *LENETS), default=[*EMBEDDINGS, *LENETS]
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="use another model directory for NAME",
    )
    parser.add_argument(
        "--key",
        default=str(export.bundle.DEFAULT_PRIVATE_KEY),
        help="Ed25519 private key (PEM), kept outside the repository",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny OTA recipe, temporary output")
    parser.add_argument(
        "--minutiae",
        action="store_true",
        help="the fingerprint artifact and download ship the background people's prints (the "
        "minutiae fusion, devices.print_minutiae)",
    )
    parser.add_argument("--dry-run", action="store_true", help="full run, temporary output")
    parser.add_argument(
        "--search",
        choices=tuple(SEARCH_FILES),
        help="score the OTA recipe candidates on the development people -> "
        "export_search.json (face), export_search_fingerprint.json",
    )
    parser.add_argument(
        "--candidates", nargs="+", default=[], help="with --search: these candidates only"
    )
    parser.add_argument(
        "--ota",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="ship the compression a --search run kept in DIR (runs/ota-search/NAME/<candidate>; "
        "its recipe must be NAME's registered one) instead of compressing again",
    )
    args = parser.parse_args()
    dirs = {m: RESULTS / "models" / MODELS[m] for m in EMBEDDINGS}
    dirs.update({m: RESULTS / "models" / m for m in LENETS})
    for item in args.model:
        name, _, path = item.partition("=")
        if name not in dirs or not path:
            parser.error(f"--model wants NAME=DIR with NAME in {', '.join(dirs)}, got {item!r}")
        dirs[name] = Path(path)
    reuse: dict[str, Path] = {}
    for item in args.ota:
        name, _, path = item.partition("=")
        if name not in EMBEDDINGS or not path:
            parser.error(f"--ota wants NAME=DIR with NAME in {', '.join(EMBEDDINGS)}, got {item!r}")
        reuse[name] = Path(path)
    missing = [m for m in args.only if not (dirs[m] / "model.json").is_file()]
    for m in missing:
        print(f"skipping {m}: no model at {dirs[m]}", file=sys.stderr)
    key = signing_key(args.key, create=True)
    if args.search:
        return run_search(args, dirs, key)
    scratch = args.smoke or args.dry_run
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        artifacts = tmp / "artifacts" if scratch else RESULTS / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        # Artifacts this run does not rebuild must still verify against the key beside them.
        rebuilt = {m for m in args.only if m not in missing}
        kept = [f"artifacts/{m}" for m in dirs if m not in rebuilt and (artifacts / m).is_dir()]
        try:
            export.bundle.replace_public_key(
                key.public_key(), artifacts / "signing.pub", signed=[] if scratch else kept
            )
        except export.bundle.BundleError as err:
            every = " ".join(dirs)
            print(f"bench_export.py: error: {err} (all: --only {every})", file=sys.stderr)
            return 2
        for name in [m for m in args.only if m not in missing]:
            if name in EMBEDDINGS:
                results[name] = run_embedding(
                    name,
                    dirs[name],
                    artifacts / name,
                    key,
                    tmp,
                    smoke=args.smoke,
                    ota_dir=reuse.get(name),
                    minutiae=args.minutiae and name == "fingerprint",
                )
            else:
                results[name] = run_lenet(name, dirs[name], artifacts / name, key, tmp)
            if scratch:
                shutil.rmtree(artifacts / name, ignore_errors=True)
    if not results:
        print("nothing to measure", file=sys.stderr)
        return 1
    table(results)
    figures = {
        **results,
        "notes": {
            "float_bytes/int8_bytes": "model.tflite of the head-only artifact (embed + train + "
            "infer + weights I/O), float32 vs int8 embed; all_scopes: the same with the "
            "head_biases and last_block scopes, whose last block is float variables in both "
            "(their starting kernels stored int8 + per-channel scales in the int8 artifact, "
            "float32 in the float one); tensor names stripped from both",
            "pfb_bytes": "the signed Deep Compression bundle of the backbone's weights (OTA "
            "form: the whitened backbone pruned and weight-shared on its embedding task)",
            "download_bytes": "everything a phone downloads to install the head-only artifact: "
            "one signed .pfb (devices.bundle.download) holding the compressed kernels, the model "
            "file with their int8 buffers zeroed (XZ), the background (rows of small integers "
            "x 2**e, the manifest's background.levels), the manifest (XZ) and its signature; "
            "download_parts splits it",
            "stored_bytes": "the installed artifact's files (model.tflite, background.npy, "
            "manifest, signature)",
            "peak_ram_bytes": "the planner's peak resident memory of the installed artifact's "
            "costliest signature on phone_cpu (manifest memory_peak_bytes)",
            "official_download_bytes": "model.tflite of the official TFLite on-device training "
            "recipe (export.baselines.build_official: float32 backbone + Keras Dense head, 8 "
            "classes) for the same network, as trained",
            "installed_from_bundle_identical": "python -m personalize install of the download, "
            "run in this bench: every file equal byte for byte to the signed artifact's",
            "compressed_identification_5shot_delta_pts": "5-shot identification (class-mean "
            "imprinting, mean over 10 random enrollment splits: pretrain.evaluation.face_report, "
            "as bench-embed) of the installed int8 compressed model minus the float model (the "
            "uncompressed backbone, whitened where the export whitens: not the LFW face "
            "backbone, export.artifact.whiten.UNWHITENED), on the headline set (ORL all "
            "40 people for faces, held-out synthetic prints); per set in accuracy.*",
            "compressed_eer_delta_pts": "EER (all pairs) of the same two, compressed - float",
            "embed_ms": "LiteRT interpreter, 1 thread, one image, median of 50",
            "train_step_ms": "the head's train signature, batch 5 (one enrollment), median of 50",
            "accuracy": "k-shot identification by imprinting (the embedding protocol) on people "
            "pretraining never saw; float = the artifact's function in float32 (the trained "
            "EmbedNet with the export's whitening folded into its last layer, see whitening), "
            "float_as_trained = the model as pretrained (bench-embed's); int8 = the uncompressed "
            "int8 head-only artifact's embed; ota_decoded = the compressed backbone in float "
            "(kernels on their int8 grid); compressed_int8 = the installed download's embed "
            "(the model the device runs); "
            "int8_front_float_last = its int8 features through the float refine signature (a "
            "diagnostic: how much of the int8 loss is the last block's); "
            "int8_float_cosine_mean: mean cosine of each image's int8 and float embeddings; "
            "int8_5shot_flips: 5-shot probes int8 gets wrong that float gets right (lost) and "
            "the reverse (gained), with the float top-1 minus top-2 cosine margin of each",
            "embed_ops": "operators of the committed artifact's embed subgraph (EmbedNets: built "
            "in TensorFlow ops, export.artifact.tfnative, so bias and ReLU6 fuse into each "
            "convolution and the batch axis needs no shape arithmetic); tensor names are "
            "stripped from every artifact (the runtime uses the signature tables)",
        },
        "key_id": export.bundle.key_id(key.public_key()).hex(),
        "smoke": args.smoke,
    }
    if scratch:
        print(json.dumps(figures, indent=1, default=str))
    else:
        previous = RESULTS / "export.json"
        if previous.is_file():  # a partial run (--only) keeps the other backbones' figures
            old = json.loads(previous.read_text())
            for name in (*EMBEDDINGS, *LENETS):
                if name not in results and name in old:
                    figures[name] = old[name]
        path = write_results("export", figures)
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
