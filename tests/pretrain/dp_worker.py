"""Runs one epoch of a tiny data-parallel training in this process (used by test_parallel)."""

from __future__ import annotations

import argparse

import jax
import numpy as np

import pretrain
from pretrain.data import ArrayDataset
from pretrain.train import Trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.num_processes > 1:
        pretrain.initialize_distributed(
            f"127.0.0.1:{args.port}", args.num_processes, args.process_id
        )
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 256).astype(np.int32)
    images = (rng.random((10, 28, 28, 1), dtype=np.float32)[labels]
              + 0.3 * rng.standard_normal((256, 28, 28, 1)).astype(np.float32))  # fmt: skip
    data = ArrayDataset(images, labels, "dp-toy")
    config = pretrain.make_config(
        {"model": "lenet5", "batch_size": 32, "eval_batch_size": 32, "learning_rate": 0.05}
    )
    trainer = Trainer(config, images)
    state = trainer.init_state(jax.random.key(0))
    state, _ = trainer.train_epoch(state, data, key=jax.random.key(1), epoch=0, progress=False)
    params = jax.tree.map(lambda a: np.asarray(jax.device_get(a)), state.params)
    flat = {
        "/".join(str(k.key) for k in path): v
        for path, v in jax.tree_util.tree_leaves_with_path(params)
    }
    if jax.process_index() == 0:
        np.savez(args.out, devices=len(jax.devices()), processes=jax.process_count(), **flat)


if __name__ == "__main__":
    main()
