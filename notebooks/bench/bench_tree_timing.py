"""One fresh-process timing round of bench-tree's 1:N search (started by bench_tree.py).

Loads a gallery (and its tree) saved by bench_tree, times the flat and the tree search on its
probes on one BLAS thread, alternating (devices.alternating_medians: the median over in-process
rounds of each one's mean time per search), and prints ``{"seconds": {"flat": s, "tree": s}}``.

  python notebooks/bench/bench_tree_timing.py SEARCH.npz [--beam 4] [--repeats 200] [--rounds 15]
"""

# ruff: noqa: E402  (the BLAS thread count is set before numpy loads)
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import itertools
import json
from typing import Any

import numpy as np
from _results import run_main

from devices import alternating_medians
from personalize import GalleryTree, flat_search, tree_search


def save_search(path: str, templates: Any, ids: Any, probes: Any, tree: GalleryTree) -> None:
    """Writes what a timing round loads: the flat gallery, the probes and the tree."""
    arrays: dict[str, Any] = {
        "templates": templates,
        "ids": ids,
        "probes": probes,
        "tree_templates": tree.templates,
        "tree_ids": tree.ids,
    }
    arrays.update({f"centroids_{i}": c for i, c in enumerate(tree.centroids)})
    arrays.update({f"children_{i}": c for i, c in enumerate(tree.children)})
    np.savez(path, **arrays)


def load_tree(data: Any) -> GalleryTree:
    depth = sum(1 for k in data.files if k.startswith("centroids_"))
    return GalleryTree(
        tuple(data[f"centroids_{i}"] for i in range(depth)),
        tuple(data[f"children_{i}"] for i in range(depth)),
        data["tree_templates"],
        data["tree_ids"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("search")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15, help="in-process rounds (median)")
    args = parser.parse_args()
    data = np.load(args.search)
    templates, ids, tree = data["templates"], data["ids"], load_tree(data)
    probes_f, probes_t = itertools.cycle(data["probes"]), itertools.cycle(data["probes"])
    seconds = alternating_medians(
        {
            "flat": lambda: flat_search(templates, ids, next(probes_f)),
            "tree": lambda: tree_search(tree, next(probes_t), args.beam),
        },
        rounds=args.rounds,
        repeats=args.repeats,
    )
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    run_main(main)
