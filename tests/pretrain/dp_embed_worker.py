"""One epoch of each embedding task, data parallel, in this process (used by test_parallel_embed).

The contrastive loss couples every example of the global batch (NT-Xent over all views) and both
tasks augment inside the step: the parameters must not depend on how the batch is split.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import pretrain
from pretrain.data import ArrayDataset
from pretrain.train import Trainer

TINY = {"stem_width": 8, "widths": (16, 32), "strides": (2, 2), "embedding_dim": 16}
AUG = {"rotate": 10, "translate": 0.05, "noise": 0.1, "erase": 0.3}


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
    labels = np.repeat(np.arange(8, dtype=np.int32), 8)
    faces = np.kron(rng.standard_normal((8, 8, 8)), np.ones((4, 4)))
    images = (faces[labels] + 0.3 * rng.standard_normal((64, 32, 32)))[..., None]
    data = ArrayDataset(images.astype(np.float32), labels, "dp-people")
    flat = {}
    previous = None
    for task, options in (
        ("contrastive", {"augment": AUG, "projection": (32, 16)}),
        ("margin_softmax", {"scale": 16.0, "margin": 0.2, "augment": AUG}),
    ):
        config = pretrain.make_config(
            {
                "model": "embednet",
                "model_options": TINY,
                "task": task,
                "task_options": options,
                "batch_size": 16,
                "eval_batch_size": 16,
                "learning_rate": 0.02,
            }
        )
        trainer = Trainer(config, data.images, num_classes=8)
        state = trainer.init_state(jax.random.key(0))
        if previous is not None:
            params = trainer.task.with_model_params(state.params, previous)
            state = trainer.replicate(state._replace(params=params))
        state, _ = trainer.train_epoch(state, data, key=jax.random.key(1), epoch=0, progress=False)
        params = jax.tree.map(lambda a: np.asarray(jax.device_get(a)), state.params)
        previous = trainer.task.model_params(params)
        for path, v in jax.tree_util.tree_leaves_with_path(params):
            flat[task + "/" + "/".join(str(k.key) for k in path)] = v
        flat[task + "/eer"] = np.asarray(trainer.evaluate(state.params, data).error)
    if jax.process_index() == 0:
        np.savez(args.out, devices=len(jax.devices()), processes=jax.process_count(), **flat)


if __name__ == "__main__":
    main()
