"""Minutiae density of the FVC sensors' prints against the generator's, and how many of a
master's minutiae its impressions show again.

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_minutiae_stats.py

:mod:`pretrain.data.minutiae` (one extractor for every source, so a difference is in the images)
on every print of the five FVC sensor sets (unlabeled images: no identity, score or EER is read,
as ``bench_flow_stats.py`` reads their flow) and on the generator's impressions and clean masters
(identities 9000-9049, two impressions each, seed 0), for the training (flowmix) generator and
the default one. For the generator, the rendering's effect on minutiae: the share of a master's
minutiae (mapped into the impression by its rigid placement) found again within 10 px, and the
share of an impression's minutiae with no master minutia that near (spurious). Writes
``notebooks/results/minutiae_stats.json``; about two minutes on 2 cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _results import ROOT, print_table, run_main, write_results
from tqdm import tqdm

from pretrain.config import load_module
from pretrain.data import SENSOR_SETS, read_fvc
from pretrain.data.fingerprint import GeneratorConfig, generate_impression, generate_master
from pretrain.data.fingerprint.impressions import rigid_to_impression
from pretrain.data.fingerprint.synthetic import impression_placement
from pretrain.data.minutiae import (
    MinutiaeDensity,
    density,
    found_in,
    master_mask,
    master_minutiae,
    recovered,
)

IDENTITIES = range(9000, 9050)
IMPRESSIONS = 2
TOLERANCE_PX = 10.0
FLOWMIX = ROOT / "pretrain" / "configs" / "embed_fingerprint_flowmix.py"


def summary(rows: list[MinutiaeDensity]) -> dict[str, Any]:
    """Medians (and the density's p10 / p90) over prints; prints with no area are counted."""
    per = np.array([r.per_mm2 for r in rows if np.isfinite(r.per_mm2)])
    total = sum(r.total for r in rows)
    return {
        "prints": len(rows),
        "no_area": len(rows) - len(per),
        "per_mm2_median": float(np.median(per)),
        "per_mm2_p10": float(np.percentile(per, 10)),
        "per_mm2_p90": float(np.percentile(per, 90)),
        "count_median": float(np.median([r.total for r in rows])),
        "area_mm2_median": float(np.median([r.area_mm2 for r in rows])),
        "endings_share": sum(r.endings for r in rows) / max(total, 1),
    }


def measured(gray: np.ndarray) -> tuple[list, np.ndarray, MinutiaeDensity]:
    found, mask = found_in(gray)
    return found, mask, density(found, mask)


def generator(config: GeneratorConfig) -> dict[str, Any]:
    impressions, masters = [], []
    again = expected = spurious = found = 0
    for identity in tqdm(IDENTITIES, desc="generator", unit="finger", leave=False):
        master = generate_master(identity, seed=0, config=config)
        truth = master_minutiae(master)
        masters.append(density(truth, master_mask(master)))
        for k in range(IMPRESSIONS):
            image = generate_impression(identity, k, seed=0, config=config, master=master)
            points, mask, row = measured(image)
            impressions.append(row)
            placement = impression_placement(identity, k, seed=0, config=config)
            mapped = [
                rigid_to_impression(placement, config.impression_shape, master.centre, m.x, m.y)
                for m in truth
            ]  # (row, col)
            xy = np.array([(c, r) for r, c in mapped], np.float64).reshape(-1, 2)
            r = recovered(xy, points, mask, tolerance=TOLERANCE_PX)
            again, expected = again + r.found_again, expected + r.expected
            spurious, found = spurious + r.spurious, found + r.found
    return {
        "impressions": summary(impressions),
        "masters": summary(masters),
        "found_again_share": again / max(expected, 1),
        "spurious_share": spurious / max(found, 1),
    }


def main() -> None:
    fvc = {}
    for name in tqdm(SENSOR_SETS, desc="FVC sets", unit="set"):
        fvc[name] = summary([measured(image)[2] for image in read_fvc(name).images])
    generators = {
        "flowmix": generator(GeneratorConfig.from_dict(load_module(FLOWMIX).GENERATOR)),
        "default": generator(GeneratorConfig()),
    }
    sensors = float(np.median([s["per_mm2_median"] for s in fvc.values()]))
    record = {
        "fvc": fvc,
        "fvc_per_mm2_median_of_sets": sensors,
        "generators": generators,
        "identities": [IDENTITIES.start, IDENTITIES.stop - 1],
        "impressions": IMPRESSIONS,
        "tolerance_px": TOLERANCE_PX,
    }
    path = write_results("minutiae_stats", record)
    rows = [(f"FVC {k}", *_cells(v), "-", "-") for k, v in fvc.items()]
    for name, g in generators.items():
        again, spur = g["found_again_share"], g["spurious_share"]
        rows.append((f"{name} impressions", *_cells(g["impressions"]), again, spur))
        rows.append((f"{name} masters", *_cells(g["masters"]), "-", "-"))
    print_table(
        ("prints", "per mm2", "p10", "p90", "count", "mm2", "endings", "found again", "spurious"),
        rows,
    )
    print(f"FVC sensor sets, median of the set medians: {sensors:.3f} per mm2; wrote {path}")


def _cells(s: dict[str, Any]) -> tuple[float, ...]:
    return (
        s["per_mm2_median"],
        s["per_mm2_p10"],
        s["per_mm2_p90"],
        s["count_median"],
        s["area_mm2_median"],
        s["endings_share"],
    )


if __name__ == "__main__":
    run_main(main)
