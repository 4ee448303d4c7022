"""A fingerprint backbone trained on a more realistic generator against the committed one, by the
rule its config registered before the run (``pretrain/configs/embed_fingerprint_placement.py``,
``embed_fingerprint_partial.py``).

    POCKETFIT_DATA=../shared/datasets python notebooks/bench/bench_fingerprint_generator.py \\
      --config pretrain/configs/embed_fingerprint_partial.py --candidate <workdir>/model
    ... --config <config> --no-fvc   (no --candidate: the committed backbone's bars alone)

Per backbone: the dev EER (the trainer's validation: every pair of the synthetic validation
identities 0-99 x 8, seed 0, cosine) on prints of the generator the committed backbone was
trained on (the config's ``BASE``) and of the config's new one (``GENERATOR``), then the FVC
protocol on the inputs the device makes by the backbone's own spec (core- or anchor-registered;
reported, never used), with ``fvc_bootstrap``: the mean EER's 95% interval over fingers for
each and for the candidate's difference from the committed backbone (paired,
:func:`pretrain.evaluation.fvc_bootstrap.mean_eer_interval`; 45 impostor pairs a set make FVC
differences of a point or two noise). When the new generator draws flow twins
(``twin_share``), each row also holds ``twins``: :func:`pretrain.evaluation.twin_separation`
on its dev prints. The decision
applies the registered rule to the dev figures measured here, the committed backbone's in the
same run: the candidate's dev EER on the new prints at least ``MARGIN_PTS`` below the committed
backbone's, and on the base prints at most ``MARGIN_PTS`` above. Writes
``notebooks/results/fingerprint_<stage>.json``; a few minutes (the dev prints are cached).

The decisions taken so far, each against the backbone committed then (the commit each file
records, ``machine.git_commit``): adopted, each the committed backbone in its turn,
``fingerprint_placement.json`` (8d4cf00), ``fingerprint_partial.json`` (de8d562),
``fingerprint_period.json`` (9e3b06b), ``fingerprint_mixed.json`` (06d648a) and
``fingerprint_flowmix.json`` (b938af4); not adopted, ``fingerprint_bent.json`` (b548556),
``_anchor`` (6d754f0), ``_flow`` (21edeb6), ``_steep`` (8489bf5), ``_twins`` and
``_twins_fast`` (074ccf4), ``_minutiae`` (969fd25), ``_minutiae_strong`` (df98d38),
``_minutiae_conv`` (852fccd), ``_ridge`` (cdf593f), ``_fine`` (8e47d4d, on a snapshot of the
run's best epoch), ``_fine_scratch`` (a9f4965, a snapshot of its best epoch, 18 of 22) and
``_coarse_scratch`` (3c8b5b1, the run's model: its best epoch, 19 of 27).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from _results import ROOT, print_table, run_main, shown, write_results

import pretrain
from devices.preprocess import PreprocessSpec
from devices.verification import eer, pair_scores
from export.artifact.split import preprocess_of
from pretrain.config import ConfigError, load_module
from pretrain.data import ArrayDataset
from pretrain.embedding.data import synthetic_val_set
from pretrain.embedding.suites import embed
from pretrain.evaluation import (
    evaluate_fvc,
    mean_eer_interval,
    protocol_figures,
    spec_prepare,
    spec_scorer,
    twin_separation,
)

COMMITTED = ROOT / "notebooks" / "results" / "models" / "embed_fingerprint"
MARGIN_PTS = 0.5  # the registered rule: better by >= 0.5 on the new prints, worse by <= 0.5


def load_config(path: Path) -> ModuleType:
    """The config module: ``get_config``, ``GENERATOR`` and ``BASE`` (name, generator options)."""
    try:
        module = load_module(path)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    for name in ("get_config", "GENERATOR", "BASE"):
        if not hasattr(module, name):
            raise SystemExit(f"error: {path} defines no {name} (a generator config has all three)")
    return module


def names(config: ModuleType) -> tuple[str, str]:
    """(base, new): the dev sets' names, the new one being the config's single stage."""
    stages = list(config.get_config()["stages"])
    return config.BASE[0], stages[-1]


def dev_sets(config: ModuleType, spec: PreprocessSpec | None = None) -> dict[str, ArrayDataset]:
    """The dev identities as the base and as the new generator draw them, cut as the config's
    stage does or as ``spec`` (a backbone's own crop and window)."""
    base, new = names(config)
    options = config.get_config()["stages"][new]["dataset_options"]
    if spec is not None:
        options = {**options, "crop": spec.crop, "window": spec.crop_size[0]}
    return {
        name: synthetic_val_set(**{**options, "generator": generator})
        for name, generator in ((base, config.BASE[1]), (new, config.GENERATOR))
    }


def dev_eer_pct(features: np.ndarray, dev: ArrayDataset) -> float:
    """The trainer's validation EER (%) of a backbone's ``features`` of ``dev``."""
    genuine, impostor = pair_scores(features, dev.labels)
    return 100 * eer(genuine, impostor)


def row(path: Path, config: ModuleType, fvc: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A backbone's dev EERs and FVC figures, on the inputs its own spec makes (a backbone
    registered on the learned anchor is measured on anchor windows, the others on core ones;
    each at its own window size),
    and its FVC scores per set (empty without ``fvc``)."""
    model = pretrain.load_model(path)
    spec = preprocess_of(model)
    devs = dev_sets(config, spec)
    embedded = {name: embed(model.module, model.params, dev.images) for name, dev in devs.items()}
    out: dict[str, Any] = {
        "model": shown(path),
        "crop": spec.crop,
        "dev_eer_pct": {name: dev_eer_pct(embedded[name], dev) for name, dev in devs.items()},
    }
    new = names(config)[1]
    if config.GENERATOR.get("twin_share", 0) > 0:  # dev identities 0-99: twins are 2k, 2k + 1
        out["twins"] = twin_separation(embedded[new], devs[new].labels)
    if not fvc:
        return out, {}
    features = spec_scorer(lambda x: embed(model.module, model.params, x), spec)
    report = evaluate_fvc(features, prepare=spec_prepare(spec), keep_scores=True)
    scores = report.pop("scores")  # bootstrapped once for all rows, paired, in main()
    out.update(protocol_figures(report))
    return out, scores


def decide(
    committed: dict[str, Any], candidate: dict[str, Any], *, base: str, new: str
) -> dict[str, Any]:
    """The registered rule on the dev figures of one run."""
    bars = {
        new: committed["dev_eer_pct"][new] - MARGIN_PTS,
        base: committed["dev_eer_pct"][base] + MARGIN_PTS,
    }
    adopt = (
        candidate["dev_eer_pct"][new] <= bars[new] and candidate["dev_eer_pct"][base] <= bars[base]
    )
    return {"bars_pct": bars, "adopt": adopt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="the generator config of the run")
    parser.add_argument("--candidate", help="the run's model folder (none: committed bars only)")
    parser.add_argument("--no-fvc", action="store_true", help="dev figures only")
    args = parser.parse_args()
    config = load_config(Path(args.config))
    base, new = names(config)
    paths = {"committed": COMMITTED}
    if args.candidate:
        paths["candidate"] = Path(args.candidate)
    measured = {k: row(path, config, not args.no_fvc) for k, path in paths.items()}
    rows = {k: figures for k, (figures, _) in measured.items()}
    record: dict[str, Any] = {"rows": rows, "generator": config.GENERATOR, "base": config.BASE}
    if not args.no_fvc:
        boot = mean_eer_interval({k: sc for k, (_, sc) in measured.items()})
        record["fvc_bootstrap"] = boot
        for k, figures in rows.items():  # each row's own interval: the same draws, unpaired
            figures["fvc_protocol_mean_eer_ci95_pct"] = boot["mean_eer_pct"][k]["ci_pct"]
    if "candidate" in rows:
        record["decision"] = decide(rows["committed"], rows["candidate"], base=base, new=new)
    path = write_results(f"fingerprint_{new}", record)
    print_table(
        ("backbone", f"dev EER % ({base})", f"dev EER % ({new})", "FVC mean EER %"),
        [
            (
                k,
                r["dev_eer_pct"][base],
                r["dev_eer_pct"][new],
                r.get("fvc_protocol_mean_eer_pct", "-"),
            )
            for k, r in rows.items()
        ],
    )
    for k, d in record.get("fvc_bootstrap", {}).get("difference_pct", {}).items():
        lo, hi = d["ci_pct"]
        print(f"FVC mean EER, {k} - {d['vs']}: 95% interval [{lo:+.2f}, {hi:+.2f}] (reported only)")
    if "decision" in record:
        print(f"adopt: {record['decision']['adopt']} (bars {record['decision']['bars_pct']})")
    print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
