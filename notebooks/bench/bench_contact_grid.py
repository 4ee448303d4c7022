"""How much print the backbone sees: the readable print inside the anchor window and the core's
depth in the print, on the FVC sensors and on generator settings of partial contact.

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_contact_grid.py

Two realism figures, one per print, measured the same way on every source:
- ``window_mm2``: readable print (:func:`pretrain.data.minutiae.window_area_mm2`) inside the
  shipped anchor window (``devices.localiser.ANCHOR_SPEC``: 256 x 256 px at 500 dpi = 169 mm^2);
- ``core_edge_px``: how deep inside the print the device's registration finds the core
  (:func:`pretrain.data.stats.registered_core`, the ``data stats`` figure).

On every print of the five FVC sensor sets (unlabeled images: no identity, score or EER is
read) and, for each generator setting of :data:`GRID` (the training generator,
``embed_fingerprint_flowmix.py``'s, with ``partial_prob`` and ``partial_reach`` replaced), on
identities 9000-9049 x 4 impressions (seed 0; none of them is a training or dev identity).

The rule (registered in notebooks/results/fingerprint_ablation.md, "Contact grid", before this
bench first ran): among the settings whose median core depth lies inside the sensor sets'
range of medians, the one whose median window area is nearest the median of the sensor sets'
medians; none if no setting keeps the core depth. Writes ``notebooks/results/contact_grid.json``.

``--fingertips``: the same figures and rule over :data:`FINGERTIP_GRID` (the fingertip's size,
the impression's and two partial-contact settings; "Fingertip grid" in the same notes, registered
before it first ran); writes ``notebooks/results/fingertip_grid.json``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _results import ROOT, print_table, run_main, write_results
from tqdm import tqdm

from devices.localiser import ANCHOR_SPEC
from pretrain.config import load_module
from pretrain.data import SENSOR_SETS, read_fvc
from pretrain.data.fingerprint import GeneratorConfig, generate_impression
from pretrain.data.minutiae import window_area_mm2
from pretrain.data.stats import registered_core

IDENTITIES = range(9000, 9050)
IMPRESSIONS = 4
FLOWMIX = ROOT / "pretrain" / "configs" / "embed_fingerprint_flowmix.py"
# (partial_prob, partial_reach): the training generator's (0.9, (0, 60)) among them.
GRID = (
    *((p, reach) for p in (0.9, 0.6, 0.3) for reach in ((0.0, 60.0), (30.0, 90.0), (60.0, 120.0))),
    (0.0, (0.0, 60.0)),
)
# (finger_scale, impression side px, partial_prob, partial_reach): the training generator's
# (1.0, 320, 0.9, (0, 60)) among them; a larger fingertip gets localiser_large_fingers' canvas.
FINGERTIP_GRID = tuple(
    (scale, side, prob, reach)
    for scale in (1.0, 1.15, 1.25, 1.4)
    for side in (320, 448)
    for prob, reach in ((0.9, (0.0, 60.0)), (0.6, (30.0, 90.0)))
)
LARGE_CANVAS = [512, 432]


def figures(images: Any) -> dict[str, float]:
    """Medians (and p10 / p90) of both figures over the prints."""
    area, depth = [], []
    for image in images:
        area.append(window_area_mm2(image, ANCHOR_SPEC))
        depth.append(registered_core(image)["core_edge_px"])
    a, d = np.asarray(area), np.asarray(depth)
    return {
        "prints": len(a),
        "window_mm2_median": float(np.median(a)),
        "window_mm2_p10": float(np.percentile(a, 10)),
        "window_mm2_p90": float(np.percentile(a, 90)),
        "core_edge_px_median": float(np.median(d)),
        "core_edge_px_p10": float(np.percentile(d, 10)),
    }


def generator_prints(config: GeneratorConfig) -> Any:
    for identity in IDENTITIES:
        for k in range(IMPRESSIONS):
            yield generate_impression(identity, k, seed=0, config=config)


def chosen(grid: list[dict[str, Any]], area: float, depth: tuple[float, float]) -> int | None:
    """The rule: index of the setting nearest ``area`` among those with the core depth inside
    ``depth`` (None if there is none)."""
    keep = [i for i, g in enumerate(grid) if depth[0] <= g["core_edge_px_median"] <= depth[1]]
    if not keep:
        return None
    return min(keep, key=lambda i: abs(grid[i]["window_mm2_median"] - area))


def settings(fingertips: bool) -> list[dict[str, Any]]:
    """The grid's generator settings (what each replaces in the training generator's)."""
    if not fingertips:
        return [{"partial_prob": p, "partial_reach": list(r)} for p, r in GRID]
    out = []
    for scale, side, prob, reach in FINGERTIP_GRID:
        setting = {"finger_scale": scale, "impression_shape": [side, side]}
        setting |= {"partial_prob": prob, "partial_reach": list(reach)}
        out.append(setting | ({"master_shape": LARGE_CANVAS} if scale > 1 else {}))
    return out


def label(g: dict[str, Any]) -> str:
    name = (
        f"p {g['partial_prob']:.1f} reach {g['partial_reach'][0]:.0f}-{g['partial_reach'][1]:.0f}"
    )
    if "finger_scale" in g:
        name = f"scale {g['finger_scale']:.2f} {g['impression_shape'][0]} px {name}"
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fingertips", action="store_true", help="the fingertip grid (fingertip_grid.json)"
    )
    args = parser.parse_args()
    fvc = {
        name: figures(tqdm(read_fvc(name).images, desc=name, leave=False)) for name in SENSOR_SETS
    }
    area = float(np.median([s["window_mm2_median"] for s in fvc.values()]))
    medians = [s["core_edge_px_median"] for s in fvc.values()]
    depth = (float(min(medians)), float(max(medians)))
    base = load_module(FLOWMIX).GENERATOR
    grid = []
    for setting in tqdm(settings(args.fingertips), desc="settings", unit="setting"):
        config = GeneratorConfig.from_dict({**base, **setting})
        grid.append({**setting, **figures(generator_prints(config))})
    pick = chosen(grid, area, depth)
    record = {
        "fvc": fvc,
        "fvc_window_mm2_median_of_sets": area,
        "fvc_core_edge_px_range_of_sets": list(depth),
        "grid": grid,
        "chosen": None if pick is None else grid[pick],
        "identities": [IDENTITIES.start, IDENTITIES.stop - 1],
        "impressions": IMPRESSIONS,
        "window": ANCHOR_SPEC.to_dict(),
    }
    path = write_results("fingertip_grid" if args.fingertips else "contact_grid", record)
    rows = [(f"FVC {k}", v["window_mm2_median"], v["core_edge_px_median"]) for k, v in fvc.items()]
    for i, g in enumerate(grid):
        rows.append(
            (
                label(g) + (" *" if i == pick else ""),
                g["window_mm2_median"],
                g["core_edge_px_median"],
            )
        )
    print_table(("source", "window mm2", "core depth px"), rows)
    print(
        f"sensors: window {area:.1f} mm2 (median of sets), core depth {depth[0]:.1f}-"
        f"{depth[1]:.1f} px; chosen: {'none' if pick is None else rows[len(fvc) + pick][0]}; "
        f"wrote {path}"
    )


if __name__ == "__main__":
    run_main(main)
