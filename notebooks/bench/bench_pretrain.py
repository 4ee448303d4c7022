"""bench-pretrain: both LeNets on full MNIST, and the framework's throughput vs a bare optax loop.

Trains each model with its shipped config (55,000 training images, 5,000 held out for the plateau
schedule and early stopping, the 10,000 test images for the reported error), copies the best
parameters to notebooks/results/models/<name>/, then measures training throughput of the
framework (``pretrain.Trainer.train_epoch``) and of a bare jitted optax loop on the same model,
optimizer and batch size, alternating the two in short blocks so that machine noise hits both.

  python notebooks/bench/bench_pretrain.py [--models lenet300 lenet5] [--rounds 15] [--set epochs=1]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from _results import RESULTS, ROOT, print_table, write_results

import pretrain
from pretrain.train import Trainer, load_splits, make_optimizer


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
    config: pretrain.TrainConfig, splits: Any, rounds: int, steps: int
) -> dict[str, float]:
    """Framework vs bare loop, alternating over the same ``steps``-batch slice ``rounds`` times.

    Short alternating blocks put both sides under the same machine load; the figure is the
    median over rounds of each side's images/s and of the per-round ratio.
    """
    trainer = Trainer(config, splits.train.images)
    state = trainer.init_state(jax.random.key(0))
    bare_params = jax.device_get(state.params)
    part = splits.train.take(slice(0, steps * config.batch_size))
    ours, bare = [], []
    for r in range(rounds + 1):  # round 0 warms both up (compilation, caches)
        state, stats = trainer.train_epoch(
            state, part, key=jax.random.key(1), epoch=r, progress=False
        )
        bare_params, rate = bare_loop_epoch(
            trainer.module, config, bare_params, part.images, part.labels, r
        )
        if r:
            ours.append(stats.images_per_s)
            bare.append(rate)
    ratios = [a / b for a, b in zip(ours, bare, strict=True)]
    print(f"  {rounds} rounds of {steps} steps: ratios " + " ".join(f"{x:.2f}" for x in ratios))
    return {
        "images_per_s": statistics.median(ours),
        "bare_loop_images_per_s": statistics.median(bare),
        "throughput_ratio": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet300", "lenet5"])
    parser.add_argument("--rounds", type=int, default=15, help="alternating throughput rounds")
    parser.add_argument("--steps", type=int, default=150, help="batches per throughput round")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench-pretrain"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    figures: dict[str, Any] = {}
    rows = []
    for name in args.models:
        config = pretrain.load_config(ROOT / "pretrain" / "configs" / f"{name}.py", args.overrides)
        splits = load_splits(config)
        workdir = Path(args.workdir) / name
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"{name}: training ({config.epochs} epochs at most)")
        result = pretrain.fit(config, workdir, splits=splits)
        target = RESULTS / "models" / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(result.model_dir, target)
        print(f"{name}: throughput, framework vs bare loop")
        speed = throughput(config, splits, args.rounds, args.steps)
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
            "utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        rows.append([name, 100 * result.test_error, result.epochs, result.wall_s,
                     figures[name]["params"], *speed.values()])  # fmt: skip
    previous = RESULTS / "pretrain_mnist.json"
    if previous.exists():  # --models a subset: keep the others' figures from their own run
        old = json.loads(previous.read_text())
        for name in ("lenet300", "lenet5"):
            if name not in figures and name in old:
                figures[name] = {**old[name], "from_earlier_run": old.get("machine", {}).get("utc")}
    figures["targets"] = {
        "lenet300_test_error_pct": 1.64,
        "lenet5_test_error_pct": 0.80,
        "throughput_ratio": 0.95,
    }
    path = write_results("pretrain_mnist", figures)
    print_table(
        ["model", "test err %", "epochs", "wall s", "params", "img/s", "bare img/s", "ratio"], rows
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
