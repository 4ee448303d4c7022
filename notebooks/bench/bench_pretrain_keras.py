"""bench-pretrain's measurement peer: the same LeNet trained by Keras ``model.fit``, in its own process.

The peer is what a Keras user writes for the project's configs: the same layers and
initialisation, batch 64, SGD with momentum whose gradient includes the weight decay (an L2
penalty of ``weight_decay / 2`` on the kernels gives exactly ``g + wd * w`` inside the momentum,
as ``optax.add_decayed_weights`` does; Keras's own ``weight_decay=`` is decoupled), softmax
cross-entropy and an accuracy metric, ``model.compile`` with its default ``jit_compile``. It runs
in a child process without the project's ``XLA_FLAGS`` (Keras as shipped) and trains one round
over the same images each time the bench asks, so the two sides alternate under the same load.
Throughput counts from the end of a round's first step to the end of its last, as
``pretrain.Trainer`` does; so does the process's CPU time per step (all its threads), which the
machine's other load does not inflate the way it does wall time.

  python notebooks/bench/bench_pretrain_keras.py --model lenet5 --config '{...}' --data part.npz
  (then one line on stdin per round; one line back: images/s and CPU ms per step)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np


class Round(NamedTuple):
    """One ``model.fit`` round: images per second and the process's CPU ms per step."""

    images_per_s: float
    cpu_ms_per_step: float


def build(name: str, config: dict[str, Any]) -> Any:
    """The compiled Keras model for ``lenet300`` or ``lenet5`` with ``config``'s optimizer."""
    import keras

    std = config["model_options"]["init_std"]
    l2 = keras.regularizers.L2(config["weight_decay"] / 2)

    def init(i: int) -> Any:
        return keras.initializers.RandomNormal(stddev=std[i])

    layers: list[Any] = [keras.Input((28, 28, 1))]
    if name == "lenet300":
        layers += [keras.layers.Flatten()]
        for i, width in enumerate((300, 100)):
            dense = keras.layers.Dense(
                width, "relu", kernel_initializer=init(i), kernel_regularizer=l2
            )
            layers += [dense]
        layers += [keras.layers.Dense(10, kernel_initializer=init(2), kernel_regularizer=l2)]
    elif name == "lenet5":
        for i, features in enumerate((20, 50)):
            layers += [
                keras.layers.Conv2D(features, 5, kernel_initializer=init(i), kernel_regularizer=l2),
                keras.layers.MaxPooling2D(2),
            ]
        layers += [
            keras.layers.Flatten(),
            keras.layers.Dense(500, "relu", kernel_initializer=init(2), kernel_regularizer=l2),
            keras.layers.Dense(10, kernel_initializer=init(3), kernel_regularizer=l2),
        ]
    else:
        raise ValueError(f"no Keras peer for {name!r}; lenet300 and lenet5 have one.")
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.SGD(config["learning_rate"], momentum=config["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    return model


def _serve(args: argparse.Namespace) -> None:
    import keras

    config = json.loads(args.config)
    with np.load(args.data) as npz:
        images, labels = npz["images"], npz["labels"]
    model = build(args.model, config)
    batch = config["batch_size"]
    stamps: list[tuple[float, float]] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 0 or batch == steps - 1:
                stamps.append((time.perf_counter(), time.process_time()))

    steps = len(labels) // batch
    for _ in sys.stdin:
        stamps.clear()
        model.fit(images, labels, batch_size=batch, epochs=1, verbose=0, callbacks=[Clock()])
        (wall0, cpu0), (wall1, cpu1) = stamps[0], stamps[-1]
        rate = (steps - 1) * batch / (wall1 - wall0)
        print(f"{rate:.3f} {1e3 * (cpu1 - cpu0) / (steps - 1):.4f}", flush=True)


class KerasPeer:
    """The peer process for one model; :meth:`round` trains it once over ``images``."""

    def __init__(
        self, name: str, config: dict[str, Any], images: np.ndarray, labels: np.ndarray, tmp: Path
    ) -> None:
        data = tmp / f"keras-{name}.npz"
        np.savez(data, images=images.reshape(-1, 28, 28, 1), labels=labels)
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        command = [sys.executable, __file__, "--model", name, "--config", json.dumps(config)]
        self._proc = subprocess.Popen(
            [*command, "--data", str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def round(self) -> Round:
        """Images per second and CPU ms per step of one ``model.fit`` round (the first step
        excluded)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("run\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Keras peer exited ({self._proc.wait()}); see its stderr.")
        rate, cpu = line.split()
        return Round(float(rate), float(cpu))

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", required=True, help="the project config as JSON")
    parser.add_argument("--data", required=True, help="npz with images and labels")
    _serve(parser.parse_args())
