"""Synthetic fingerprint generator speed, and statistics of synthetic vs real prints.

    make bench-data        # or: POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_data.py

Writes ``notebooks/results/data.json``, ``notebooks/results/gallery.png`` and
``notebooks/results/data_stats.png``; about 5 minutes on two cores.

Per source (the generator's 10 fingers x 8 impressions, each FVC set) the print statistics of
:mod:`pretrain.data.stats` and the genuine-pair statistics of :mod:`pretrain.data.stats_pairs`:
how far apart two impressions of one finger were placed, and how far apart the device's
registration (the learned anchor) leaves them (``misregistered_fraction``: the pairs more than
``MISREGISTERED_PX`` apart after registration); whether the learned anchor lands on the same
point of the finger in both impressions (``anchors_apart_fraction``: one anchor carried into the
other impression through the raw prints' alignment lands more than ``MISREGISTERED_PX`` from the
other's; ``second_peak_agrees_fraction``: of those, the share a second registration hypothesis
could recover); ``core_registration``: the same pairs after the symmetry filter's core, the
previous backbones' registration.

Speed is measured in this process pinned to one core with BLAS limited to one thread, on
``IDENTITIES`` fresh identities x ``IMPRESSIONS`` impressions at the size the backbone is fed
(256x256 at 500 dpi, preprocessed to 128x128):
  * ``impressions_per_s``: all impressions / (time to grow every master + time to render every
    impression): the rate of building a dataset of 8 impressions per finger from nothing;
  * ``impressions_per_s_cached_master``: impressions / rendering time alone (masters cached, as
    when new impressions of known identities are drawn every epoch);
  * ``masters_per_s``: masters / growth time.
"""

from __future__ import annotations

import os

# One core, one BLAS thread: set before numpy loads its BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _results import RESULTS, print_table, run_main, write_results  # noqa: E402

from pretrain.data import DataNotFoundError, fvc_sets, read_fvc  # noqa: E402
from pretrain.data.fingerprint import (  # noqa: E402
    FingerprintGenerator,
    GeneratorConfig,
    save_gallery,
)
from pretrain.data.stats_pairs import REGISTRATIONS, residual_stats  # noqa: E402
from pretrain.data.stats_report import (  # noqa: E402
    SYNTHETIC_IDENTITIES,
    SYNTHETIC_IMPRESSIONS,
    format_table,
    plot_stats,
    source_stats,
)

IDENTITIES = 24
IMPRESSIONS = 8
SEED = 12345  # not the seed of the statistics below, so timing sees fresh masters


def time_generator() -> dict[str, object]:
    config = GeneratorConfig()
    gen = FingerprintGenerator(seed=SEED, config=config, cache_size=IDENTITIES)
    gen.master(10**6)  # build the cached Gabor bank once, outside the timing
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        start = time.perf_counter()
        for identity in range(IDENTITIES):
            gen.master(identity)
        master_s = time.perf_counter() - start
        start = time.perf_counter()
        for identity in range(IDENTITIES):
            for k in range(IMPRESSIONS):
                gen.impression(identity, k)
        render_s = time.perf_counter() - start
    finally:
        os.sched_setaffinity(0, affinity)
    n = IDENTITIES * IMPRESSIONS
    return {
        "impressions_per_s": n / (master_s + render_s),
        "impressions_per_s_cached_master": n / render_s,
        "masters_per_s": IDENTITIES / master_s,
        "definition": (
            f"{IDENTITIES} new identities x {IMPRESSIONS} impressions on one core, one BLAS "
            "thread; impressions_per_s includes growing each master once"
        ),
        "resolution": {
            "dpi": 500,
            "impression_px": list(config.impression_shape),
            "master_px": list(config.master_shape),
            "growth_grid_px": config.growth_step,
            "model_input_px": [128, 128],
        },
    }


def core_pairs(images: Sequence[np.ndarray], owners: Sequence[int]) -> dict[str, Any]:
    """The same genuine pairs' residual figures when registered on the symmetry core."""
    figures = residual_stats(images, owners, spec=REGISTRATIONS["core"])
    return {k: figures[k] for k in ("pair_residual_px", "misregistered_fraction", "registration")}


def main() -> None:
    print("timing the generator on one core ...", flush=True)
    generator = time_generator()
    print_table(
        ["figure", "value"],
        [[k, v] for k, v in generator.items() if isinstance(v, float)],
    )
    stats = {"synthetic": source_stats("synthetic", seed=0, pairs=True, progress=True)}
    gen = FingerprintGenerator(seed=0, cache_size=1)  # source_stats' synthetic prints again
    images, owners = gen.impressions(range(SYNTHETIC_IDENTITIES), SYNTHETIC_IMPRESSIONS)
    stats["synthetic"]["core_registration"] = core_pairs(list(images), owners.tolist())
    try:
        sets = fvc_sets()
    except DataNotFoundError as err:
        print(f"skipping FVC: {err}")
        sets = []
    for name in sets:
        print(f"measuring fvc/{name} ...", flush=True)
        stats[name] = source_stats(f"fvc/{name}", pairs=True)
        prints = read_fvc(name)
        stats[name]["core_registration"] = core_pairs(list(prints.images), list(prints.labels))
    try:
        stats["orl"] = source_stats("orl")
    except DataNotFoundError as err:
        print(f"skipping ORL: {err}")
    print(format_table(stats))
    RESULTS.mkdir(parents=True, exist_ok=True)
    gallery = save_gallery(RESULTS / "gallery.png", seed=0, identities=5, impressions=4, tile=1.4)
    plot = plot_stats(stats, RESULTS / "data_stats.png")
    path = write_results(
        "data",
        {
            "generator": generator,
            "stats": stats,
            "notes": {
                "synthetic": "10 identities x 8 impressions, seed 0, like an FVC B set",
                "2000_DB4_B": "SFinGe's own output (the reference synthetic set)",
                "class_mix_estimated": "Poincare-index rules, the same code on every source",
                "pairs": "genuine pairs (140 sampled, seed 0): pretrain.data.stats_pairs; px at "
                "500 dpi; registered on the learned anchor (core_registration: the symmetry core)",
            },
            "files": {"gallery": gallery.name, "plot": plot.name},
        },
    )
    print(f"wrote {path}, {gallery} ({gallery.stat().st_size // 1024} KB), {plot}")


if __name__ == "__main__":
    run_main(main)
