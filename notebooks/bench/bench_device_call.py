"""What an app waits for: whole ``Device.enroll`` and ``Device.verify`` calls on a warm Device, in
fresh processes, optionally alternating with another source tree's ``personalize`` (before/after).

A round is one fresh process (one interpreter thread, one BLAS thread): a Device on the artifact
with a new store, 3 untimed enrollments and verifications, then ``--calls`` rounds of one enroll
(5 captures of the next person, ``measure_memory=False``, the Device's default flow) and
``--verifies`` verifications of that person's later captures; a round's figure is the median
over its calls. ``--gap-ms`` idles that long before each enrollment (untimed), as the seconds
between two people enrolling on a phone do: the CPU and the file system's journal are then as a
call after a pause finds them (here both a call's CPU work and its fsyncs take longer than in a
back-to-back loop). ``enroll_work`` is the report's embed + train + calibrate (the enrollment itself,
without the artifact check, quality gate, plan and the record's write). The sides alternate round
by round (devices.fresh_process_rounds); the bench prints the median over rounds and their range.

The captures (nothing is chosen here): ORL s21-s40, images 1-5 enroll and 6-8 verify, or with
``--captures fvc`` (for the fingerprint artifact) FVC2002 DB1_B's 10 fingers, impressions 1-5 and
6-8. On the committed face artifact, 7 rounds a side take 1-2 minutes (fvc, 12 calls: 2):

  python notebooks/bench/bench_device_call.py [--artifact DIR] [--key PUB] [--captures orl]
      [--rounds 7] [--gap-ms 0] [--baseline SRC] [--out FILE]

``--baseline SRC``: a folder holding another version's ``personalize`` and ``devices`` packages
(e.g. ``git archive main personalize devices | tar -x -C SRC``), timed as the side ``before``.
"""

# ruff: noqa: E402  (the thread counts and a round's source tree are set before anything loads)
from __future__ import annotations

import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if "--src" in sys.argv:  # a round of another tree's packages: first on the path, before imports
    sys.path.insert(0, sys.argv[sys.argv.index("--src") + 1])

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import RESULTS, print_table, run_main

from devices import fresh_process_rounds, over_rounds

ROUNDS = 7
CALLS = 30
VERIFIES = 3
WARMUP = 3
FIGURES = ("enroll", "enroll_work", "verify")


def _round(args: argparse.Namespace) -> dict[str, float]:
    """One process's medians: ``{"enroll", "enroll_work", "verify"}`` seconds per call."""
    from personalize import Device

    data = np.load(args.inputs)
    enroll, probes = data["enroll"], data["probes"]
    people = len(enroll)
    with tempfile.TemporaryDirectory() as tmp:
        dev = Device(
            args.artifact,
            Path(tmp) / "store",
            profile=args.profile,
            trusted_key=args.key,
            num_threads=1,
            keys=Path(tmp) / "keys",
        )
        times: dict[str, list[float]] = {name: [] for name in FIGURES}
        for i in range(WARMUP + args.calls):
            p, user = i % people, f"user{i % 5}"
            time.sleep(args.gap_ms / 1e3)
            t0 = time.perf_counter()
            report = dev.enroll(user, list(enroll[p]), measure_memory=False)
            spent = time.perf_counter() - t0
            verifies = []
            for probe in probes[p][: args.verifies]:
                t0 = time.perf_counter()
                dev.verify(user, probe)
                verifies.append(time.perf_counter() - t0)
            if i >= WARMUP:
                times["enroll"].append(spent)
                work = report.embed_ms + report.train_ms + report.calibrate_ms
                times["enroll_work"].append(work / 1e3)
                times["verify"] += verifies
    return {name: statistics.median(t) for name, t in times.items()}


def _inputs(path: Path, captures: str) -> None:
    """``orl``: s21-s40, images 1-5 of each to enroll, 6-10 to verify; ``fvc``: FVC2002 DB1_B's
    10 fingers, impressions 1-5 to enroll, 6-8 to verify."""
    if captures == "orl":
        from pretrain.data.faces import read_orl

        images = read_orl()
        people = [np.flatnonzero(images.labels == s) for s in range(20, 40)]
    else:
        from pretrain.data.fvc import read_fvc

        images = read_fvc("2002_DB1_B")
        people = [np.flatnonzero(images.labels == s) for s in np.unique(images.labels)]
    order = [sorted(p, key=lambda i: int(images.paths[i].stem.split("_")[-1])) for p in people]
    enroll = np.stack([[images.images[i] for i in p[:5]] for p in order])
    probes = np.stack([[images.images[i] for i in p[5:8]] for p in order])
    np.savez(path, enroll=enroll, probes=probes)


def _standalone(args: argparse.Namespace) -> dict[str, Any]:
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npz"
        _inputs(inputs, args.captures)
        command = [script, "--round", "--inputs", str(inputs), "--artifact", str(args.artifact)]
        command += ["--key", str(args.key), "--profile", args.profile]
        command += ["--calls", str(args.calls), "--verifies", str(args.verifies)]
        command += ["--gap-ms", str(args.gap_ms)]
        commands = {"after": command}
        if args.baseline:
            commands = {"before": [*command, "--src", str(args.baseline)], **commands}
        per_round = fresh_process_rounds(commands, rounds=args.rounds, timeout_s=600.0)
    ms = {
        side: {f: over_rounds([1e3 * r[f] for r in rounds]) for f in FIGURES}
        for side, rounds in per_round.items()
    }
    rows = [
        (side, f, m["median"], *m["range"]) for side, figs in ms.items() for f, m in figs.items()
    ]
    print_table(("side", "call", "ms (median over rounds)", "min", "max"), rows)
    return {
        "timing": (
            f"{args.rounds} rounds a side, each a fresh process (sides alternating, order "
            f"flipped every other round): {WARMUP} untimed then {args.calls} enrollments, each "
            f"after {args.gap_ms:g} ms idle and followed by {args.verifies} verifications; a "
            "round's figure = the median over its "
            "calls; ms = the median over rounds, range = the rounds' min and max"
        ),
        "artifact": str(args.artifact),
        "captures": args.captures,
        "baseline": str(args.baseline) if args.baseline else None,
        "ms": ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", default=str(RESULTS / "artifacts" / "face"))
    parser.add_argument("--key", help="trusted public key (default: signing.pub beside it)")
    parser.add_argument("--profile", default="phone_cpu")
    parser.add_argument("--captures", choices=("orl", "fvc"), default="orl")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--calls", type=int, default=CALLS, help="timed enrollments a round")
    parser.add_argument("--verifies", type=int, default=VERIFIES, help="after each enrollment")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="idle before each enrollment")
    parser.add_argument("--baseline", help="another tree's personalize + devices (side before)")
    parser.add_argument("--out", help="write the figures here (JSON)")
    parser.add_argument("--round", action="store_true", help="run one round (needs --inputs)")
    parser.add_argument("--inputs", help="a round's captures (.npz)")
    parser.add_argument("--src", help="a round's source tree (set by --baseline)")
    args = parser.parse_args()
    if args.key is None:
        args.key = str(Path(args.artifact).parent / "signing.pub")
    if args.round:
        if not args.inputs:
            parser.error("--round needs --inputs")
        print(json.dumps({"seconds": _round(args)}))
        return
    figures = _standalone(args)
    text = json.dumps(figures, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    run_main(main)
