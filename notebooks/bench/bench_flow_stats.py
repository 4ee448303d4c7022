"""The fitted loops' steepness against the FVC sensors': how ``loop_delta_scale`` was chosen.

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_flow_stats.py

Flow statistics of one-core prints (:class:`pretrain.data.stats.PrintStats`: the share of steep
ridges below the core, the nearest delta's distance and angle, the loop's axis), pooled over the
five FVC sensor sets (every print; unlabeled images: no identity, score or EER is read, as
``finger_scale`` was chosen on their foreground area) and over the generator's prints with each
flow setting (identities 5000-5159, one 400x400 impression each, seed 0). The chosen
``loop_delta_scale`` is the grid's setting whose medians of the first three statistics lie
closest to the sensors' (:func:`pretrain.data.flowfit.closest_medians`). Writes
``notebooks/results/flow_stats.json``; about ten minutes on 2 cores.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from _results import print_table, run_main, write_results
from tqdm import tqdm

from pretrain.data import SENSOR_SETS, read_fvc
from pretrain.data.fingerprint import FingerprintGenerator, GeneratorConfig
from pretrain.data.flowfit import FLOW_STATS, closest_medians
from pretrain.data.stats import measure

IDENTITIES = range(5000, 5160)
SHAPE = (400, 400)
BASELINES = {
    "zero_pole": GeneratorConfig(impression_shape=SHAPE),
    "sfinge": GeneratorConfig(impression_shape=SHAPE, flow="sfinge"),
    "sfinge_blend": GeneratorConfig(impression_shape=SHAPE, flow="sfinge_blend"),
}
GRID = ((0.6, 1.3), (0.8, 1.3), (0.5, 1.5), (0.6, 1.6), (0.8, 1.6), (0.5, 1.8), (1.0, 1.5))
STATS = (*FLOW_STATS, "loop_axis_deg")


def _flow(image: np.ndarray) -> dict[str, float]:
    stats = measure(image)
    return {name: float(getattr(stats, name)) for name in STATS}


def _generated(config: GeneratorConfig) -> list[dict[str, float]]:
    generator = FingerprintGenerator(seed=0, config=config, cache_size=1)
    images, _ = generator.impressions(IDENTITIES, 1)
    return [_flow(image) for image in images]


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.nanmedian([r[name] for r in rows])) for name in STATS}


def main() -> None:
    images = [im for name in SENSOR_SETS for im in read_fvc(name).images]
    grid = {f"sfinge_blend {x} {y}": (x, y) for x, y in GRID}
    settings = {
        **BASELINES,
        **{
            name: GeneratorConfig(impression_shape=SHAPE, flow="sfinge_blend", loop_delta_scale=xy)
            for name, xy in grid.items()
        },
    }
    with ProcessPoolExecutor(2) as pool:
        real = list(tqdm(pool.map(_flow, images, chunksize=8), total=len(images), desc="FVC"))
        rows = dict(
            zip(
                settings,
                tqdm(pool.map(_generated, settings.values()), total=len(settings), desc="flows"),
                strict=True,
            )
        )
    target = medians(real)
    found = {name: medians(r) for name, r in rows.items()}
    chosen, gaps = closest_medians(target, {name: found[name] for name in grid})
    figures: dict[str, Any] = {
        "fvc_sensor_sets": {"prints": len(images), "one_core": _one_core(real), **target},
        "generator": {
            name: {"prints": len(r), "one_core": _one_core(r), **found[name]}
            for name, r in rows.items()
        },
        "identities": [IDENTITIES.start, IDENTITIES.stop],
        "gap": gaps,
        "chosen_loop_delta_scale": list(grid[chosen]),
        "rule": "the grid setting with the smallest sum over "
        f"{', '.join(FLOW_STATS)} of |median - FVC's| / FVC's",
    }
    write_results("flow_stats", figures)
    print_table(
        ["prints", *STATS, "gap"],
        [["FVC sensor sets", *target.values(), ""]]
        + [[name, *found[name].values(), gaps.get(name, "")] for name in rows],
    )
    print(f"chosen loop_delta_scale: {grid[chosen]}")


def _one_core(rows: list[dict[str, float]]) -> float:
    return float(np.mean([np.isfinite(r["loop_axis_deg"]) for r in rows]))


if __name__ == "__main__":
    run_main(main)
