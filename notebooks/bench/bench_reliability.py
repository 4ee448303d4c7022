"""Fuzzing every parser that reads outside bytes: each input loads or is refused clearly.

Command:
  make bench-reliability
  python notebooks/bench/bench_reliability.py [--inputs 8000] [--seed 0] [--only pfb ...] [--smoke]

Runs ``--inputs`` mutated inputs through each of 14 targets (:mod:`devices.fuzz`; the targets are
``export.bundle.fuzz``, ``personalize.fuzz`` and ``pretrain.fuzz``): ``.pfb`` bundles (the
signature check, the parser behind it, the decoders behind the checksums), an artifact's
manifest, signature and background array, its model in the LiteRT interpreter, user records
(encrypted file and plaintext), capture images on the device and dataset images on the server,
``--set`` values and config files. Each input runs in a worker process with a 10 s bound and a
4 GiB memory cap: an exception other than the parser's own error type, a hang or a crash counts
as unexpected.

Writes notebooks/results/reliability.json: ``fuzz {"inputs", "unexpected_exceptions",
"per_parser": {...}}`` (--smoke writes nothing). Expected: >= 100,000 inputs, 0 unexpected.
Time here (2 shared CPU cores): about 8 minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from _results import print_table, write_results
from tqdm.auto import tqdm

from devices.fuzz import MEMORY_CAP, TIME_BOUND_S, fuzz

FACTORIES = {
    "export.bundle.fuzz:targets": ("pfb", "pfb_decode", "pfb_signature", "download"),
    "personalize.fuzz:targets": (
        "artifact_manifest",
        "artifact_background",
        "artifact_signature",
        "litert_model",
        "record_file",
        "record_plaintext",
        "image_file",
    ),
    "pretrain.fuzz:targets": ("read_image", "config_set", "config_file"),
}


def _bar(name: str, total: int) -> Callable[[Iterator[int]], Iterator[int]]:
    def wrap(indices: Iterator[int]) -> Iterator[int]:
        return iter(tqdm(indices, total=total, desc=name, leave=False))

    return wrap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=8000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", default=None, metavar="TARGET")
    parser.add_argument("--smoke", action="store_true", help="50 inputs per target, no file")
    args = parser.parse_args(argv)
    inputs = 50 if args.smoke else args.inputs
    per_parser: dict[str, Any] = {}
    for factory, names in FACTORIES.items():
        for name in names:
            if args.only and name not in args.only:
                continue
            start = time.perf_counter()
            report = fuzz(
                factory,
                name,
                inputs=inputs,
                seed=args.seed,
                progress=_bar(name, inputs),
            )
            per_parser[name] = {
                "inputs": report.inputs,
                "loaded": report.loaded,
                "refused": report.refused,
                "unexpected_exceptions": report.unexpected,
                "exceptions": report.exceptions,
                "hangs": report.hangs,
                "crashes": report.crashes,
                "examples": report.examples,
                "seconds": round(time.perf_counter() - start, 1),
            }
    rows = [
        [n, r["inputs"], r["loaded"], r["refused"], r["exceptions"], r["hangs"], r["crashes"]]
        for n, r in per_parser.items()
    ]
    print_table(["target", "inputs", "loaded", "refused", "exceptions", "hangs", "crashes"], rows)
    total = sum(r["inputs"] for r in per_parser.values())
    unexpected = sum(r["unexpected_exceptions"] for r in per_parser.values())
    print(f"{total:,} inputs, {unexpected} unexpected (exceptions, hangs or crashes)")
    if not args.smoke:
        figures = {
            "fuzz": {
                "inputs": total,
                "unexpected_exceptions": unexpected,
                "per_parser": per_parser,
                "seed": args.seed,
                "time_bound_s": TIME_BOUND_S,
                "memory_cap_bytes": MEMORY_CAP,
            }
        }
        print(f"wrote {write_results('reliability', figures)}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
