"""Learning curves (issue 22): hand-made descriptors with a linear classifier against learned
features, as the training set grows.

Command:
  make bench-curves
  python notebooks/bench/bench_curves.py [--tasks faces mnist] [--sizes 100 300 ...]
      [--seeds 0 1 2] [--shots 1 2 ... 9] [--workdir runs/curves] [--no-cnn] [--cnn-only]
      [--methods gist sift ...] [--reuse CURVES_JSON COMMIT] [--write-only] [--smoke]
  python notebooks/bench/bench_curves.py --pilot 1000 10000 --seeds 0   # the CNN budget's choice

MNIST: SIFT (dense), LBP, HOG and GIST, each with multinomial logistic regression (L2 chosen on
20% of each training subset), against LeNet-5 trained by ``pretrain.fit`` on the same subsets
(the same 20% choose its checkpoint; at 60,000 that is 55,000 trained on + 5,000), test error on
the 10,000. Faces: k of ORL's 10 images per
person to train, the rest to test; the learned features are the LFW-pretrained face backbone's
embeddings (notebooks/results/models/embed_face_lfw), every method with the same classifier,
L2 chosen on the LFW development people. The library is
``pretrain.evaluation.curve_runs``; every finished cell is kept under --workdir, so a rerun
continues where the last one stopped, and curves.json is rewritten after each task and CNN size.

Writes notebooks/results/curves.json ``{task: {method: [{train_size, error_pct_mean,
error_pct_std, seeds, error_pct}]}}`` plus the crossing points, and curves.png.

Measured 2026-12-02, second run (load 9-12 on the 2 cores; one process at a time: --pilot
1000 10000 --seeds 0; --reuse runs/curves_5ecc476.json 5ecc476 --write-only, the file being
`git show 5ecc476:notebooks/results/curves.json`: the faces and the MNIST descriptors up to
10,000 are that run's cells, same code and data (faces SIFT k=1 recomputed here: the same three
errors to the last digit); --tasks mnist --cnn-only; --no-cnn --methods gist sift --sizes
30000 60000 --seeds 0, then gist --seeds 1 2; about 95 minutes). LeNet-5 with the validation-
chosen budget: 24.07 / 11.69 / 7.06 / 4.01 / 2.09 / 1.16 / 0.72 % at 100 / 300 / 1k / 3k /
10k / 30k / 60k (the 6-epoch run: 24.1 / 11.7 / 7.1 / 4.0 / 2.3; up to 10,000 the CNN is
data-limited, not budget-limited: training error 0 within 3-6 epochs and no later validation
gain), GIST 14.03 / 5.80 / 3.08 / 2.33 / 1.63 / 1.26 / 1.05, dense SIFT 16.3 .. 1.74 at 10k,
1.33 at 30k and 60k (one seed). MNIST crossing: LeNet-5 below every descriptor from 30,000 on
(interval 30,000 to 60,000 at one std; 60,000: 0.72 +- 0.08% vs GIST 1.05 +- 0.06%; one of the
three 60,000 runs reached the 20-epoch cap, validation 0.82 -> 0.80% in its last 4 epochs).
Not run for time: SIFT seeds 1-2 and HOG, LBP at 30,000 and 60,000 (at 10,000 HOG 2.81%, LBP
13.85%, above GIST); the crossing compares the descriptors measured at every size and names the
others (crossing.mnist.left_out). Faces unchanged: the embeddings lowest from 7 per person
(interval [1, never]).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import RESULTS, ROOT, print_table, run_main, write_results

import pretrain
from pretrain.evaluation import DESCRIPTORS, crossing_point
from pretrain.evaluation.curve_plot import plot_curves
from pretrain.evaluation.curve_runs import (
    FACE_DESCRIPTORS,
    MIN_EPOCH_EXAMPLES,
    MNIST_DESCRIPTORS,
    CellStore,
    face_features,
    patience_table,
    pilot_cnn,
    run_faces,
    run_mnist,
)
from pretrain.evaluation.linear import L2_GRID, MAX_ITERATIONS

SIZES = (100, 300, 1000, 3000, 10000, 30000, 60000)
SHOTS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
SEEDS = (0, 1, 2)
FACE_MODEL = ROOT / "notebooks" / "results" / "models" / "embed_face_lfw"
CNN_CONFIG = ROOT / "pretrain" / "configs" / "lenet5.py"
# The CNN's budget, one rule at every size (each epoch >= MIN_EPOCH_EXAMPLES examples; the rest
# is lenet5.py's recipe, its plateau schedule included): stop after 4 epochs without a new best
# validation error, at most 20 epochs, the best-validation checkpoint tested. Chosen on the
# validation slices of `--pilot 1000 10000 --seeds 0` (cap 40, no patience stop; about 3
# minutes at load ~10): the best validation error was reached by epoch 3 of 15 (1,000: 7.0%,
# train error 0 from epoch 3) and at epoch 6 of 18 (10,000: 1.75%), both runs ending on the
# learning-rate floor; every patience from 2 keeps those bests, 4 is the smallest that gives
# the schedule's first cut (after 3 epochs) an epoch to act, and 20 is above both runs' length.
CNN_OVERRIDES = ["epochs=20", "early_stop_patience=4", "keep_checkpoints=1"]
# The budget pilot: epochs trained with no patience stop, and the patiences it compares.
PILOT_CAP = 40
PATIENCES = (2, 3, 4, 6, 8, 10, 12, 16)


def reuse_cells(store: CellStore, path: Path, commit: str) -> int:
    """Stores the per-seed errors of an earlier curves.json as cells (``reused_from`` says
    where) for every method the CNN's recipe does not touch: the faces (the CNN there is a
    fixed backbone's embeddings) and the MNIST descriptors. MNIST ``cnn*`` cells are never
    reused. A cell already stored is kept. Returns how many cells were added."""
    old = json.loads(path.read_text())
    seeds = old["protocol"]["seeds"]
    added = 0
    for task in ("mnist", "faces"):
        for method, rows in old.get(task, {}).items():
            if task == "mnist" and method not in MNIST_DESCRIPTORS:
                continue
            for row in rows:
                if len(row["error_pct"]) != len(seeds):
                    continue  # which seed is which is then unknown
                for seed, error in zip(seeds, row["error_pct"], strict=True):
                    size = row["train_size"]
                    if store.get(task, method, size, seed) is None:
                        cell = {"error_pct": error, "reused_from": f"{path.name} at {commit}"}
                        store.put(task, method, size, seed, cell)
                        added += 1
    return added


def pilots(store: CellStore) -> list[dict[str, Any]]:
    """The stored pilot runs (--pilot), each with what every patience would have kept."""
    rows = []
    for path in sorted(store.folder.glob("pilot-*.json")):
        cell = json.loads(path.read_text())
        val = cell.pop("val_error_by_epoch")
        rows.append(
            {**cell, "patience": patience_table(val, PATIENCES), "val_error_pct_by_epoch": val}
        )
    return rows


def protocol(
    args: argparse.Namespace, cnn: pretrain.TrainConfig, store: CellStore
) -> dict[str, Any]:
    return {
        "mnist": {
            "subsets": "seed s draws train_size random images of the 60,000; 20% of them "
            "(at most 5,000) are the validation slice, the rest are trained on (so 60,000 is "
            "55,000 trained on + 5,000 validation, the seed choosing which 5,000); test: the "
            "10,000 test images",
            "descriptors": {k: v._asdict() for k, v in MNIST_DESCRIPTORS.items()},
            "cnn": {
                "model": cnn.model,
                "config": str(CNN_CONFIG.relative_to(ROOT)),
                "overrides": CNN_OVERRIDES,
                "epoch": f"each epoch sees >= {MIN_EPOCH_EXAMPLES} examples (small subsets "
                "repeated); the checkpoint with the lowest validation error is tested",
                "budget": f"the same rule at every size: lenet5.py's schedule (learning "
                f"rate x{cnn.plateau_factor} after {cnn.plateau_patience} epochs without a new "
                f"best validation error, stop below x{cnn.min_lr_scale}), stopped after "
                f"{cnn.early_stop_patience} epochs without a new best, at most {cnn.epochs} "
                "epochs; patience and cap chosen on the validation slices of the pilot runs "
                "(budget_choice)",
                "budget_choice": pilots(store),
            },
        },
        "faces": {
            "train_size": "images per person (ORL, 40 people); the other 10 - k are tested",
            "cnn": f"embeddings of {FACE_MODEL.relative_to(ROOT)} (LFW + Extended Yale B "
            "pretraining, ORL never seen) with the same linear classifier",
            "l2_choice": "per method and k, the lowest mean k-shot error on the LFW "
            "development people (10 images each, 3 splits); ORL is only reported",
            "descriptors": {k: v._asdict() for k, v in FACE_DESCRIPTORS.items()},
        },
        "classifier": "multinomial logistic regression, features standardised on the training "
        f"slice, L2 on the weights from {list(L2_GRID)}, L-BFGS <= {MAX_ITERATIONS} iterations",
        "descriptor_parameters": "the usual settings for the image size, not tuned here",
        "seeds": list(args.seeds),
        "reused_cells": reused(store),
    }


def reused(store: CellStore) -> dict[str, Any]:
    """Which stored cells came from an earlier run (--reuse): ``{source: {task: count}}``."""
    counts: dict[str, dict[str, int]] = {}
    for path in sorted(store.folder.glob("*.json")):
        source = json.loads(path.read_text()).get("reused_from")
        if source:
            task = path.stem.split("-", 1)[0]
            counts.setdefault(source, {}).setdefault(task, 0)
            counts[source][task] += 1
    return counts


def statement(crossing: dict[str, Any], curves: dict[str, list[dict[str, Any]]]) -> str:
    """What the crossing says in one sentence, with the figures at the largest size compared."""
    sizes = crossing["sizes_compared"]
    low, high = crossing["interval"]
    if not sizes:
        return "no size measured by every method."
    last = sizes[-1]
    at_last = {m: next(r for r in rows if r["train_size"] == last) for m, rows in curves.items()}
    best = min((m for m in at_last if m != "cnn"), key=lambda m: at_last[m]["error_pct_mean"])
    figures = (
        f"at {last:,}: cnn {at_last['cnn']['error_pct_mean']:.2f} +- "
        f"{at_last['cnn']['error_pct_std']:.2f}% vs {best} "
        f"{at_last[best]['error_pct_mean']:.2f} +- {at_last[best]['error_pct_std']:.2f}%"
    )
    if crossing["size"] is None:
        return (
            f"no crossing within {sizes[0]:,}..{last:,}: the CNN's mean error is not below "
            f"every descriptor's at the largest size ({figures}); "
            + (
                "not even with the CNN at mean - std and the descriptors at mean + std."
                if low is None
                else f"with the CNN at mean - std and the descriptors at mean + std: from {low:,}."
            )
        )
    return (
        f"the CNN's mean error is below every descriptor's from {crossing['size']:,} on "
        f"(interval at one std across seeds: {'none' if low is None else f'{low:,}'} to "
        f"{'never within the sizes measured' if high is None else f'{high:,}'}; {figures})."
    )


def write(
    store: CellStore, args: argparse.Namespace, cnn: pretrain.TrainConfig, started: float
) -> dict[str, Any]:
    figures: dict[str, Any] = {task: store.curves(task) for task in ("mnist", "faces")}
    crossing = {}
    for task in ("mnist", "faces"):
        # the CNN against the descriptors measured at every size it was (a descriptor still
        # missing some size is left out and named, rather than dropping that size)
        curves = figures[task]
        if "cnn" not in curves:
            continue
        sizes = {r["train_size"] for r in curves["cnn"]}
        compared = {"cnn": curves["cnn"]}
        left_out = {}
        for m in sorted(set(curves) & set(DESCRIPTORS)):
            measured = {r["train_size"] for r in curves[m]}
            if sizes <= measured:
                compared[m] = curves[m]
            else:
                left_out[m] = f"not measured at {sorted(sizes - measured)}"
        if len(compared) > 1:
            crossing[task] = crossing_point(compared, "cnn")
            crossing[task]["statement"] = statement(crossing[task], compared)
            crossing[task]["left_out"] = left_out
    figures["crossing"] = crossing
    figures["protocol"] = protocol(args, cnn, store)
    if not args.smoke:
        write_results("curves", figures)
        plot_curves(figures, RESULTS / "curves.png")
    else:
        plot_curves(figures, Path(args.workdir) / "curves.png")
    return figures


def show(figures: dict[str, Any]) -> None:
    for task in ("mnist", "faces"):
        rows = []
        for method, points in sorted(figures[task].items()):
            for p in points:
                rows.append(
                    [method, p["train_size"], p["error_pct_mean"], p["error_pct_std"], p["seeds"]]
                )
        if rows:
            print(f"\n{task}")
            print_table(["method", "train_size", "error %", "std", "seeds"], rows)
        if task in figures["crossing"]:
            c = figures["crossing"][task]
            print(f"crossing: {c['statement']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks", nargs="+", default=["faces", "mnist"], choices=["faces", "mnist"]
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--shots", nargs="+", type=int, default=list(SHOTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--workdir", default="runs/curves")
    parser.add_argument(
        "--methods", nargs="+", default=list(MNIST_DESCRIPTORS), choices=list(MNIST_DESCRIPTORS)
    )
    parser.add_argument("--no-cnn", action="store_true", help="MNIST descriptors only")
    parser.add_argument(
        "--cnn-only", action="store_true", help="MNIST CNN only (run beside --no-cnn)"
    )
    parser.add_argument(
        "--pilot",
        nargs="+",
        type=int,
        metavar="SIZE",
        help="train the CNN on these sizes (first seed) to --pilot-cap epochs with no patience "
        "stop, and print what each patience would keep on validation (chooses the budget)",
    )
    parser.add_argument("--pilot-cap", type=int, default=PILOT_CAP)
    parser.add_argument(
        "--pilot-overrides", nargs="*", default=[], help="config overrides of the pilot runs"
    )
    parser.add_argument(
        "--reuse",
        nargs=2,
        metavar=("CURVES_JSON", "COMMIT"),
        help="store an earlier run's descriptor and faces cells (same code and data) first",
    )
    parser.add_argument(
        "--write-only", action="store_true", help="rewrite curves.json/png from stored cells"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run in a temporary folder")
    args = parser.parse_args(argv)
    overrides = list(CNN_OVERRIDES)
    if args.smoke:
        args.sizes, args.shots, args.seeds = [100, 300], [1, 3], [0]
        args.workdir = tempfile.mkdtemp(prefix="curves-smoke-")
        overrides += ["epochs=2"]
    cnn = pretrain.load_config(CNN_CONFIG, overrides)
    store = CellStore(Path(args.workdir) / "cells")
    started = time.perf_counter()
    if args.reuse:
        added = reuse_cells(store, Path(args.reuse[0]), args.reuse[1])
        print(f"reused {added} cells from {args.reuse[0]} at {args.reuse[1]}")
    if args.write_only:
        show(write(store, args, cnn, started))
        return 0
    if args.pilot:
        variant = pretrain.load_config(CNN_CONFIG, overrides + args.pilot_overrides)
        for size in args.pilot:
            cell = pilot_cnn(store, size=size, seed=args.seeds[0], cnn=variant, cap=args.pilot_cap)
            table = patience_table(cell["val_error_by_epoch"], PATIENCES)
            print(
                f"\npilot {args.pilot_overrides}: size {size}, seed {args.seeds[0]}, "
                f"{cell['epochs']} epochs, {cell['wall_s']:.0f} s"
            )
            print_table(
                ["patience", "stop epoch", "best epoch", "val error %"],
                [[p, *t.values()] for p, t in table.items()],
            )
        return 0
    if "faces" in args.tasks:
        run_faces(store, face_features(FACE_MODEL), shots=args.shots, seeds=args.seeds)
        show(write(store, args, cnn, started))
    if "mnist" in args.tasks:
        if not args.cnn_only:
            run_mnist(store, sizes=args.sizes, seeds=args.seeds, cnn=None, methods=args.methods)
            write(store, args, cnn, started)
        if not args.no_cnn:
            for size in args.sizes:
                run_mnist(store, sizes=[size], seeds=args.seeds, cnn=cnn, methods=())
                write(store, args, cnn, started)
        show(write(store, args, cnn, started))
    return 0


if __name__ == "__main__":
    run_main(main)
