"""bench-enroll-select: choose the device's enrollment defaults on development people only.

Faces (the default): reads the face artifact's LFW ``dev`` people (``pretrain.embedding.face_data.lfw_role_set``: 120
people with 6-40 images, never trained on, disjoint from the artifact's background; ORL is never
read) as model inputs, embeds them once with the artifact's int8 ``embed``, and on ``--episodes``
random splits (each person: 5 random images form the pool, k-shot enrolls the first k, the rest
probe) enrolls every person from embeddings through ``personalize.Device.record_of`` (imprint,
SGD through the artifact's train signature, threshold; nothing saved) for each candidate:

  * training: imprinting only, the previous SGD defaults, and SGD (head: learning rate x max
    steps 10 / 40 x keeping the best weights by the held-out criterion or the last; last block:
    the same at 10 steps);
  * matching: the head, the nearest template, the templates' mean, head/nearest mixes.

Closed-set identification (each probe to the highest-scoring person) per candidate and k. The
chosen defaults (``SgdConfig``, ``MatchConfig``) are the best 5-shot mean over the episodes.

Fingerprints (``--modality fingerprint``): the print artifact's development identities (its
backbone's validation range, 100 x 8 impressions drawn by the generator of its last stage,
never trained on; FVC is never read), embedded by ``Device.embed`` as the device embeds a
capture (a probe scores its best window; enrollment takes the first windows, as ``enroll``).

  python notebooks/bench/bench_enroll_select.py [--face-artifact DIR] [--episodes 2]
  python notebooks/bench/bench_enroll_select.py --modality fingerprint --episodes 3 \
      --name enroll_selection_fingerprint

Writes ``notebooks/results/enroll_selection.json`` (faces: about 20 minutes on two cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import RESULTS, print_table, run_main, shown, write_results
from tqdm.auto import tqdm

from devices.views import SINGLE
from personalize import NO_TRAINING, Device, MatchConfig, SgdConfig
from personalize.windows import windows
from pretrain.embedding.face_data import lfw_role_set
from pretrain.evaluation.episodes import enrollment_pools

SHOTS = (1, 3, 5)
POOL = 5
# SGD becomes the default only if it beats imprinting by more than this (5-shot points; one
# split of 120 people has about 740 probes, so 1 point is about 7 probes).
MARGIN_PCT = 1.0
MATCHES = {
    "head": MatchConfig(rule="head"),
    "nearest": MatchConfig(rule="nearest"),
    "mean": MatchConfig(rule="mean"),
    **{f"mix{w}": MatchConfig(rule="mix", mix=w) for w in (0.25, 0.5, 0.75)},
}


SCOPES = ("head", "last_block")  # the narrowest and the widest (head_biases: not searched)


def candidates(scopes: tuple[str, ...]) -> dict[str, tuple[str, SgdConfig]]:
    """Training candidates: imprinting; the previous defaults (loss-based stopping, last
    weights); SGD per scope x lr x steps x keep-best."""
    out = {"imprint": (NO_TRAINING, SgdConfig())}
    searched = [s for s in SCOPES if s in scopes]
    for scope in searched:
        out[f"{scope}/previous"] = (scope, SgdConfig(keep_best=False))
    for scope, lr, steps, keep in itertools.product(searched, (0.01, 0.1), (10, 40), (True, False)):
        if scope != "head" and steps > 10:
            continue  # last block at 40 steps: 5-12 min per candidate on the shared machine
        # the loss rules would stop most runs early: max_steps is the schedule under test
        sgd = SgdConfig(lr=lr, max_steps=steps, keep_best=keep, converged=0.0, patience=steps)
        out[f"{scope}/lr{lr}/steps{steps}/{'best' if keep else 'last'}"] = (scope, sgd)
    return out


def identify(
    dev: Device,
    embedded: dict[str, np.ndarray],
    labels: np.ndarray,
    episode: int,
    scope: str,
    sgd: SgdConfig,
    k: int,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Identification (percent) of one episode's probes by every matching rule, and training
    statistics, with everyone enrolled k-shot by (scope, sgd)."""
    pools, probe = enrollment_pools(labels, pool=POOL, episode=episode)
    ids = sorted(pools)
    probes = {key: v[probe] for key, v in embedded.items()}
    first = windows(embedded)[0]  # enrollment embeds a capture's first window only
    records, steps = [], []
    for identity in ids:
        shots = {key: v[pools[identity][:k]] for key, v in first.items()}
        record, fitted = dev.record_of(f"p{identity}", shots, scope, sgd, seed=episode)
        records.append(record)
        if fitted.result is not None:
            steps.append((fitted.result.steps, fitted.result.best_step))
    out = {}
    for name, match in MATCHES.items():
        scores = []
        for record in records:
            meta = {**record.meta, "match": dataclasses.asdict(match)}
            scores.append(dev.score_record(probes, record._replace(meta=meta)))
        predicted = np.asarray(ids)[np.argmax(np.stack(scores, axis=1), axis=1)]
        out[name] = float(100 * np.mean(predicted == labels[probe]))
    stats = {}
    if steps:
        arr = np.asarray(steps, float)
        stats = {"steps_mean": float(arr[:, 0].mean()), "best_step_mean": float(arr[:, 1].mean())}
    return out, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modality", choices=("face", "fingerprint"), default="face")
    parser.add_argument("--face-artifact", default=str(RESULTS / "artifacts" / "face"))
    parser.add_argument(
        "--fingerprint-artifact", default=str(RESULTS / "artifacts" / "fingerprint")
    )
    parser.add_argument("--key", default=str(RESULTS / "artifacts" / "signing.pub"))
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--shots", type=int, nargs="+", default=list(SHOTS))
    parser.add_argument("--name", default="enroll_selection", help="result file name")
    parser.add_argument("--from-candidates", help="decide from a saved candidates JSON only")
    parser.add_argument("--only", nargs="+", help="candidate names to run (default: all)")
    parser.add_argument("--first-episode", type=int, default=1, help="seed of the first split")
    parser.add_argument(
        "--one-view",
        action="store_true",
        help="embed each image alone even when the artifact averages test-time views (the "
        "comparison that chose flip averaging: export.artifact.pipeline.FLIP_AVERAGED)",
    )
    args = parser.parse_args()
    if args.from_candidates:
        from_candidates(Path(args.from_candidates), args.name)
        return
    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="select-enroll-"))
    artifact = Path(getattr(args, f"{args.modality}_artifact"))
    dev = Device(artifact, workdir / "store", trusted_key=Path(args.key))
    if args.one_view:  # identification ranks people: the background rows' views do not enter
        dev.views = dev.enroll_views = SINGLE
    name, embedded, labels = (face_dev if args.modality == "face" else print_dev)(dev)
    # people with at least POOL + 1 images (every dev person has 6 or more)
    print(f"{name}: {len(labels)} images, {len(np.unique(labels))} people", flush=True)
    results: dict[str, Any] = {}
    rows = []
    todo = [
        (n, c) for n, c in candidates(dev.trainable_scopes()).items() if n in (args.only or [n])
    ]
    for name, (scope, sgd) in tqdm(todo, desc="candidates"):
        shots = args.shots if name == "imprint" or name.startswith("head/") else [max(args.shots)]
        entry: dict[str, Any] = {"scope": scope, "sgd": dataclasses.asdict(sgd), "shots": {}}
        for k in shots:
            per_rule: dict[str, list[float]] = {}
            stats: list[dict[str, Any]] = []
            for episode in range(args.first_episode, args.first_episode + args.episodes):
                pct, st = identify(dev, embedded, labels, episode, scope, sgd, k)
                for rule, v in pct.items():
                    per_rule.setdefault(rule, []).append(v)
                stats.append(st)
            entry["shots"][str(k)] = {
                "identification_pct": {r: float(np.mean(v)) for r, v in per_rule.items()},
                "per_episode": per_rule,
                "training": stats,
            }
        results[name] = entry
        five = entry["shots"][str(max(shots))]["identification_pct"]
        rows.append((name, *(f"{five[r]:.1f}" for r in MATCHES)))
        write_results(f"{args.name}_partial", {"candidates": results})  # survives a kill
    print_table(("candidate (5-shot)", *MATCHES), rows)
    out = {
        "modality": args.modality,
        "set": name,
        "episodes": args.episodes,
        "first_episode": args.first_episode,
        "pool": POOL,
        "views": dev.views.to_dict(),
        "probes": int(len(labels) - POOL * len(np.unique(labels))),
        **decide(results, str(max(args.shots)), MARGIN_PCT),
        "candidates": results,
        "wall_s": time.perf_counter() - t0,
        "artifact": shown(artifact),
    }
    chosen = out["chosen"]
    if chosen["training"] == "imprint":  # does the chosen rule's threshold hold, beside the head's
        rules = {name: MATCHES[name] for name in dict.fromkeys(("head", chosen["match"]))}
        out["verification"] = verification(
            artifact, Path(args.key), embedded, labels, rules, args.first_episode, args.episodes
        )
        print_table(
            ("rule", *(f"FAR/target @{t:g}" for t in TARGETS), *(f"FRR % @{t:g}" for t in TARGETS)),
            [
                (
                    name,
                    *(f"{row[f'{t:g}']['far_over_target']:.2f}" for t in TARGETS),
                    *(f"{row[f'{t:g}']['frr_pct']:.1f}" for t in TARGETS),
                )
                for name, row in out["verification"]["rules"].items()
            ],
        )
    write_results(args.name, out)


TARGETS = (2e-5, 1e-3, 3e-3)  # the device's default FAR, and two a dev set can measure


def verification(
    artifact: Path,
    key: Path,
    embedded: dict[str, np.ndarray],
    labels: np.ndarray,
    rules: dict[str, MatchConfig],
    first_episode: int,
    episodes: int,
) -> dict[str, Any]:
    """Accept/reject by imprinted records at each rule's own per-user threshold (the device's
    tail rule on the artifact's background, at each target FAR): every capture of every other
    dev person is an impostor attempt, the person's probes are genuine ones, summed over the
    selection's splits. A rule chosen by identification must also keep its threshold."""
    workdir = Path(tempfile.mkdtemp(prefix="select-verify-"))
    first = windows(embedded)[0]
    out: dict[str, Any] = {}
    for name, match in rules.items():
        dev = Device(artifact, workdir / name, trusted_key=key, match=match)
        counts = {t: np.zeros(4, np.int64) for t in TARGETS}  # far accepts/attempts, frr
        for episode in range(first_episode, first_episode + episodes):
            pools, probe = enrollment_pools(labels, pool=POOL, episode=episode)
            for identity in sorted(pools):
                shots = {key: v[pools[identity][:POOL]] for key, v in first.items()}
                own, scores = labels == identity, None
                genuine = own & probe
                for target in TARGETS:
                    record, _ = dev.record_of(
                        f"p{identity}", shots, NO_TRAINING, target_far=target, seed=episode
                    )
                    if scores is None:  # an imprinted record's scores do not depend on target
                        scores = dev.score_record(embedded, record)
                    accept = scores >= record.threshold
                    counts[target] += [
                        accept[~own].sum(),
                        (~own).sum(),
                        (~accept[genuine]).sum(),
                        genuine.sum(),
                    ]
        out[name] = {
            f"{t:g}": {
                "far_measured": float(c[0] / c[1]),
                "far_over_target": float(c[0] / c[1] / t),
                "impostor_attempts": int(c[1]),
                "frr_pct": float(100 * c[2] / c[3]),
            }
            for t, c in counts.items()
        }
    return {"rules": out, "note": verification.__doc__}


def face_dev(dev: Device) -> tuple[str, dict[str, np.ndarray], np.ndarray]:
    """The LFW dev people as the face artifact's model inputs, embedded: (name, embedded,
    labels)."""
    data = lfw_role_set("dev", "", tuple(dev.spec.shape[:2]))
    embedded = dev.embed_inputs(np.asarray(data.images, np.float32))
    return data.name, embedded, np.asarray(data.labels)


def print_dev(dev: Device) -> tuple[str, dict[str, np.ndarray], np.ndarray]:
    """The print artifact's development identities (8 impressions each, its last stage's
    generator), embedded as the device embeds captures: (name, embedded, labels)."""
    from bench_enroll_far import PrintSource

    prints = PrintSource(dev.manifest)
    per = 8
    images = prints.draw("model", prints.dev, per)
    labels = np.repeat(np.arange(len(prints.dev)), per)
    embedded = dev.embed(images)
    first, last = prints.dev.start, prints.dev.stop - 1
    return (
        f"synthetic dev identities {first}-{last} x {per} (the model's generator)",
        embedded,
        labels,
    )


def decide(results: dict[str, Any], k: str, margin: float) -> dict[str, Any]:
    """The defaults the measurement supports: the best matching rule for imprinting; SGD only if
    its best candidate beats that by more than ``margin`` points (one split of the dev people:
    less is within what picking the best of many candidates on the same probes gives)."""

    def pct(name: str, rule: str) -> float:
        return float(results[name]["shots"][k]["identification_pct"][rule])

    imprint_rule = max(MATCHES, key=lambda r: pct("imprint", r))
    trained = [
        (n, r) for n in results if n != "imprint" for r in MATCHES if k in results[n]["shots"]
    ]
    imprint_best = {"match": imprint_rule, "identification_pct": pct("imprint", imprint_rule)}
    if not trained:  # --only imprint: the matching rules alone
        return {
            "chosen": {"training": "imprint", **imprint_best},
            "imprint_best": imprint_best,
            "sgd_best": None,
            "sgd_beats_imprint": False,
            "shots": int(k),
        }
    sgd_name, sgd_rule = max(trained, key=lambda nr: pct(*nr))
    gain = pct(sgd_name, sgd_rule) - pct("imprint", imprint_rule)
    adopt = gain > margin
    chosen = (sgd_name, sgd_rule) if adopt else ("imprint", imprint_rule)
    out = {
        "chosen": {"training": chosen[0], "match": chosen[1], "identification_pct": pct(*chosen)},
        "imprint_best": imprint_best,
        "sgd_best": {
            "training": sgd_name,
            "match": sgd_rule,
            "identification_pct": pct(sgd_name, sgd_rule),
        },
        "sgd_gain_pct": gain,
        "margin_pct": margin,
        "sgd_beats_imprint": adopt,
        "shots": int(k),
    }
    print(out["chosen"], "SGD gain", round(gain, 2), "points; adopted:", adopt)
    return out


def from_candidates(path: Path, name: str) -> None:
    """The decision from a saved candidates file (a run cut short keeps what it measured)."""
    saved = json.loads(path.read_text())
    results = saved["candidates"]
    out = {"complete": False, **decide(results, "5", MARGIN_PCT), "candidates": results}
    out["note"] = f"decided from {path.name}: the candidates measured before the run was stopped"
    write_results(name, out)


if __name__ == "__main__":
    run_main(main)
