"""bench-embed: the two identity-embedding backbones, evaluated by the protocol, with the ablation.

For each modality (faces, fingerprints) it trains the shipped two-stage config
(``pretrain/configs/embed_<modality>.py``: contrastive stage 1, margin-softmax stage 2), runs the
config's evaluation suite (people never seen in pretraining; HOG and LBP baselines on the same
split, in the same call), then trains stage 2 alone for the same total number of optimizer steps
and evaluates it the same way (the ablation). The two-stage backbones are written to
``notebooks/results/models/embed_<modality>/`` and the figures to
``notebooks/results/embedding.json``.

  python notebooks/bench/bench_embed.py [--only face|fingerprint] [--workdir runs/bench-embed]
      [--set <stage>.key=value ...] [--resume]

Measured on 2 shared CPU cores (load average 6-12 from other jobs): 52 min for both modalities
with the print cache warm; the first run also generates the synthetic prints (18,400, one
process per core: ~27 min under that load, once, cached under runs/cache). ``--only`` reruns one
modality and keeps the other's figures; each modality's ``run`` names the call that measured it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from _results import RESULTS, ROOT, print_table, write_results

import pretrain
from devices.preprocess import SPECS, PreprocessSpec
from pretrain.config import TrainConfig
from pretrain.embedding import face_options, face_spec
from pretrain.staged_config import StagedConfig
from pretrain.train import load_splits

MODALITIES = ("face", "fingerprint")
KEYS = ("eer_pct", "frr_pct_at_far", "identification_pct")


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The protocol's figures of one evaluated set, and of its baseline, without the detail."""
    out = {k: report[k] for k in KEYS}
    out["baseline"] = {
        "method": report["baseline"]["method"],
        **{k: report["baseline"][k] for k in KEYS},
    }
    out["baselines"] = {name: {k: b[k] for k in KEYS} for name, b in report["baselines"].items()}
    for k in ("identities", "samples", "genuine_pairs", "impostor_pairs", "split", "set", "sets"):
        if k in report:
            out[k] = report[k]
    if "frr_not_measured" in report:
        out["frr_not_measured"] = report["frr_not_measured"]
    return out


def input_spec(modality: str, config: TrainConfig) -> PreprocessSpec:
    """The preprocessing the model was trained on: faces may resize or crop differently from
    ``FACE_SPEC`` through their dataset options (``input_size``, ``crop``)."""
    if modality == "face":
        return face_spec(**face_options(config.dataset_options))
    return SPECS[modality]


def stage2_alone(run: StagedConfig, steps: int, examples: int) -> StagedConfig:
    """The last stage alone, from a random start, for ``steps`` optimizer steps (whole epochs)."""
    name, config = run.stages[-1]
    per_epoch = examples // config.batch_size
    epochs = math.ceil(steps / per_epoch)
    alone = dataclasses.replace(config, epochs=epochs, init_from="")
    return dataclasses.replace(run, stages=((name, alone),))


def run_modality(
    modality: str, workdir: Path, overrides: list[str], *, resume: bool
) -> dict[str, Any]:
    config_path = ROOT / "pretrain" / "configs" / f"embed_{modality}.py"
    run = pretrain.load_run(config_path, overrides)
    assert isinstance(run, StagedConfig), f"{config_path} is not a staged config"
    print(f"\n== {modality}: two stages ({', '.join(run.names)}) ==", flush=True)
    started = time.perf_counter()
    two = pretrain.fit_stages(run, workdir / "two_stage", resume=resume)
    two_s = time.perf_counter() - started
    total = sum(int(s["steps"]) for s in two.stages.values())
    last = run.stages[-1][1]
    examples = len(load_splits(last).train)
    alone_run = stage2_alone(run, total, examples)
    print(f"\n== {modality}: ablation, stage 2 alone for {total} steps ==", flush=True)
    started = time.perf_counter()
    alone = pretrain.fit_stages(alone_run, workdir / "stage2_only", resume=resume)
    alone_s = time.perf_counter() - started
    assert two.evaluation is not None and alone.evaluation is not None

    out_dir = RESULTS / "models" / f"embed_{modality}"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    final = pretrain.load_model(two.model_dir)
    # The input preprocessing travels with the model, so export repeats it exactly on the device.
    pretrain.save_model(
        out_dir,
        model=final.info["model"],
        model_options=final.info["model_options"],
        params=final.params,
        info={**final.info["info"], "preprocess": input_spec(modality, last).to_dict()},
    )
    stages = {name: {k: v for k, v in s.items()} for name, s in two.stages.items()}
    ablation = {
        "two_stage": {"steps": total, "stages": stages, "seconds": two_s},
        "stage2_only": {
            "steps": sum(int(s["steps"]) for s in alone.stages.values()),
            "stages": alone.stages,
            "seconds": alone_s,
        },
    }
    if modality == "face":
        ablation["two_stage"].update(
            {k: two.evaluation[k] for k in ("eer_pct", "identification_pct")}
        )
        ablation["stage2_only"].update(
            {k: alone.evaluation[k] for k in ("eer_pct", "identification_pct")}
        )
        result = {**figures(two.evaluation), "ablation": ablation}
    else:
        for name, ev in (("two_stage", two.evaluation), ("stage2_only", alone.evaluation)):
            ablation[name]["synthetic"] = {k: ev["synthetic"][k] for k in KEYS}
            ablation[name]["fvc"] = {k: ev["fvc"][k] for k in KEYS}
        result = {
            "synthetic": figures(two.evaluation["synthetic"]),
            "fvc": figures(two.evaluation["fvc"]),
            "ablation": ablation,
        }
    result["model"] = {
        "dir": str(out_dir.relative_to(ROOT)),
        "params": final.info["params"],
        "model_options": final.info["model_options"],
        "config": run.to_dict(),
    }
    return result


def table(results: dict[str, Any]) -> None:
    rows = []

    def add(name: str, r: dict[str, Any]) -> None:
        ident = r["identification_pct"]
        rows.append((name, r["eer_pct"], ident["1"], ident["3"], ident["5"]))

    if "face" in results:
        face = results["face"]
        add("face s21-s40: two-stage", face)
        add("face: stage 2 alone", face["ablation"]["stage2_only"])
        add(f"face: baseline {face['baseline']['method']}", face["baseline"])
    if "fingerprint" in results:
        fp = results["fingerprint"]
        for split in ("synthetic", "fvc"):
            add(f"fingerprint {split}: two-stage", fp[split])
            add(f"fingerprint {split}: stage 2 alone", fp["ablation"]["stage2_only"][split])
            add(f"fingerprint {split}: baseline {fp[split]['baseline']['method']}",
                fp[split]["baseline"])  # fmt: skip
    print()
    print_table(("set / model", "EER %", "1-shot %", "3-shot %", "5-shot %"), rows)
    if "fingerprint" in results:
        frr = results["fingerprint"]["synthetic"]["frr_pct_at_far"]
        print(
            f"synthetic FRR at FAR 1e-2 / 1e-3 / 2e-5: {frr['1e-2']} / {frr['1e-3']} / {frr['2e-5']} %"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=MODALITIES, action="append")
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench-embed"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true", help="continue an interrupted bench")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    workdir = Path(args.workdir)
    modalities = args.only or MODALITIES
    for modality in modalities:  # only the modalities this call runs: --only keeps the others
        if not args.resume and (workdir / modality).exists():
            shutil.rmtree(workdir / modality)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    for modality in modalities:
        results[modality] = run_modality(
            modality, workdir / modality, args.overrides, resume=args.resume
        )
    results["wall_s"] = time.perf_counter() - started
    # Each modality says which invocation measured it (an --only run keeps the other's figures).
    command = " ".join(shlex.quote(a) for a in sys.argv)
    for modality in modalities:
        results[modality]["run"] = {"command": command, "bench_wall_s": results["wall_s"]}
    previous = RESULTS / "embedding.json"
    if args.only and previous.exists():  # keep the other modality's figures from its last run
        old = json.loads(previous.read_text())
        for modality in MODALITIES:
            if modality not in results and modality in old:
                results[modality] = old[modality]
    path = write_results("embedding", results)
    table(results)
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
