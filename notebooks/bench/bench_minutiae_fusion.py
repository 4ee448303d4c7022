"""Would minutiae matching add to the fingerprint embedding? Judged on development prints.

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_minutiae_fusion.py [--no-fvc]

The committed backbone's cosine against a classical minutiae matcher
(:mod:`devices.minutiae_match`) and their sum (cosine + w x the minutiae score), on
the synthetic validation identities (0-99 x 8, seed 0, never trained on) of two generators: the
committed backbone's own (``embed_fingerprint_flowmix.py``'s ``GENERATOR``) and its flow twins
(``embed_fingerprint_twins.py``'s: identities 2k and 2k + 1 share fingertip, flow and period and
differ in ridge detail, which the embedding barely sees: the yardstick of ridge detail). The
minutiae come three ways: found in the impression by :mod:`pretrain.data.minutiae` (a yardstick
extractor: band-pass, thinning, crossing number), and the generator's ground truth
(:func:`pretrain.data.minutiae_maps.impression_minutiae`: the master's minutiae placed rigidly,
those on the readable print; what a perfect extractor would give), and the learned detector
(:mod:`pretrain.minutiae_detector`, trained on other identities' truth; its committed weights
and the threshold chosen with them, ``devices/minutiae_detector.npz``). The pairs are the FVC
protocol's (every impression pair of an identity; first impressions of every two identities),
and for the twins every impression of one twin against every impression of the other (the twin
EER: genuine against twin pairs). Every matcher score is taken over the two prints' overlap
(their readable masks, :func:`devices.readable.readable_mask`; since 2026-12-07, the overlap
matcher's registration in ``notebooks/results/fingerprint_ablation.md``).

What it is for: whether the matcher half of a minutiae pipeline earns a place beside the
embedding, and whether the extractor or the matcher limits it. No choice is taken here: the
weights ``W`` are a fixed grid, every one reported (the table prints the best of each); the
learned detector's rule is in ``notebooks/results/fingerprint_ablation.md``. The FVC sets are
read after the dev figures, for the protocol of the cosine, of the detector's minutiae and of
their sums (``fvc_reported_only``, every weight): reported, never chosen on. Writes
``notebooks/results/minutiae_fusion.json``; 7.5 minutes on 2 cores alone (the prints and their
minutiae are drawn again each run; the embeddings' prints are cached).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from _results import ROOT, print_table, run_main, write_results
from tqdm.auto import tqdm

import pretrain
from devices.cosine import normalize
from devices.minutiae_match import match_score
from devices.readable import readable_mask
from devices.verification import eer
from export.artifact.split import preprocess_of
from pretrain.config import load_module
from pretrain.data.fingerprint.synthetic import GeneratorConfig
from pretrain.data.fvc import SENSOR_SETS, fvc_sets, impression_numbers, read_fvc
from pretrain.data.minutiae import MinutiaeError, minutiae, minutiae_array
from pretrain.data.minutiae_maps import impression_minutiae
from pretrain.embedding.data import print_ranges, synthetic_val_set
from pretrain.embedding.suites import embed
from pretrain.evaluation import fvc_pairs
from pretrain.evaluation.fvc_bootstrap import SetScores, mean_eer_interval
from pretrain.evaluation.fvc_protocol import (
    ALL_SETS,
    Scorer,
    set_scores,
    spec_prepare,
    spec_scorer,
)
from pretrain.evaluation.twins import twin_pairs
from pretrain.minutiae_detector import detect, load_weights

COMMITTED = ROOT / "notebooks" / "results" / "models" / "embed_fingerprint"
DETECTOR = ROOT / "devices" / "minutiae_detector.npz"
KINDS = ("found", "truth", "detected")
CONFIGS = {
    "flowmix": ROOT / "pretrain" / "configs" / "embed_fingerprint_flowmix.py",
    "twins": ROOT / "pretrain" / "configs" / "embed_fingerprint_twins.py",
}
STAGE = "flowmix"  # both configs' dev prints are drawn as this stage's options say
IMPRESSIONS = 8
W = (0.25, 0.5, 1.0, 2.0, 4.0)  # the sum's weights of the minutiae score (a fixed grid)


def identity_minutiae(
    job: tuple[int, dict[str, Any]],
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(found, truth) minutiae arrays, the image and its readable mask of each impression of
    one identity (a worker's job)."""
    identity, options = job
    config = GeneratorConfig.from_dict(options)
    out = []
    for k in range(IMPRESSIONS):
        image, truth = impression_minutiae(identity, k, seed=0, config=config)
        try:
            found = minutiae_array(minutiae(image))
        except MinutiaeError:  # no readable print: nothing to match
            found = np.zeros((0, 4))
        out.append((found, minutiae_array(truth), image, readable_mask(image)))
    return out


def dev_minutiae(
    generator: dict[str, Any], identities: range, detector: tuple[Any, float]
) -> tuple[dict[str, list[np.ndarray]], list[np.ndarray]]:
    """``{"found": [...], "truth": [...], "detected": [...]}`` per dev print, identity-major,
    and the prints' readable masks."""
    jobs = [(i, generator) for i in identities]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        done = list(tqdm(pool.map(identity_minutiae, jobs), total=len(jobs), desc="minutiae"))
    prints = [p for identity in done for p in identity]
    detected = detect(detector[0], np.stack([p[2] for p in prints]), detector[1])
    kinds = {"found": [p[0] for p in prints], "truth": [p[1] for p in prints], "detected": detected}
    return kinds, [p[3] for p in prints]


def one_generator(name: str, model: Any, spec: Any, detector: tuple[Any, float]) -> dict[str, Any]:
    """The dev figures of one generator's prints."""
    module = load_module(CONFIGS[name])
    options = load_module(CONFIGS["flowmix"]).get_config()["stages"][STAGE]["dataset_options"]
    identities = print_ranges(options).val
    dev = synthetic_val_set(**{**options, "generator": module.GENERATOR, "crop": spec.crop})
    unit = normalize(np.asarray(embed(model.module, model.params, dev.images), np.float64))
    n = len(identities)
    pairs = fvc_pairs(np.repeat(np.arange(n), IMPRESSIONS), np.tile(np.arange(IMPRESSIONS), n))
    found, masks = dev_minutiae(module.GENERATOR, identities, detector)
    sets = {"genuine": pairs.genuine, "impostor": pairs.impostor}
    if module.GENERATOR.get("twin_share", 0) > 0:
        sets["twin"] = twin_pairs(dev.labels)
    cosine = {s: np.einsum("kd,kd->k", unit[p[:, 0]], unit[p[:, 1]]) for s, p in sets.items()}
    matched = {
        kind: {
            s: np.array([match_score(per[a], per[b], masks[a], masks[b]) for a, b in p])
            for s, p in sets.items()
        }
        for kind, per in found.items()
    }
    out: dict[str, Any] = {
        "prints": len(dev.labels),
        "minutiae_per_print_median": {
            kind: float(np.median([len(m) for m in found[kind]])) for kind in found
        },
    }
    for against in [k for k in sets if k != "genuine"]:
        out["eer_pct" if against == "impostor" else "twin_eer_pct"] = eer_row(
            cosine, matched, against
        )
    return out


def eer_row(
    cosine: dict[str, np.ndarray], matched: dict[str, dict[str, np.ndarray]], against: str
) -> dict[str, Any]:
    """EER % of genuine against ``against`` pairs: the cosine's, each minutiae kind's score's and
    their sums' (per weight of :data:`W`)."""
    row: dict[str, Any] = {"embedding": 100 * eer(cosine["genuine"], cosine[against])}
    for kind, match in matched.items():
        row[f"minutiae_{kind}"] = 100 * eer(match["genuine"], match[against])
        row[f"sum_{kind}"] = {
            str(w): 100
            * eer(cosine["genuine"] + w * match["genuine"], cosine[against] + w * match[against])
            for w in W
        }
    return row


def minutiae_scorer(found: list[np.ndarray], masks: list[np.ndarray]) -> Scorer:
    """The matcher's score of prints ``i[k]`` and ``j[k]`` of one set's minutiae ``found`` over
    their readable ``masks``' overlap."""
    return lambda i, j: np.array(
        [match_score(found[a], found[b], masks[a], masks[b]) for a, b in zip(i, j, strict=True)]
    )


def fvc_report(model: Any, spec: Any, detector: tuple[Any, float]) -> dict[str, Any]:
    """Reported only (no choice is taken from it): the FVC protocol of the cosine, the learned
    detector's minutiae through the matcher, and their sums, per set and over the sensor sets."""
    params, threshold = detector
    make_scorer = spec_scorer(lambda x: embed(model.module, model.params, x), spec)
    out: dict[str, Any] = {}
    kept: dict[str, dict[str, SetScores]] = {
        k: {} for k in ["embedding", *(f"sum w {w}" for w in W)]
    }
    for name in [n for n in ALL_SETS if n in set(fvc_sets())]:
        raw = read_fvc(name)
        fingers, impressions = raw.labels, impression_numbers(raw.paths)
        found = detect(params, np.stack(raw.images), threshold)
        cos = set_scores(make_scorer(spec_prepare(spec)(raw.images)), fingers, impressions)
        masks = [readable_mask(g) for g in raw.images]
        match = set_scores(minutiae_scorer(found, masks), fingers, impressions)
        cosine = {"genuine": cos.genuine, "impostor": cos.impostor}
        matched = {"genuine": match.genuine, "impostor": match.impostor}
        out[name] = eer_row(cosine, {"detected": matched}, "impostor")
        out[name]["minutiae_per_print_median"] = float(np.median([len(m) for m in found]))
        for key, w in [("embedding", 0.0)] + [(f"sum w {w}", w) for w in W]:
            kept[key][name] = cos._replace(
                genuine=cos.genuine + w * match.genuine, impostor=cos.impostor + w * match.impostor
            )
    sensors = [n for n in SENSOR_SETS if n in out]
    if sensors:
        out["mean_over_sensor_sets"] = {
            "embedding": float(np.mean([out[n]["embedding"] for n in sensors])),
            "minutiae_detected": float(np.mean([out[n]["minutiae_detected"] for n in sensors])),
            "sum_detected": {
                str(w): float(np.mean([out[n]["sum_detected"][str(w)] for n in sensors])) for w in W
            },
        }
        # paired over fingers: one draw serves every row; a difference is a sum's mean EER less
        # the embedding's
        out["bootstrap"] = mean_eer_interval(kept)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-fvc", action="store_true", help="dev prints only (no FVC report)")
    args = parser.parse_args()
    started = time.time()
    model = pretrain.load_model(COMMITTED)
    spec = preprocess_of(model)
    detector = load_weights(DETECTOR)
    results = {name: one_generator(name, model, spec, detector) for name in CONFIGS}
    record: dict[str, Any] = {
        "generators": results,
        "fvc_reported_only": {} if args.no_fvc else fvc_report(model, spec, detector),
        "weights": list(W),
        "definition": (
            "EER % on dev prints (synthetic validation identities x 8, seed 0): the committed "
            "backbone's cosine ('embedding'), the minutiae matcher's score on minutiae found by "
            "the extractor ('minutiae_found'), the generator's truth ('minutiae_truth') or the "
            "learned detector ('minutiae_detected'), and cosine + w x that score ('sum_found', "
            "'sum_truth', 'sum_detected', per w). eer_pct: genuine against "
            "the FVC protocol's impostor pairs; twin_eer_pct: genuine against twin pairs. "
            "fvc_reported_only: the FVC protocol per set (cosine, detected minutiae, their sums) "
            "and the means over the five sensor sets, with bootstrap intervals over fingers "
            "(paired: differences from the embedding); reported, never chosen on."
        ),
        "seconds": time.time() - started,
    }
    path = write_results("minutiae_fusion", record)
    rows = []
    for name, r in results.items():
        for key in ("eer_pct", "twin_eer_pct"):
            if key in r:
                e = r[key]
                best = {k: min(e[f"sum_{k}"].values()) for k in KINDS}
                rows.append(
                    (f"{name} {key}", e["embedding"],
                     *[v for k in KINDS for v in (e[f"minutiae_{k}"], best[k])])
                )  # fmt: skip
    print_table(
        ("dev prints", "embedding", *[h for k in KINDS for h in (f"minutiae {k}", "best sum")]),
        rows,
    )
    fvc = record["fvc_reported_only"]
    if fvc:
        print_table(
            ("FVC (reported only)", "embedding", "minutiae detected", *[f"sum w {w}" for w in W]),
            [
                (name, r["embedding"], r["minutiae_detected"], *r["sum_detected"].values())
                for name, r in fvc.items()
                if name != "bootstrap"
            ],
        )
        for key, d in fvc["bootstrap"]["difference_pct"].items():
            lo, hi = d["ci_pct"]
            print(f"FVC mean EER, {key} less the embedding: 95% interval {lo:+.2f} .. {hi:+.2f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
