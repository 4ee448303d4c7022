"""bench-pretrain: both LeNets on full MNIST; throughput vs a bare optax loop and vs Keras;
data parallel on host devices and processes.

Trains each model with its shipped config (55,000 training images, 5,000 held out for the plateau
schedule and early stopping, the 10,000 test images for the reported error), copies the best
parameters to notebooks/results/models/<name>/, then measures training throughput of the
framework (``pretrain.Trainer.train_epoch``), of a bare jitted optax loop on the same model,
optimizer and batch size, and of Keras ``model.fit`` on the same network (the peer in
``bench_pretrain_keras.py``, its own process), alternating the three in short rounds so that
machine noise hits all of them. Then ``pretrain.train.dp_check`` trains LeNet-5 on 1 device, 2 host devices and
2 processes (one core each): the same parameters, and the throughput of each.

Besides images/s, each throughput side records its process's CPU time per training step (all
threads): on a machine shared with other jobs the wall-time ratio also measures which process
gets more of the cores, the CPU-time ratio only how much work each does per step.

  python notebooks/bench/bench_pretrain.py [--models lenet300 lenet5] [--rounds 15] [--set epochs=1]
      [--no-data-parallel] [--throughput-only]

``--throughput-only`` measures the throughput figures again without training (the models, test
errors and data-parallel figures stay those of the JSON's earlier full run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from _results import RESULTS, ROOT, print_table, run_main, write_results
from bench_pretrain_keras import KerasPeer

import pretrain
from pretrain.train import Trainer, dp_check, load_splits, make_optimizer

# Rounds each side runs before the timed ones (compilation, Keras's tracing and XLA build).
WARMUP_ROUNDS = 2
# The printed table: figure key -> column title.
TABLE = {
    "test_error_pct": "test err %",
    "epochs": "epochs",
    "images_per_s": "img/s",
    "throughput_ratio": "vs bare",
    "keras_images_per_s": "keras img/s",
    "ratio_vs_keras": "vs keras",
    "cpu_ms_per_step": "cpu ms/step",
    "keras_cpu_ms_per_step": "keras cpu ms",
    "cpu_ratio_vs_keras": "cpu vs keras",
}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def bare_loop_epoch(
    module: Any,
    config: pretrain.TrainConfig,
    params: Any,
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
) -> tuple[Any, float]:
    """What a user writes without the framework: numpy batches into a jitted optax step."""
    tx = make_optimizer(config)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            logits = module.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    b = config.batch_size
    order = np.random.default_rng(seed).permutation(len(labels))
    steps = len(labels) // b
    start = time.perf_counter()
    for i in range(steps):
        idx = order[i * b : (i + 1) * b]
        params, opt_state, _ = step(params, opt_state, images[idx], labels[idx])
        if i == 0:
            jax.block_until_ready(params)
            start = time.perf_counter()
    jax.block_until_ready(params)
    return params, (steps - 1) * b / (time.perf_counter() - start)


def throughput(
    name: str, config: pretrain.TrainConfig, splits: Any, rounds: int, steps: int
) -> dict[str, Any]:
    """Framework vs bare loop vs Keras, alternating over the same ``steps``-batch slice.

    Short alternating rounds put all sides under the same machine load; the figures are the
    medians over rounds of each side's images/s and of the per-round ratios. CPU ms per step:
    the framework's over its whole round (first step included), Keras's from the end of its
    first step to the end of its last.
    """
    trainer = Trainer(config, splits.train.images)
    state = trainer.init_state(jax.random.key(0))
    bare_params = jax.device_get(state.params)
    part = splits.train.take(slice(0, steps * config.batch_size))
    ours, bare, keras = [], [], []
    ours_cpu, keras_cpu, loads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        peer = KerasPeer(name, config.to_dict(), part.images, part.labels, Path(tmp))
        try:
            for r in range(WARMUP_ROUNDS + rounds):
                cpu = time.process_time()
                state, stats = trainer.train_epoch(
                    state, part, key=jax.random.key(1), epoch=r, progress=False
                )
                cpu = 1e3 * (time.process_time() - cpu) / steps
                bare_params, rate = bare_loop_epoch(
                    trainer.module, config, bare_params, part.images, part.labels, r
                )
                keras_round = peer.round()
                if r >= WARMUP_ROUNDS:
                    ours.append(stats.images_per_s)
                    bare.append(rate)
                    keras.append(keras_round.images_per_s)
                    ours_cpu.append(cpu)
                    keras_cpu.append(keras_round.cpu_ms_per_step)
                    loads.append(os.getloadavg()[0])
        finally:
            peer.close()
    ratios = [a / b for a, b in zip(ours, bare, strict=True)]
    vs_keras = [a / b for a, b in zip(ours, keras, strict=True)]
    print(f"  {rounds} rounds of {steps} steps: vs bare " + " ".join(f"{x:.2f}" for x in ratios))
    print("  vs Keras " + " ".join(f"{x:.2f}" for x in vs_keras))
    cpu_vs_keras = [b / a for a, b in zip(ours_cpu, keras_cpu, strict=True)]
    print("  CPU per step, Keras / ours " + " ".join(f"{x:.2f}" for x in cpu_vs_keras))
    return {
        "images_per_s": statistics.median(ours),
        "bare_loop_images_per_s": statistics.median(bare),
        "throughput_ratio": statistics.median(ratios),
        "keras_images_per_s": statistics.median(keras),
        "ratio_vs_keras": statistics.median(vs_keras),
        "ratio_vs_keras_range": [min(vs_keras), max(vs_keras)],
        "cpu_ms_per_step": statistics.median(ours_cpu),
        "keras_cpu_ms_per_step": statistics.median(keras_cpu),
        "cpu_ratio_vs_keras": statistics.median(cpu_vs_keras),
        "load_average_1min": statistics.median(loads),
    }


def data_parallel(rounds: int) -> dict[str, Any]:
    """LeNet-5 on 1 device, 2 host devices and 2 single-core processes: same parameters, and
    each one's throughput (median over ``rounds`` alternating runs; batch 64, 120 steps)."""
    configs = {"devices_1": (1, 1), "host_devices_2": (2, 1), "processes_2": (1, 2)}
    rates: dict[str, list[float]] = {k: [] for k in configs}
    runs: dict[str, dp_check.Run] = {}
    for _ in range(rounds):
        for key, (devices, processes) in configs.items():
            run = dp_check.run(devices, processes, batch_size=64, pin_cores=True)
            runs.setdefault(key, run)
            rates[key].append(run.images_per_s)
    host_equal, host_why = dp_check.same_parameters(runs["devices_1"], runs["host_devices_2"])
    procs_equal, procs_why = dp_check.same_parameters(runs["devices_1"], runs["processes_2"])
    rate = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"  data parallel: images/s {rate}; equal {host_equal} {procs_equal} {host_why}{procs_why}"
    )
    return {
        "host_devices_2_equal": host_equal,
        "processes_2_equal": procs_equal,
        "scaling": {
            **{f"{k}_images_per_s": v for k, v in rate.items()},
            "host_devices_2_vs_1": rate["host_devices_2"] / rate["devices_1"],
            "processes_2_vs_1": rate["processes_2"] / rate["devices_1"],
            "model": "lenet5",
            "batch_size": 64,
            "rounds": rounds,
            "note": "2 cores: 1 device uses both through XLA's threads; processes get one each",
        },
        "differences": {"host_devices_2": host_why, "processes_2": procs_why},
        "comparison": "one step within 1e-4 of the update, 121 steps within 1% of the move",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet300", "lenet5"])
    parser.add_argument("--rounds", type=int, default=15, help="alternating throughput rounds")
    parser.add_argument("--steps", type=int, default=150, help="batches per throughput round")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--dp-rounds", type=int, default=3, help="data-parallel runs per setup")
    parser.add_argument("--no-data-parallel", action="store_true")
    parser.add_argument(
        "--throughput-only", action="store_true", help="measure throughput again, no training"
    )
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench-pretrain"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    previous = RESULTS / "pretrain_mnist.json"
    old = json.loads(previous.read_text()) if previous.exists() else {}
    if args.throughput_only and not all(name in old for name in args.models):
        raise SystemExit(
            f"--throughput-only updates {previous.relative_to(ROOT)}'s figures of "
            f"{args.models}, which it lacks; run the full bench first."
        )
    figures: dict[str, Any] = {}
    for name in args.models:
        config = pretrain.load_config(ROOT / "pretrain" / "configs" / f"{name}.py", args.overrides)
        splits = load_splits(config)
        if args.throughput_only:
            print(f"{name}: throughput, framework vs bare loop vs Keras")
            speed = throughput(name, config, splits, args.rounds, args.steps)
            figures[name] = {
                **old[name],
                **speed,
                "throughput_rounds": args.rounds,
                "throughput_steps_per_round": args.steps,
                "throughput_utc": _now(),
            }
            continue
        workdir = Path(args.workdir) / name
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"{name}: training ({config.epochs} epochs at most)")
        result = pretrain.fit(config, workdir, splits=splits)
        target = RESULTS / "models" / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(result.model_dir, target)
        print(f"{name}: throughput, framework vs bare loop vs Keras")
        speed = throughput(name, config, splits, args.rounds, args.steps)
        saved = pretrain.load_model(target)
        figures[name] = {
            "test_error_pct": 100 * result.test_error,
            "val_error_pct": 100 * result.val_error,
            "epochs": result.epochs,
            "wall_s": result.wall_s,
            "params": pretrain.count_params(saved.params),
            **speed,
            "throughput_rounds": args.rounds,
            "throughput_steps_per_round": args.steps,
            "training_images_per_s": result.images_per_s,
            "train_examples": len(splits.train),
            "val_examples": len(splits.val) if splits.val is not None else 0,
            "test_examples": len(splits.test),
            "config": config.to_dict(),
            "model_dir": str(target.relative_to(ROOT)),
            "utc": _now(),
        }
    rows = [[name, *(figures[name][key] for key in TABLE)] for name in figures]
    if old:  # --models a subset: keep the others' figures from their own run
        for name in ("lenet300", "lenet5"):
            if name not in figures and name in old:
                figures[name] = {**old[name], "from_earlier_run": old.get("machine", {}).get("utc")}
    figures = {name: figures[name] for name in ("lenet300", "lenet5") if name in figures}
    if not (args.no_data_parallel or args.throughput_only):
        print("data parallel: 1 device, 2 host devices, 2 processes")
        figures["data_parallel"] = data_parallel(args.dp_rounds)
    elif "data_parallel" in old:
        figures["data_parallel"] = old["data_parallel"]
    figures["targets"] = {
        "lenet300_test_error_pct": 1.64,
        "lenet5_test_error_pct": 0.80,
        "throughput_ratio": 0.95,
        "lenet300_ratio_vs_keras": 2.0,
        "lenet5_ratio_vs_keras": 1.0,
    }
    path = write_results("pretrain_mnist", figures)
    print_table(["model", *TABLE.values()], rows)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    run_main(main)
