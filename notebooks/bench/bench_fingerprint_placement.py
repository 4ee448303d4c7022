"""The placement-realism fingerprint backbone against the committed one, by the rule registered in
``pretrain/configs/embed_fingerprint_placement.py`` before its run.

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_fingerprint_placement.py \\
      --candidate /work/runs/prints_placement/placement/model

Per backbone: the dev EER (the trainer's validation: every pair of the synthetic validation
identities 0-99 x 8, seed 0, cosine) on prints of the default generator and of the placement
generator (``GENERATOR`` of that config), then the FVC protocol on the core-registered inputs the
device makes (reported, never used). The decision applies the registered rule to the dev figures
measured here, the committed backbone's in the same run. Writes
``notebooks/results/fingerprint_placement.json``; a few minutes (the dev prints are cached).

The decision in that file was taken at commit 8d4cf00, against the backbone committed then; the
adopted candidate has since become the committed backbone, so a rerun compares against it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from _results import ROOT, print_table, run_main, write_results

import pretrain
from devices.registration import CORE_SPEC
from devices.verification import eer, pair_scores
from pretrain.configs.embed_fingerprint_placement import GENERATOR, get_config
from pretrain.data import ArrayDataset
from pretrain.embedding.data import synthetic_val_set
from pretrain.embedding.suites import embed
from pretrain.evaluation import evaluate_fvc, features_scorer, protocol_figures, spec_prepare

COMMITTED = ROOT / "notebooks" / "results" / "models" / "embed_fingerprint"
MARGIN_PTS = 0.5  # the registered rule: better by >= 0.5 on placement prints, worse by <= 0.5


def dev_sets() -> dict[str, ArrayDataset]:
    """The dev identities as the default and as the placement generator draw them."""
    options = get_config()["stages"]["placement"]["dataset_options"]
    return {
        name: synthetic_val_set(**{**options, "generator": generator})
        for name, generator in (("default", None), ("placement", GENERATOR))
    }


def dev_eer_pct(model: pretrain.SavedModel, dev: ArrayDataset) -> float:
    """The trainer's validation EER (%) of ``model`` on ``dev``."""
    genuine, impostor = pair_scores(embed(model.module, model.params, dev.images), dev.labels)
    return 100 * eer(genuine, impostor)


def row(path: Path, devs: dict[str, ArrayDataset], fvc: bool) -> dict[str, Any]:
    model = pretrain.load_model(path)
    out: dict[str, Any] = {
        "model": str(path),
        "dev_eer_pct": {name: dev_eer_pct(model, dev) for name, dev in devs.items()},
    }
    if fvc:
        features = features_scorer(lambda x: embed(model.module, model.params, x))
        out.update(protocol_figures(evaluate_fvc(features, prepare=spec_prepare(CORE_SPEC))))
    return out


def decide(committed: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """The registered rule on the dev figures of one run."""
    bars = {
        "placement": committed["dev_eer_pct"]["placement"] - MARGIN_PTS,
        "default": committed["dev_eer_pct"]["default"] + MARGIN_PTS,
    }
    adopt = (
        candidate["dev_eer_pct"]["placement"] <= bars["placement"]
        and candidate["dev_eer_pct"]["default"] <= bars["default"]
    )
    return {"bars_pct": bars, "adopt": adopt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidate", required=True, help="the placement run's model folder")
    parser.add_argument("--no-fvc", action="store_true", help="dev figures only")
    args = parser.parse_args()
    devs = dev_sets()
    rows = {
        "committed": row(COMMITTED, devs, not args.no_fvc),
        "candidate": row(Path(args.candidate), devs, not args.no_fvc),
    }
    decision = decide(rows["committed"], rows["candidate"])
    path = write_results(
        "fingerprint_placement", {"rows": rows, "decision": decision, "generator": GENERATOR}
    )
    print_table(
        ("backbone", "dev EER % (default)", "dev EER % (placement)", "FVC mean EER %"),
        [
            (
                k,
                r["dev_eer_pct"]["default"],
                r["dev_eer_pct"]["placement"],
                r.get("fvc_protocol_mean_eer_pct", "-"),
            )
            for k, r in rows.items()
        ],
    )
    print(f"adopt: {decision['adopt']} (bars {decision['bars_pct']}); wrote {path}")


if __name__ == "__main__":
    run_main(main)
