"""Fits the generator's loop flows to SFinGe's own prints (FVC2000 DB4, synthetic).

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_flow_fit.py

Every DB4 print that reads as a loop with one core is fitted by
:func:`pretrain.data.flowfit.fit_table`; the table goes to
``pretrain/data/fingerprint/flow_sfinge.npz`` (``GeneratorConfig(flow="sfinge")`` draws from it)
and the fit's figures to ``notebooks/results/flow_fit.json``. DB4 is the SFinGe method's output,
not a sensor: the five sensor sets are not read. DB4's own FVC figures are reported as fitted-on
from then on.
"""

from __future__ import annotations

import numpy as np
from _results import ROOT, print_table, run_main, write_results

from pretrain.data.fingerprint.flow import TABLE
from pretrain.data.flowfit import fit_table
from pretrain.data.fvc import read_fvc

SET = "2000_DB4_B"


def main() -> None:
    prints = read_fvc(SET)
    table, fits = fit_table(prints.images)
    np.savez(TABLE, core=table.core, delta=table.delta, offset=table.offset)
    figures = {
        "set": SET,
        "prints": len(prints),
        "loops_fitted": len(fits),
        "residual_before": float(np.mean([f.error_before for f in fits])),
        "residual_after": float(np.mean([f.error_after for f in fits])),
        "core_correction_mean": table.core.mean(axis=0).round(3).tolist(),
        "delta_correction_mean": table.delta.mean(axis=0).round(3).tolist(),
        "delta_offset_median_px": np.median(table.offset, axis=0).round(1).tolist(),
        "table": str(TABLE.relative_to(ROOT)),
    }
    write_results("flow_fit", figures)
    print_table(
        ["prints", "loops fitted", "residual before", "after", "delta offset (px)"],
        [
            [
                len(prints),
                len(fits),
                figures["residual_before"],
                figures["residual_after"],
                figures["delta_offset_median_px"],
            ]
        ],
    )


if __name__ == "__main__":
    run_main(main)
