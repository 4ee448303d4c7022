"""bench-enroll's speed comparison: the device's 5-shot enrollment against the official recipe's,
timed in a fresh process per round (devices.fresh_process_rounds), the sides alternating inside it
(devices.alternating_blocks: blocks of one enrollment of every person per side, the order flipped
every other block), on one interpreter thread and one BLAS thread.

The same 5 captures of each person enroll on both sides, from a loaded interpreter (one untimed
block first): the device's default flow (personalize.time_enrollments: ``Device.enroll`` as an
app calls it; ``enroll`` = embed + train + calibrate) and the guide's app
(export.baselines.time_official_enrollments: ``load`` of the person's captures, then its epochs of
``train`` over everyone's bottlenecks). A round's figure is each side's median over its blocks of
the median over the people; the bench reports the median over rounds, their range, and ``speed``
= the ratio of the medians (with the range of the rounds' own ratios). What each side includes:
:data:`INCLUDES`.

Alone, on the committed face artifact (builds the Keras recipe over its backbone, ~1 min, with
``--jax2tf`` also the jax2tf one; the rounds a few minutes; prints the figures, writes ``--out``
if given, never enrollment.json):

  python notebooks/bench/bench_enroll_timing.py [--face-artifact DIR] [--key PUB] [--rounds 9]
      [--blocks 3] [--jax2tf] [--out FILE]

One round (started by the above and by bench_enroll.py; prints ``{"seconds": {"side/label": s}}``):

  python notebooks/bench/bench_enroll_timing.py --round --inputs X.npz --model NAME=M.tflite ...
"""

# ruff: noqa: E402  (the BLAS thread count is set before numpy loads)
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _results import RESULTS, ROOT, print_table, run_main

from devices import fresh_process_rounds, over_rounds, ratio_over_rounds

DEVICE = "device"
ROUNDS = 9
BLOCKS = 3
INCLUDES = {
    DEVICE: "Device.enroll's default flow for the artifact's modality, as an app calls it: "
    "enroll = embed (the 5 captures through the int8 embed signature) + train (imprinting; SGD "
    "only if the flow trains) + calibrate (the user's threshold from the background); "
    "whole_call adds the artifact's check (its files' stat; verified again only if one changed), "
    "the quality gate and preprocessing, the "
    "memory plan and the encrypted record written to disk",
    "official": "the guide's app: enroll = load (the 5 captures through the float backbone, one "
    "batch) + train (the recipe's epochs of its train signature over everyone's bottlenecks, the "
    "new person's appended); its save needs Flex (not run), and it sets no threshold",
    "both": "the same 5 captures per person (the fixed split's pool), every person of the set "
    "once per block, warm interpreters; preprocessing (the same on both sides) and persistence "
    "are outside enroll",
}


def timing_note(rounds: int, blocks: int, people: int) -> str:
    return (
        f"{rounds} rounds, each a fresh process holding both sides (one interpreter thread, one "
        f"BLAS thread): after one untimed block, {blocks} blocks alternating the sides (order "
        f"flipped every other block), a block = one enrollment of each of {people} people; a "
        "round's figure = the median over its blocks of the median over the people; enroll_ms "
        "= the median over rounds, range = the rounds' min and max, speed = the ratio of the "
        "medians (range: the rounds' own ratios)"
    )


def save_inputs(path: Path, captures: np.ndarray, inputs: np.ndarray) -> None:
    """What a round loads: each person's raw captures and their preprocessed model inputs."""
    np.savez(path, captures=captures, inputs=inputs)


def _round(args: argparse.Namespace) -> dict[str, float]:
    """One round: the Device and every official model loaded here, their timed enrollments
    alternating in blocks; ``{"side/label": seconds}``."""
    from devices import alternating_blocks
    from export.baselines import OfficialModel, official_gallery, time_official_enrollments
    from personalize import Device, time_enrollments

    data = np.load(args.inputs)
    captures, inputs = [list(p) for p in data["captures"]], data["inputs"]
    with tempfile.TemporaryDirectory() as tmp:
        device = Device(
            args.face_artifact,
            Path(tmp) / "store",
            profile=args.profile,
            trusted_key=args.key,
            num_threads=1,
            keys=Path(tmp) / "keys",
        )
        calls: dict[str, Any] = {DEVICE: lambda: time_enrollments(device, captures, warmup=0)}
        for item in args.model:
            name, _, path = item.partition("=")
            model = OfficialModel(Path(path).read_bytes(), num_threads=1)
            gallery = official_gallery(model, inputs)
            calls[name] = lambda m=model, g=gallery: time_official_enrollments(
                m, inputs, epochs=args.epochs, batch=args.batch, warmup=0, bottlenecks=g
            )
        figures = alternating_blocks(calls, blocks=args.blocks)
    return {f"{side}/{label}": s for side, f in figures.items() for label, s in f.items()}


def speed_rounds(
    artifact: Path,
    key: Path,
    officials: dict[str, bytes],
    captures: np.ndarray,
    inputs: np.ndarray,
    *,
    epochs: int,
    batch: int,
    profile: str = "phone_cpu",
    rounds: int = ROUNDS,
    blocks: int = BLOCKS,
) -> dict[str, Any]:
    """The device against each official model, in fresh processes (module docstring).

    Args:
      officials: ``{name: the recipe's .tflite bytes}`` (one class per person).
      captures: raw captures ``(people, k, h, w)``; ``inputs`` the same preprocessed.

    Returns:
      ``{"timing", "includes", "rounds", "people", "ms": {side: {label: over_rounds}},
      "speed": {name: ratio_over_rounds of its enroll over the device's}}``.
    """
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "inputs.npz"
        save_inputs(data, captures, inputs)
        command = [script, "--round", "--inputs", str(data), "--blocks", str(blocks)]
        command += ["--epochs", str(epochs), "--batch", str(batch)]
        command += ["--face-artifact", str(artifact), "--key", str(key), "--profile", profile]
        for name, blob in officials.items():
            model = Path(tmp) / f"{name}.tflite"
            model.write_bytes(blob)
            command += ["--model", f"{name}={model}"]
        per_round = fresh_process_rounds({"round": command}, rounds=rounds)["round"]
    ms: dict[str, dict[str, Any]] = {}
    for figure in per_round[0]:
        side, _, label = figure.partition("/")
        ms.setdefault(side, {})[label] = over_rounds([1e3 * r[figure] for r in per_round])
    device_ms = ms[DEVICE]["enroll"]["rounds"]
    return {
        "timing": timing_note(rounds, blocks, len(captures)),
        "includes": INCLUDES,
        "rounds": rounds,
        "people": len(captures),
        "ms": ms,
        "speed": {
            name: ratio_over_rounds(ms[name]["enroll"]["rounds"], device_ms) for name in officials
        },
    }


PARTS = {DEVICE: ("embed", "train", "calibrate"), "official": ("load", "train")}
# The keys apply_timing adds to the device's row (bench-enroll's ``face`` keeps them).
TIMED_KEYS = (
    "calibrate_ms",
    "whole_call_ms",
    "enroll_ms_range",
    "enroll_ms_rounds",
    "enroll_ms_includes",
    "in_bench_ms",
    "timing",
)


def apply_timing(runs: dict[str, Any], block: dict[str, Any]) -> None:
    """The measured figures into bench-enroll's rows (in place): each side's ``enroll_ms`` and
    parts become the medians over rounds (``embed_ms`` is the official ``load``); the bench's
    in-process figures stay as ``in_bench_ms``; ``timing`` says how."""
    rows = {DEVICE: runs["pocketfit"], **{name: runs[name] for name in block["speed"]}}
    for side, row in rows.items():
        ms = block["ms"][side]
        row["in_bench_ms"] = {k: row.get(f"{k}_ms") for k in ("enroll", "embed", "train")}
        row["enroll_ms"] = ms["enroll"]["median"]
        row["enroll_ms_range"] = ms["enroll"]["range"]
        row["enroll_ms_rounds"] = ms["enroll"]["rounds"]
        for part in PARTS[DEVICE if side == DEVICE else "official"]:
            key = "embed_ms" if part == "load" else f"{part}_ms"
            row[key] = ms[part]["median"]
        if side == DEVICE:
            row["whole_call_ms"] = ms["whole_call"]["median"]
        row["timing"] = block["timing"]
        row["enroll_ms_includes"] = INCLUDES[DEVICE if side == DEVICE else "official"]
    runs["timing"] = block


def _standalone(args: argparse.Namespace) -> None:
    """Builds the recipe(s) over the artifact's backbone and times them against the device."""
    from bench_enroll import OFFICIAL_BATCH, OFFICIAL_EPOCHS, OFFICIAL_LR, face_set, pools

    import pretrain
    from devices.preprocess import PreprocessSpec, preprocess_batch
    from export.artifact.split import split_backbone
    from export.baselines import build_official, build_official_keras, keras_backbone
    from personalize import load_artifact

    artifact = Path(args.face_artifact)
    key = Path(args.key) if args.key else artifact.parent / "signing.pub"
    manifest = load_artifact(artifact, key).manifest
    spec = PreprocessSpec.from_dict(manifest["input"]["preprocess"])
    backbone = split_backbone(pretrain.load_model(ROOT / manifest["source"]["model_dir"]))
    data = face_set()
    pool, _ = pools(data)
    people = [pool[i][:5] for i in sorted(pool)]
    captures = np.stack([[data.images[j] for j in p] for p in people])
    inputs = np.stack([preprocess_batch([data.images[j] for j in p], spec) for p in people])
    n = len(people)
    officials = {
        "tflite_official_keras": build_official_keras(
            keras_backbone(backbone), n, learning_rate=OFFICIAL_LR
        )
    }
    if args.jax2tf:
        officials["tflite_official"] = build_official(backbone, n, learning_rate=OFFICIAL_LR)
    block = speed_rounds(
        artifact,
        key,
        officials,
        captures,
        inputs,
        epochs=OFFICIAL_EPOCHS,
        batch=OFFICIAL_BATCH,
        profile=args.profile,
        rounds=args.rounds,
        blocks=args.blocks,
    )
    rows = [(side, f["enroll"]["median"], *f["enroll"]["range"]) for side, f in block["ms"].items()]
    print_table(("side", "enroll ms (median)", "min", "max"), rows)
    for name, s in block["speed"].items():
        print(f"speed vs {name}: {s['ratio']:.2f} (rounds {s['range'][0]:.2f}-{s['range'][1]:.2f})")
    text = json.dumps({"set": data.name, **block}, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--face-artifact", default=str(RESULTS / "artifacts" / "face"))
    parser.add_argument("--key", help="trusted public key (default: signing.pub beside it)")
    parser.add_argument("--profile", default="phone_cpu")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--jax2tf", action="store_true", help="also the jax2tf recipe")
    parser.add_argument("--blocks", type=int, default=BLOCKS, help="alternating blocks a round")
    parser.add_argument("--out", help="write the figures here (JSON)")
    parser.add_argument("--round", action="store_true", help="run one round (needs --inputs)")
    parser.add_argument("--inputs", help="a round's captures (.npz, from save_inputs)")
    parser.add_argument("--model", action="append", default=[], help="NAME=official .tflite")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    if not args.round:
        _standalone(args)
        return
    if not args.inputs or not args.key:
        parser.error("--round needs --inputs and --key")
    print(json.dumps({"seconds": _round(args)}))


if __name__ == "__main__":
    run_main(main)
