"""Fits the generator's loop and whorl flows to SFinGe's own prints (FVC2000 DB4, synthetic).

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_flow_fit.py

Every DB4 print that reads as a loop with one core or as a whorl is fitted by
:func:`pretrain.data.flowfit.fit_table`; the table goes to
``pretrain/data/fingerprint/flow_sfinge.npz`` (``GeneratorConfig(flow="sfinge")`` draws from it)
and the fit's figures to ``notebooks/results/flow_fit.json``. DB4 is the SFinGe method's output,
not a sensor: the five sensor sets are not read. DB4's own FVC figures are reported as fitted-on
from then on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _results import ROOT, print_table, run_main, write_results

from pretrain.data.fingerprint.flow import TABLE
from pretrain.data.flowfit import fit_table
from pretrain.data.fvc import read_fvc

SET = "2000_DB4_B"


def main() -> None:
    prints = read_fvc(SET)
    table, fits = fit_table(prints.images)
    np.savez(TABLE, **table._asdict())
    by_class: dict[str, Any] = {}
    for name in ("left_loop", "whorl"):
        chosen = [f for f in fits if f.fp_class == name]
        by_class[name] = {
            "fitted": len(chosen),
            "residual_before": float(np.mean([f.error_before for f in chosen])),
            "residual_after": float(np.mean([f.error_after for f in chosen])),
            "correction_mean": np.mean([f.corrections for f in chosen], axis=0).round(3).tolist(),
            "delta_offsets_median_px": np.median([f.deltas for f in chosen], axis=0)
            .round(1)
            .tolist(),
        }
    figures = {
        "set": SET,
        "prints": len(prints),
        "classes": by_class,
        "table": str(TABLE.relative_to(ROOT)),
    }
    write_results("flow_fit", figures)
    print_table(
        ["class", "prints fitted", "residual before", "after"],
        [
            [name, c["fitted"], c["residual_before"], c["residual_after"]]
            for name, c in by_class.items()
        ],
    )


if __name__ == "__main__":
    run_main(main)
