"""The fingerprint and face rows of bench-structured: EmbedNet channel pruning, int8 LiteRT timing.

Driven by ``bench_structured.py``; ``python notebooks/bench/bench_structured_embed.py [ARGS]`` is
``bench_structured.py --only fingerprint face [ARGS]`` (these rows alone, the other rows of
structured.json kept).

Fingerprint: particle filters (``pc.separable_compression``) and L1 norms choose
half of every prunable producer's channels on the dev prints (synthetic validation identities
0-99 x 8, EER); each narrow network is fine-tuned with the backbone's own CosFace stage
(``pretrain/configs/embed_fingerprint_scale.py``, ``scale``) for a few short epochs, the dev EER
picking the epoch. Reported, never tuned on: 5-shot identification on the FVC B sensor sets
(50 fingers x 8 impressions) as bench-embed scores them, the mean over 10 random enrollment
splits (``repeated_identification``, the same enrollments for every network) and the fixed split
(impressions 1-5 enroll), against the unpruned backbone in the same run; the int8 ``embed``
signature of each network (full-integer, calibrated on 100 training prints) timed on one thread
in alternating rounds (``devices.timing.alternating_medians``).

Face: the same on the face backbone (``pc.FACE_SEPARABLE``): the dev people are the 120 LFW
development people (EER), the fine-tuning is the backbone's CosFace stage on LFW + Extended Yale B
(``pretrain/configs/embed_face_wide.py``, ``metric``) distilled towards the unpruned network's
embeddings; reported: 5-shot identification of all 40 ORL people (none trained on), the mean over
10 random enrollment splits as bench-embed scores it, and the fixed split; int8 calibrated on 100
training faces, timed on an ORL face.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from _results import ROOT, print_table, run_main

import devices
import pretrain
import pretrain.compression as pc
from devices.server import graph_from_flax
from devices.timing import alternating_medians
from export.artifact import embedder_tflite
from pretrain.embedding import fingerprint_spec, fvc_sensor_sets, orl_faces
from pretrain.embedding.suites import within_identity_order
from pretrain.evaluation import face_report
from pretrain.train import load_splits

PROFILE = "phone_cpu"
CALIBRATION = 100  # training prints that calibrate the int8 conversion


def smoke_recipe(recipe: pc.SeparableRecipe) -> pc.SeparableRecipe:
    """Tiny filters, one short epoch (plumbing only)."""
    return dataclasses.replace(
        recipe,
        filters=pc.FilterSettings(particles=2, rounds=1, temperature=0.005, examples=0),
        epochs=1,
        identities=40 if recipe.identities else 0,
    )


Scores = dict[str, Any]


def five_shot_scores(
    features: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    owners: np.ndarray | None = None,
) -> Scores:
    """bench-embed's figures (``face_report``): 5-shot identification over 10 random enrollment
    splits (seed 0) and on the fixed split (the first images of each identity by ``order``
    enroll), EER over all pairs (``owners``: FVC's fingers, see ``face_report``)."""
    r = face_report(features, labels, order=order, owners=owners)
    return {
        "identification_5shot_pct": r["identification_pct"]["5"],
        "identification_5shot_std_pct": r["identification_pct_std"]["5"],
        "identification_5shot_fixed_split_pct": r["identification_pct_fixed"]["5"],
        "identification_pct": r["identification_pct"],
        "eer_pct": r["eer_pct"],
    }


def describe(module: Any, params: Any, calibration: np.ndarray, folder: Path, name: str) -> dict:
    """Sizes, MACs, the estimator's latency and the int8 LiteRT file of one network."""
    native = module.clone(impl="native")
    graph = graph_from_flax(
        native,
        {"params": params},
        jax.ShapeDtypeStruct((1, *calibration.shape[1:]), np.float32),
        name=name,
        signatures=[devices.SignatureSpec("embed", "embed", 1, None, "images", 8)],
    )
    estimate = devices.estimate(graph, "embed", devices.load_profile(PROFILE))
    blob = embedder_tflite(native, params, calibration.shape[1:], list(calibration))
    path = folder / f"{name}.tflite"
    path.write_bytes(blob)
    return {
        "params": int(sum(np.size(v) for v in jax.tree.leaves(params))),
        "macs": int(sum(layer.macs for layer in graph.layers)),
        "tflite_bytes": len(blob),
        "stem_width": int(module.stem_width),
        "stem_kernel": int(module.stem_kernel),
        "widths": [int(w) for w in module.widths],
        f"estimated_latency_s_{PROFILE}": estimate.latency_s,
        "path": path,
    }


def int8_agreement(path: Path, embed: Any, params: Any, images: np.ndarray) -> float:
    """Smallest cosine between the int8 LiteRT embedding and the float JAX one."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner("embed")
    got = np.concatenate([runner(images=x[None])["embeddings"] for x in images])
    want = embed(params, images)
    cos = np.sum(got * want, -1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    return float(cos.min())


def time_embed(paths: dict[str, Path], image: np.ndarray, rounds: int) -> dict[str, float]:
    """Median seconds per ``embed`` call of each model, one thread, alternating rounds."""
    from ai_edge_litert.interpreter import Interpreter

    runners = {
        k: Interpreter(model_path=str(p), num_threads=1).get_signature_runner("embed")
        for k, p in paths.items()
    }
    x = image[None].astype(np.float32)
    calls = {k: (lambda r=r: r(images=x)) for k, r in runners.items()}
    return alternating_medians(calls, rounds=rounds, repeats=50, warmup=10)


class EvalSet(NamedTuple):
    """What a row reports on: its images, identities and the order of each identity's images
    (the fixed split enrolls the first ones), the wording of its accuracy, and whose each image
    is where one owner holds two labels (FVC's fingers)."""

    images: np.ndarray
    labels: np.ndarray
    order: np.ndarray
    accuracy: str
    owners: np.ndarray | None = None

    def scores(self, embed: Any, params: Any) -> Scores:
        """:func:`five_shot_scores` of the network ``embed(params, images)``."""
        features = embed(params, self.images)
        return five_shot_scores(features, self.labels, self.order, self.owners)


def fingerprint_eval(stage: Any, smoke: bool) -> EvalSet:
    """The FVC B sensor sets in the crop the backbone trained on (impressions in order)."""
    crop = stage.dataset_options.get("crop", "foreground")
    prints = fvc_sensor_sets("", spec=fingerprint_spec(crop))
    keep = slice(80 if smoke else None)
    return EvalSet(
        prints.images[keep],
        prints.labels[keep],
        prints.impressions[keep],
        "5-shot identification on the FVC B sensor sets (50 fingers x 8), mean over 10 random "
        "enrollment splits (the same for every network); accuracy_delta_pts: pruned minus "
        "unpruned, in points",
        prints.owners[keep],
    )


def face_eval(stage: Any, smoke: bool) -> EvalSet:
    """All 40 ORL people at the backbone's input size (8 in a smoke run)."""
    orl = orl_faces(stage.dataset_options["input_size"])
    if smoke:
        orl = orl.take(np.flatnonzero(orl.labels < 8))
    return EvalSet(
        orl.images,
        orl.labels,
        within_identity_order(orl.labels),
        "5-shot identification of all 40 ORL people (none trained on), mean over 10 random "
        "enrollment splits (seed 0, as bench-embed); accuracy_delta_pts: pruned minus unpruned, "
        "in points",
    )


ROWS = {
    "fingerprint": (pc.SeparableRecipe(), fingerprint_eval),
    "face": (pc.FACE_SEPARABLE, face_eval),
}


def invoker(model: bytes | Path, image: np.ndarray) -> Callable[[], None]:
    """A one-thread interpreter of the int8 model (file or bytes) with ``image`` set as its
    input: its ``invoke``, what the invoke-only timings call."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, Path):
        interpreter = Interpreter(model_path=str(model), num_threads=1)
    else:
        interpreter = Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    x = image[None].astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    return interpreter.invoke


def latency_by_depth(
    module: Any, params: Any, whole: Path, calibration: np.ndarray, image: np.ndarray, rounds: int
) -> dict[str, float]:
    """Where an int8 ``embed``'s time goes: the median ``invoke`` time (us, one thread) of the
    network cut after block 1, 2, 4, 6 (its feature map out; converted here, calibrated on the
    first 20 of ``calibration``) and of the ``whole`` network's file, in alternating rounds. The
    differences are what each stretch of blocks costs."""
    blocks = len(module.widths)
    calls = {}
    for k in (k for k in (1, 2, 4, 6) if k < blocks):
        cut = module.clone(impl="native", stop_after=k)
        blob = embedder_tflite(cut, params, calibration.shape[1:], list(calibration[:20]))
        calls[f"block{k}"] = invoker(blob, image)
    calls["whole"] = invoker(whole, image)
    medians = alternating_medians(calls, rounds=rounds, repeats=200, warmup=20)
    return {name: 1e6 * t for name, t in medians.items()}


KEEP_SCAN = (0.5, 0.45, 0.4, 0.35, 0.3, 0.25)
SHAPED_SCAN = ((0.3, 0.5), (0.25, 0.5), (0.3, 0.55), (0.3, 0.6), (0.25, 0.6), (0.35, 0.5))
"""Latency-shaped budgets ``(early, late)`` (``pc.shaped_keep``)."""


UNIFORM_BAR = {"fingerprint": "0.5", "face": "0.4"}
"""Each row's uniform budget before shaping (the fraction its speed had chosen): a shaped
budget replaces it only if measured at least as fast with more MACs kept."""


def keep_scan(kind: str, model_dir: Path, args: Any) -> dict[str, Any]:
    """The channel budget by speed alone: the int8 ``embed`` invoke time (one thread,
    alternating rounds) of the backbone narrowed by L1 norms to each fraction of
    :data:`KEEP_SCAN`, its stem cut to the recipe's ``stem_kernel`` (no fine-tuning: latency
    does not depend on the weights' values), calibrated on training images. No accuracy is
    read: this picks a budget, not a network."""
    from pretrain.compression.separable import (
        l1_separable,
        separable_chain,
        shrink_separable,
        shrink_stem,
    )

    saved = pretrain.load_model(model_dir)
    recipe = ROWS[kind][0]
    module, params = pc.folded(saved)
    stage = pc.finetune_config(saved, recipe, module)
    calibration = load_splits(stage).train.images[:CALIBRATION]
    chain = separable_chain(len(module.widths))
    networks = {"1.0": (module, params)}
    stem, stem_params = shrink_stem(module, params, calibration.shape[1:3], recipe.stem_kernel)
    budgets: dict[str, float | tuple[float, ...]] = {str(k): k for k in KEEP_SCAN}
    budgets |= {f"{e}/{lt}": pc.shaped_keep(e, lt, len(chain)) for e, lt in SHAPED_SCAN}
    for name, keep in budgets.items():
        structure = l1_separable(stem_params, pc.channels_kept(stem, keep))
        networks[name] = shrink_separable(stem, stem_params, structure, chain)
    calls, macs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (m, p) in networks.items():
            d = describe(m, p, calibration, Path(tmp), "k" + name.replace("/", "-"))
            macs[name] = d["macs"]
            calls[name] = invoker(d["path"], calibration[0])
        medians = alternating_medians(calls, rounds=3 if args.smoke else 15, repeats=200)
    base = medians["1.0"]
    figures = {
        name: {"invoke_us": 1e6 * t, "speedup": base / t, "flops_ratio": macs[name] / macs["1.0"]}
        for name, t in medians.items()
    }
    uniform = {k: v for k, v in figures.items() if "/" not in k}
    shaped_rows = {
        k: {**v, "fractions": np.atleast_1d(budgets[k]).tolist()}
        for k, v in figures.items()
        if "/" in k
    }
    return {
        "model_dir": str(model_dir),
        "stem_kernel": int(stem.stem_kernel),
        "keep": uniform,
        "shaped": shaped_rows,
        "shaped_pick": shaped_pick(uniform, shaped_rows, ROWS[kind][0].keep, UNIFORM_BAR[kind]),
        "rule": "a budget, not a network: the int8 invoke time of the L1-narrowed backbone at each "
        "fraction of channels kept (the recipe's stem_kernel), one thread, median of alternating "
        "rounds; no accuracy read. shaped: 'early/late' keeps early of the stem's, block1's and "
        "block2's channels and late of the others'; shaped_pick: of the shaped budgets at least "
        "as fast as the row's uniform budget before shaping (face 0.4, fingerprint 0.5) in the "
        "same rounds and keeping more MACs, the one keeping the most",
    }


def shaped_pick(
    uniform: dict[str, Any], shaped_rows: dict[str, Any], recipe_keep: Any, bar: str
) -> dict[str, Any]:
    """The latency-shaped budget that keeps the most MACs among those that beat the uniform
    budget ``bar`` on both counts (measured at least as fast, more MACs kept; None when none
    does), and whether it is the recipe's."""
    ref = uniform.get(bar)
    better = {
        k: v
        for k, v in shaped_rows.items()
        if ref is not None
        and v["speedup"] >= ref["speedup"]
        and v["flops_ratio"] > ref["flops_ratio"]
    }
    if not better:
        return {"budget": None, "against": bar, "is_recipe": False}
    best = max(better, key=lambda k: better[k]["flops_ratio"])
    return {
        "budget": best,
        "against": bar,
        "is_recipe": np.atleast_1d(recipe_keep).tolist() == better[best]["fractions"],
    }


def run_folder(workdir: str | None, kind: str) -> contextlib.AbstractContextManager[str]:
    """Where a row's networks are fine-tuned and exported: ``workdir/kind`` (kept, so
    ``--resume`` continues it) or, without ``workdir``, a temporary folder."""
    if not workdir:
        return tempfile.TemporaryDirectory()
    folder = Path(workdir) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(str(folder))


def run_embed(kind: str, model_dir: Path, args: Any) -> dict[str, Any]:
    """The ``fingerprint`` or ``face`` row of structured.json."""
    started = time.perf_counter()
    saved = pretrain.load_model(model_dir)
    recipe, make_eval = ROWS[kind]
    if args.distill is not None:
        recipe = dataclasses.replace(recipe, distill=args.distill)
    if args.keep is not None:
        keep = args.keep[0] if len(args.keep) == 1 else tuple(args.keep)
        recipe = dataclasses.replace(recipe, keep=keep)
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    if args.score_steps is not None:
        recipe = dataclasses.replace(recipe, score_steps=args.score_steps)
    if args.significance is not None:
        filters = dataclasses.replace(recipe.filters, significance=args.significance)
        recipe = dataclasses.replace(recipe, filters=filters)
    if args.set:
        recipe = dataclasses.replace(recipe, overrides=(*recipe.overrides, *args.set))
    if args.smoke:
        recipe = smoke_recipe(recipe)
    module, params = pc.folded(saved)
    stage = pc.finetune_config(saved, recipe, module)
    splits = load_splits(stage)
    if splits.val is None:
        raise SystemExit(f"{recipe.config}: its {recipe.stage} stage holds out no dev identities.")
    ev = make_eval(stage, args.smoke)
    rng = np.random.default_rng(args.seed)
    seeds = [args.seed + i for i in range(args.seeds)]
    runs: dict[str, list[pc.SeparableResult]] = {}
    with run_folder(args.workdir, kind) as tmp:
        work = Path(tmp)
        for name, by_norm in (("particle_filter", False), ("l1_baseline", True)):
            runs[name] = []
            for seed in seeds:  # the structure is chosen once, fine-tuned under every seed
                print(f"== {kind} {name} fine-tuning seed {seed} ==", flush=True)
                given = runs[name][0].structure if runs[name] else None
                runs[name].append(
                    pc.separable_compression(
                        saved,
                        recipe,
                        splits.val,
                        rng=rng,
                        workdir=work / f"{name}_{seed}",
                        l1=by_norm,
                        splits=splits,
                        structure=given,
                        seed=seed,
                        resume=args.resume,
                    )
                )
        # the first seed's networks are the ones exported and timed
        results = {name: r[0] for name, r in runs.items()}
        scores = {  # every network scored once on the evaluation set
            name: [ev.scores(pc.embed_fn(r.module), r.params) for r in rs]
            for name, rs in runs.items()
        }
        calibration = splits.train.images[:CALIBRATION]
        embed = pc.embed_fn(module)
        probe = ev.images[:100]
        ref = {
            **describe(module, params, calibration, work, "reference"),
            **ev.scores(embed, params),
        }
        ref["dev_eer_pct"] = 100 * results["particle_filter"].dev_eer["reference"]
        ref["int8_cosine_min"] = int8_agreement(ref["path"], embed, params, probe)
        entries: dict[str, dict[str, Any]] = {}
        for name, r in results.items():
            narrow_embed = pc.embed_fn(r.module)
            e = describe(r.module, r.params, calibration, work, name)
            e.update(scores[name][0])
            e["int8_cosine_min"] = int8_agreement(e["path"], narrow_embed, r.params, probe)
            e["identification_5shot_before_finetune_pct"] = ev.scores(narrow_embed, r.selected)[
                "identification_5shot_pct"
            ]
            e["dev_eer_pct"] = {k: 100 * v for k, v in r.dev_eer.items()}
            e["channels_kept"] = r.log["channels_kept"]
            e["filters"] = r.log.get("filters")
            e["finetune"] = r.log.get("finetune")
            e["finetune_config"] = r.log.get("finetune_config")
            e["seconds"] = r.log["seconds"]
            entries[name] = e
        comparison = seed_comparison(runs, seeds, scores, ref)
        paths = {"reference": ref["path"], **{k: e["path"] for k, e in entries.items()}}
        timing = time_embed(paths, ev.images[0], rounds=3 if args.smoke else 15)
        depth_rounds = 2 if args.smoke else 9
        rows = {"reference": ref, **entries}
        nets = {
            "reference": (module, params),
            **{n: (r.module, r.params) for n, r in results.items()},
        }
        for name, (m, p) in nets.items():
            rows[name]["latency_by_depth_us"] = latency_by_depth(
                m, p, rows[name]["path"], calibration, ev.images[0], depth_rounds
            )

    ref.pop("path")
    ref["latency_s"] = timing["reference"]
    for name, e in entries.items():
        e.pop("path")
        e["latency_s"] = timing[name]
        e["speedup"] = timing["reference"] / timing[name]
        e["params_pruned_pct"] = 100 * (1 - e["params"] / ref["params"])
        e["flops_ratio"] = e["macs"] / ref["macs"]
        e["bytes_ratio"] = e["tflite_bytes"] / ref["tflite_bytes"]
        e["accuracy_delta_pts"] = e["identification_5shot_pct"] - ref["identification_5shot_pct"]
        e["accuracy_delta_fixed_split_pts"] = (
            e["identification_5shot_fixed_split_pct"] - ref["identification_5shot_fixed_split_pct"]
        )
        e["meets_targets"] = e["speedup"] >= 2.0 and e["accuracy_delta_pts"] >= -1.0
    pf, l1 = entries["particle_filter"], entries["l1_baseline"]
    return {
        "model_dir": str(
            model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir
        ),
        "recipe": {**dataclasses.asdict(recipe), "filters": dataclasses.asdict(recipe.filters)},
        "accuracy": ev.accuracy,
        "reference": ref,
        **entries,
        "pf_vs_l1": {"equal_flops": pf["macs"] == l1["macs"], **comparison},
        "timing": "median over 15 alternating rounds of 50 int8 embed calls, one thread, batch 1",
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": time.perf_counter() - started,
    }


def seed_comparison(
    runs: dict[str, list[pc.SeparableResult]],
    seeds: list[int],
    scores: dict[str, list[Scores]],
    ref: dict[str, Any],
) -> dict[str, Any]:
    """Per fine-tuning seed and mean +- std 5-shot identification of both methods (structures
    fixed; ``scores``: each network's on the evaluation set), and the verdict from the means."""
    per_seed: dict[str, list[dict[str, Any]]] = {}
    for name, results in runs.items():
        per_seed[name] = []
        for seed, r, score in zip(seeds, results, scores[name], strict=True):
            per_seed[name].append(
                {
                    "seed": seed,
                    "identification_5shot_pct": score["identification_5shot_pct"],
                    "identification_5shot_fixed_split_pct": score[
                        "identification_5shot_fixed_split_pct"
                    ],
                    "dev_eer_pct": 100 * r.dev_eer["finetuned"]
                    if "finetuned" in r.dev_eer
                    else None,
                }
            )
    stats = {
        name: pc.mean_std([s["identification_5shot_pct"] for s in v])
        for name, v in per_seed.items()
    }
    dev = {
        name: pc.mean_std(
            [s["dev_eer_pct"] for s in v if s["dev_eer_pct"] is not None] or [math.nan]
        )
        for name, v in per_seed.items()
    }
    return {
        "rule": "pf_at_least_as_accurate: the particle filters' mean 5-shot identification (each "
        "the mean over the enrollment splits) over the fine-tuning seeds >= L1's; each method's "
        "structure is chosen once (dev EER), the seeds vary the fine-tuning's classifier "
        "initialisation and batch order; nothing is chosen on the evaluation set",
        "seeds": seeds,
        "per_seed": per_seed,
        "identification_5shot_pct": stats,
        "dev_eer_pct_finetuned": dev,
        "accuracy_delta_pts_mean": {
            name: v["mean"] - ref["identification_5shot_pct"] for name, v in stats.items()
        },
        **pc.pf_vs_l1(
            [s["identification_5shot_pct"] for s in per_seed["particle_filter"]],
            [s["identification_5shot_pct"] for s in per_seed["l1_baseline"]],
            higher_is_better=True,
        ),
    }


def report_embed(kind: str, m: dict[str, Any]) -> None:
    """An embedding row: 5-shot identification, speed and size against the reference."""
    ref = m["reference"]
    rows = [[f"{kind} reference", f"{ref['identification_5shot_pct']:.2f}%", "-", "1", "1", "1"]]
    for k in ("particle_filter", "l1_baseline"):
        e = m[k]
        rows.append(
            [
                k,
                f"{e['identification_5shot_pct']:.2f}%",
                f"{e['accuracy_delta_pts']:+.2f}",
                f"{e['flops_ratio']:.3f}",
                f"{e['bytes_ratio']:.3f}",
                f"{e['speedup']:.2f}x",
            ]
        )
    print_table(["network", "5-shot", "acc delta pts", "flops", "bytes", "speedup"], rows)
    c = m.get("pf_vs_l1", {})
    if "seeds" in c:
        print(
            f"{len(c['seeds'])} fine-tuning seeds: "
            + ", ".join(
                f"{k} {v['mean']:.2f} +- {v['std']:.2f}%"
                for k, v in c["identification_5shot_pct"].items()
            )
            + f"; pf_at_least_as_accurate {c['pf_at_least_as_accurate']}"
        )
    for k in ("reference", "particle_filter", "l1_baseline"):
        depth = m[k].get("latency_by_depth_us")
        if depth:
            print(
                f"{k} int8 invoke by depth (us): "
                + ", ".join(f"{c} {t:.1f}" for c, t in depth.items())
            )


def main(argv: list[str] | None = None) -> int:
    """``bench_structured.py --only fingerprint face`` with the same arguments."""
    import bench_structured  # imports this module: not at the top

    args = sys.argv[1:] if argv is None else argv
    return bench_structured.main(["--only", "fingerprint", "--only", "face", *args])


if __name__ == "__main__":
    run_main(main)
