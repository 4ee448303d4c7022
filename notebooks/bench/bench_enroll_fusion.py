"""Does the device's fingerprint default fuse the minutiae score? Chosen on development prints.

    python notebooks/bench/bench_enroll_fusion.py [--episodes 2] [--identities START STOP]
        [--artifact DIR]

The print artifact's development identities (its backbone's validation range, 100 x 8
impressions drawn by the generator of its last stage, never trained on; FVC is never read), as
the device takes captures: on ``--episodes`` random splits (each identity: 5 random impressions
enroll, the other 3 probe) every identity is enrolled by ``personalize.Device.record_of`` with
the device's fingerprint default (imprinting, the mix 0.5 of head and nearest template), once as
it is and once fusing the minutiae score (``MatchConfig(minutiae=True)``: the owner's prints in
the record, the threshold on the background's fused scores; :mod:`personalize.fusion`). Per
variant: closed-set identification of the probes (5-shot), and verification at each target FAR
(the record's own threshold; every capture of every other identity an impostor attempt, the
identity's probes genuine ones): measured FAR over the target and FRR.

The minutiae term of a capture against a record is the weighted best score against the record's
five prints; the scores of every ordered pair of dev prints are computed once
(:func:`devices.minutiae_match.match_score` over the prints' cell masks, as
:func:`devices.print_minutiae.best_scores` does) and the term read from them. Thresholds come
from the device itself (``record_of``).

Decision rule (registered in ``notebooks/results/fingerprint_ablation.md`` before each run).
The first (2026-12-07 10:40 UTC, dev identities 0-99, fused thresholds fitted on the raw scale):
the fingerprint default fuses if the fused variant's FRR at the device's target FAR (2e-5) is
lower than the plain one's and its FAR over target at 1e-3 is no more than 1.5x the plain one's:
not met (FRR at 2e-5 63.3% fused against 53.3%). The second (2026-12-07 12:35 UTC, after the
fused thresholds moved to Fisher's z, :func:`personalize.threshold.fused_threshold_at_far`,
chosen on fresh identities 4500-4599; decided on fresh identities 4600-4699,
``--identities 4600 4700``): the same FRR condition, and at 2e-5 and at 1e-3 the fused FAR over
target at most 1.5x the plain one's or at most 1 (:data:`RULE`): not met (FRR at 2e-5 34.0%
fused against 49.8%, but FAR over target 6.6 against 3.2). Identification is reported.

Writes ``notebooks/results/enroll_fusion_fingerprint.json`` (dev identities; 19 minutes on two
cores), or ``enroll_fusion_fingerprint_START-LAST.json`` for ``--identities``; ``cost``: finding
a capture's prints, a pair's score, and what the fusion adds to an enrollment's calibration.
Needs a print artifact exported with the background prints (``bench_export.py --only
fingerprint --minutiae``, or ``python -m export build --minutiae``).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from _results import RESULTS, print_table, run_main, shown, write_results
from bench_enroll_far import PrintSource
from tqdm.auto import tqdm

from devices.minutiae_detector import CELL
from devices.minutiae_match import match_score
from devices.print_minutiae import PrintSet
from devices.verification import accepting_pairs, count_attempts, impostor_counts
from personalize import NO_TRAINING, Device, default_match
from personalize.windows import windows
from pretrain.evaluation.episodes import enrollment_pools

POOL = 5
PER = 8
TARGETS = (2e-5, 1e-3)
FUSED_FRR_AT = 2e-5  # the device's default target FAR
FAR_RATIO_MAX = 1.5
RULE = (
    "fuse by default if the fused variant's FRR at the device's target FAR (2e-5) is lower than "
    "the plain one's and, at 2e-5 and at 1e-3, its FAR over target is at most 1.5x the plain "
    "one's or at most 1 (registered 2026-12-07 12:35 UTC for fresh identities 4600-4699; the "
    "first rule, on the dev identities, checked the FAR at 1e-3 only)"
)


def _pair_rows(job: tuple[PrintSet, list[int]]) -> np.ndarray:
    """Rows ``i`` of the ordered-pair minutiae score matrix (a worker's job)."""
    prints, rows = job
    n = prints.size
    out = np.zeros((len(rows), n))
    for r, i in enumerate(rows):
        for j in range(n):
            if i != j:
                m = (prints.minutiae[i], prints.minutiae[j])
                out[r, j] = match_score(*m, prints.masks[i], prints.masks[j], cell=CELL)
    return out


def pair_scores(prints: PrintSet) -> np.ndarray:
    """``(n, n)``: the minutiae score of print ``i`` (a probe) against print ``j`` (enrolled)."""
    chunks = [list(range(i, prints.size, 16)) for i in range(16)]
    context = multiprocessing.get_context("spawn")
    out = np.zeros((prints.size, prints.size))
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        jobs = [(prints, rows) for rows in chunks]
        done = tqdm(pool.map(_pair_rows, jobs), total=len(jobs), desc="minutiae pairs")
        for rows, block in zip(chunks, done, strict=True):
            out[rows] = block
    return out


def episode_counts(
    devs: dict[str, Device],
    embedded: dict[str, np.ndarray],
    prints: PrintSet,
    pairs: np.ndarray,
    labels: np.ndarray,
    episode: int,
) -> dict[str, dict[str, Any]]:
    """One split's identification hits and verification counts per variant."""
    pools, probe = enrollment_pools(labels, pool=POOL, episode=episode)
    first = windows(embedded)[0]  # enrollment embeds a capture's first window only
    ids = sorted(pools)
    out: dict[str, dict[str, Any]] = {}
    own = labels[:, None] == np.asarray(ids)[None, :]  # (captures, people)
    for name, dev in devs.items():
        thresholds: dict[float, list[float]] = {t: [] for t in TARGETS}
        scores = []
        for identity in tqdm(ids, desc=f"episode {episode} {name}", leave=False):
            pool = pools[identity][:POOL]
            shots = {k: v[pool] for k, v in first.items()}
            owner = prints.take(pool) if dev.fuses else None
            records = {
                t: dev.record_of(f"p{identity}", shots, NO_TRAINING, target_far=t, prints=owner)[0]
                for t in TARGETS
            }
            base = dev.score_record(embedded, records[TARGETS[0]]._replace(prints=None))
            if dev.fusion_weight is not None and dev.fuses:
                base = base + dev.fusion_weight * pairs[:, pool].max(axis=1)
            scores.append(base)
            for t, record in records.items():
                thresholds[t].append(record.threshold)
        matrix = np.stack(scores, axis=1)
        counts, accepting = {}, {}
        for t, kept in thresholds.items():
            got = count_attempts(matrix, np.asarray(kept), own & probe[:, None], ~own)
            counts[t] = [
                got.impostor_accepts,
                got.impostor_attempts,
                got.genuine_rejects,
                got.genuine_attempts,
            ]
            accepting[t] = identity_pairs(matrix, np.asarray(kept), ~own, labels, ids)
        predicted = np.asarray(ids)[np.argmax(matrix, axis=1)]
        out[name] = {
            "identification_hits": int((predicted == labels)[probe].sum()),
            "probes": int(probe.sum()),
            "counts": {f"{t:g}": c for t, c in counts.items()},
            "accepting_pairs": {f"{t:g}": a for t, a in accepting.items()},
        }
    return out


def identity_pairs(
    scores: np.ndarray,
    thresholds: np.ndarray,
    impostor: np.ndarray,
    labels: np.ndarray,
    ids: list[int],
) -> list[list[int]]:
    """``[enrolled, impostor, accepts]`` (identities) of every pair with an accepted impostor
    attempt, the most accepts first (:func:`devices.verification.accepting_pairs`)."""
    people, accepts, _ = impostor_counts(scores, thresholds, labels, np.asarray(ids), impostor)
    return [[int(people[r]), int(people[c]), n] for r, c, n in accepting_pairs(accepts)]


def concentration(
    per_episode: list[dict[str, dict[str, Any]]], name: str, t: float
) -> dict[str, Any]:
    """How the accepted impostor attempts at ``t`` spread over pairs of identities (summed over
    episodes): how many pairs, and the share of the pair with the most."""
    pairs: Counter[tuple[int, int]] = Counter()
    for e in per_episode:
        pairs.update({(a, b): n for a, b, n in e[name]["accepting_pairs"][f"{t:g}"]})
    total = pairs.total()
    return {
        "identity_pairs": len(pairs),
        "largest_pair_share": max(pairs.values()) / total if total else 0.0,
    }


def summary(per_episode: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Identification % and, per target, FAR, FAR over target and FRR % summed over episodes."""
    out: dict[str, Any] = {}
    for name in per_episode[0]:
        hits = sum(e[name]["identification_hits"] for e in per_episode)
        probes = sum(e[name]["probes"] for e in per_episode)
        row: dict[str, Any] = {"identification_pct_5shot": 100 * hits / probes}
        for t in TARGETS:
            c = np.sum([e[name]["counts"][f"{t:g}"] for e in per_episode], axis=0)
            row[f"{t:g}"] = {
                "far_measured": float(c[0] / c[1]),
                "far_over_target": float(c[0] / c[1] / t),
                "impostor_attempts": int(c[1]),
                "frr_pct": float(100 * c[2] / c[3]),
                "accepts": concentration(per_episode, name, t),
            }
        out[name] = row
    return out


def decide(rows: dict[str, Any]) -> dict[str, Any]:
    """The registered rule (module docstring)."""
    plain, fused = rows["plain"], rows["fused"]
    frr_lower = fused[f"{FUSED_FRR_AT:g}"]["frr_pct"] < plain[f"{FUSED_FRR_AT:g}"]["frr_pct"]
    out: dict[str, Any] = {"frr_lower_at_device_target": bool(frr_lower)}
    far_held = True
    for t in TARGETS:
        ours, theirs = fused[f"{t:g}"]["far_over_target"], plain[f"{t:g}"]["far_over_target"]
        out[f"far_over_target_ratio_at_{t:g}"] = float(ours / max(theirs, 1e-12))
        far_held &= ours <= max(FAR_RATIO_MAX * theirs, 1.0)
    return {"fuse_by_default": bool(frr_lower and far_held), **out, "rule": RULE}


def fresh(source: PrintSource, dev: Device, start: int, stop: int) -> range:
    """Identities ``start .. stop - 1``, refused unless past every identity the model's stages
    read and the artifact's background and whitening people (as many again after them)."""
    # the export draws 2 impressions a background person, then as many whitening people
    # (export.artifact.sources, synthetic_fingerprints)
    after = source.last_read + 2 * -(-dev.background_count // 2)
    if not after <= start < stop:
        raise SystemExit(
            f"--identities {start} {stop}: fresh identities start at {after} (the model read "
            f"up to {source.last_read}; then the artifact's background and whitening people)."
        )
    return range(start, stop)


def calibration_seconds(
    devs: dict[str, Device], embedded: dict[str, np.ndarray], prints: PrintSet
) -> float:
    """What the fusion adds to an enrollment's calibration: a fused record less a plain one,
    seconds (the median of 5 enrollments of the first five captures)."""
    shots = {k: v[:POOL] for k, v in windows(embedded)[0].items()}
    owner = prints.take(range(POOL))
    took = []
    for _ in range(5):
        t0 = time.perf_counter()
        devs["plain"].record_of("c", shots, NO_TRAINING)
        t1 = time.perf_counter()
        devs["fused"].record_of("c", shots, NO_TRAINING, prints=owner)
        took.append((time.perf_counter() - t1) - (t1 - t0))
    return float(np.median(took))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--artifact", default=str(RESULTS / "artifacts" / "fingerprint")
    )  # + prints
    parser.add_argument("--key", default=str(RESULTS / "artifacts" / "signing.pub"))
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument(
        "--identities",
        nargs=2,
        type=int,
        metavar=("START", "STOP"),
        help="fresh generator identities START..STOP-1 instead of the model's development ones "
        "(a second development set: never trained on, past the artifact's background and "
        "whitening people); writes enroll_fusion_fingerprint_START-LAST.json",
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="enroll-fusion-"))
    artifact, key = Path(args.artifact), Path(args.key)
    base = default_match("fingerprint")
    fused = dataclasses.replace(base, minutiae=True)
    devs = {
        "plain": Device(artifact, workdir / "plain", trusted_key=key, match=base),
        # refused, with the reason, unless the artifact ships the background prints
        "fused": Device(artifact, workdir / "fused", trusted_key=key, match=fused),
    }
    source = PrintSource(devs["plain"].manifest)
    people = (
        source.dev if args.identities is None else fresh(source, devs["plain"], *args.identities)
    )
    images = source.draw("model", people, PER)
    labels = np.repeat(np.arange(len(people)), PER)
    embedded = devs["plain"].embed(images)
    t1 = time.perf_counter()
    prints = devs["fused"].describe(images)
    t2 = time.perf_counter()
    pairs = pair_scores(prints)
    t3 = time.perf_counter()
    cost = {
        "describe_ms_per_capture": 1e3 * (t2 - t1) / len(images),
        "pair_ms_per_core": 1e3 * 2 * (t3 - t2) / (len(images) * (len(images) - 1)),
    }
    per_episode = [
        episode_counts(devs, embedded, prints, pairs, labels, e)
        for e in range(1, args.episodes + 1)
    ]
    rows = summary(per_episode)
    cost["fused_calibration_s"] = calibration_seconds(devs, embedded, prints)
    which = "dev" if args.identities is None else "fresh"
    record = {
        "set": f"synthetic {which} identities {people.start}-{people.stop - 1} x {PER} "
        "(the model's generator)",
        "episodes": args.episodes,
        "pool": POOL,
        "default_match": dataclasses.asdict(base),
        "weight": devs["fused"].fusion_weight,
        "variants": rows,
        **decide(rows),
        "per_episode": per_episode,
        "artifact": shown(artifact),
        "cost": cost,
        "wall_s": time.perf_counter() - t0,
    }
    name = "enroll_fusion_fingerprint"
    if args.identities is not None:
        name += f"_{people.start}-{people.stop - 1}"
    path = write_results(name, record)
    print_table(
        (
            "variant",
            "5-shot id %",
            *(f"FAR/target @{t:g}" for t in TARGETS),
            *(f"FRR % @{t:g}" for t in TARGETS),
        ),
        [
            (
                name,
                f"{r['identification_pct_5shot']:.2f}",
                *(f"{r[f'{t:g}']['far_over_target']:.2f}" for t in TARGETS),
                *(f"{r[f'{t:g}']['frr_pct']:.1f}" for t in TARGETS),
            )
            for name, r in rows.items()
        ],
    )
    print(
        f"cost: {cost['describe_ms_per_capture']:.0f} ms a capture's prints, "
        f"{cost['pair_ms_per_core']:.2f} ms a pair (one core), "
        f"+{cost['fused_calibration_s']:.2f} s an enrollment's calibration"
    )
    print(f"fuse by default: {record['fuse_by_default']}; wrote {path}")


if __name__ == "__main__":
    run_main(main)
