"""Data parallel checked: the same training on 1 device, on host devices and in processes.

:func:`run` starts ``processes`` copies of this module's worker, each with ``devices`` host
devices (``--xla_force_host_platform_device_count``) and, for several processes, a
``jax.distributed`` coordinator on a free local port (gloo collectives). The worker trains
LeNet-5 on a learnable toy task (noisy class templates) through :class:`pretrain.Trainer`:
one step, then ``steps`` more, and saves the parameters at both points and its throughput.
:func:`same_parameters` compares two runs.

  python -m pretrain.train.dp_check --out p.npz [--steps 120] [--batch-size 32]
      [--num-processes N --process-id I --port P] [--pin-cores]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

# One step from the same state: the float32 sums of a batch's gradient in another order differ by
# a few units in the last place of the sum, far below 1e-4 of the update; a wrong reduction (a
# sum instead of a mean, one device's half) is off by 50-100%.
STEP_RTOL = 1e-4
# After many steps the rounding differences of every step compound through training; 1% of how
# far the parameters moved is still far from a wrong reduction.
RUN_RTOL = 1e-2
FLOAT32_ULP = float(np.finfo(np.float32).eps)


class Run(NamedTuple):
    """What one configuration produced.

    Attributes:
      devices: devices per process; processes: number of processes.
      init, step1, final: parameters (flat ``layer/name`` keys) at start, after one step, at the end.
      images_per_s: training throughput over the final run's steps (the first excluded).
    """

    devices: int
    processes: int
    init: dict[str, np.ndarray]
    step1: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    images_per_s: float


def _toy_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    templates = np.random.default_rng(1234).random((10, 28, 28, 1), dtype=np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int32)
    noise = 0.3 * rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    return templates[labels] + noise, labels


def _flat(params: object) -> dict[str, np.ndarray]:
    import jax

    host = jax.tree.map(lambda a: np.asarray(jax.device_get(a)), params)
    return {
        "/".join(str(k.key) for k in path): v
        for path, v in jax.tree_util.tree_leaves_with_path(host)
    }


def _worker(args: argparse.Namespace) -> None:
    if args.pin_cores and args.num_processes > 1:
        # Each process gets its share of the cores, as on separate machines.
        cores = sorted(os.sched_getaffinity(0))
        share = max(1, len(cores) // args.num_processes)
        os.sched_setaffinity(0, cores[args.process_id * share : (args.process_id + 1) * share])
    import jax

    import pretrain
    from pretrain.data import ArrayDataset
    from pretrain.train import Trainer

    if args.num_processes > 1:
        pretrain.initialize_distributed(
            f"127.0.0.1:{args.port}", args.num_processes, args.process_id
        )
    images, labels = _toy_data(args.batch_size * (args.steps + 1))
    first = ArrayDataset(images[: args.batch_size], labels[: args.batch_size], "dp-toy-1")
    rest = ArrayDataset(images[args.batch_size :], labels[args.batch_size :], "dp-toy")
    config = pretrain.make_config(
        {"model": "lenet5", "batch_size": args.batch_size, "learning_rate": 0.05}
    )
    trainer = Trainer(config, images)
    state = trainer.init_state(jax.random.key(0))
    init = _flat(state.params)
    state, _ = trainer.train_epoch(state, first, key=jax.random.key(1), epoch=0, progress=False)
    step1 = _flat(state.params)
    state, stats = trainer.train_epoch(state, rest, key=jax.random.key(1), epoch=1, progress=False)
    final = _flat(state.params)
    if jax.process_index() == 0:
        parts = {"init": init, "step1": step1, "final": final}
        arrays: dict[str, Any] = {
            f"{part}:{k}": v for part, p in parts.items() for k, v in p.items()
        }
        arrays["devices"] = np.asarray(jax.local_device_count())
        arrays["processes"] = np.asarray(jax.process_count())
        arrays["images_per_s"] = np.asarray(stats.images_per_s)
        np.savez(args.out, **arrays)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    devices: int = 1,
    processes: int = 1,
    *,
    steps: int = 120,
    batch_size: int = 32,
    pin_cores: bool = False,
    timeout_s: float = 600,
) -> Run:
    """Runs the worker on ``devices`` host devices in each of ``processes`` processes.

    Args:
      devices: host devices per process (``--xla_force_host_platform_device_count``; set in the
        worker's ``XLA_FLAGS`` with the rest of the caller's flags).
      processes: local processes joined by ``jax.distributed`` (gloo).
      steps: steps after the first; well over 32 exercise XLA:CPU's launch queue (see
        :mod:`pretrain.train.parallel`).
      batch_size: global batch; must split over ``devices * processes``.
      pin_cores: give each process its own share of this machine's cores.
      timeout_s: per process.

    Raises:
      RuntimeError: a worker failed; the message holds the end of its stderr.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    flags = " ".join(f for f in flags.split() if "xla_force_host_platform_device_count" not in f)
    env = {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}".strip(),
    }
    env.pop("JAX_PLATFORMS", None)
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.npz"
        options = {"--out": out, "--steps": steps, "--batch-size": batch_size, "--port": port}
        options["--num-processes"] = processes
        command = [sys.executable, "-m", "pretrain.train.dp_check"]
        command += [str(x) for item in options.items() for x in item]
        command += ["--pin-cores"] if pin_cores else []
        procs = [
            subprocess.Popen(
                [*command, "--process-id", str(i)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(processes)
        ]
        errors = []
        for i, p in enumerate(procs):
            try:
                _, err = p.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                err += f"\n(killed after {timeout_s:.0f} s)"
            if p.returncode:
                errors.append(f"process {i} exited {p.returncode}: {err[-2000:]}")
        if errors:
            raise RuntimeError(
                f"data-parallel worker on {devices} device(s) x {processes} process(es) failed: "
                + " | ".join(errors)
            )
        with np.load(out) as npz:
            arrays = {k: npz[k] for k in npz.files}
    parts: dict[str, dict[str, np.ndarray]] = {"init": {}, "step1": {}, "final": {}}
    for key, value in arrays.items():
        if ":" in key:
            part, name = key.split(":", 1)
            parts[part][name] = value
    return Run(
        devices=int(arrays["devices"]),
        processes=int(arrays["processes"]),
        init=parts["init"],
        step1=parts["step1"],
        final=parts["final"],
        images_per_s=float(arrays["images_per_s"]),
    )


def _within(
    ref: Mapping[str, np.ndarray],
    got: Mapping[str, np.ndarray],
    start: Mapping[str, np.ndarray],
    rtol: float,
) -> list[str]:
    """Names whose difference exceeds ``rtol`` of the layer's largest move from ``start`` plus
    two float32 units in the last place of the weights."""
    bad = []
    for name in ref:
        moved = float(np.abs(ref[name] - start[name]).max())
        bound = rtol * moved + 2 * FLOAT32_ULP * np.abs(ref[name])
        excess = np.abs(got[name] - ref[name]) - bound
        if got[name].shape != ref[name].shape or float(excess.max()) > 0:
            bad.append(f"{name} (max diff {float(np.abs(got[name] - ref[name]).max()):.3g})")
    return bad


def same_parameters(ref: Run, got: Run) -> tuple[bool, str]:
    """Whether ``got`` trained the same parameters as ``ref`` (from the same initialisation).

    After one step within :data:`STEP_RTOL` of the update; at the end within :data:`RUN_RTOL`
    of the total move (plus two float32 ulps of the weights each time).

    Returns:
      ``(equal, why)``: ``why`` names the layers that differ, empty when equal.
    """
    if ref.init.keys() != got.init.keys():
        return False, f"different parameters: {sorted(ref.init)} vs {sorted(got.init)}"
    same_start = all(np.array_equal(ref.init[k], got.init[k]) for k in ref.init)
    if not same_start:
        return False, "different initial parameters"
    step = _within(ref.step1, got.step1, ref.init, STEP_RTOL)
    final = _within(ref.final, got.final, ref.init, RUN_RTOL)
    why = "; ".join(
        [f"after one step: {', '.join(step)}"] * bool(step)
        + [f"at the end: {', '.join(final)}"] * bool(final)
    )
    return not why, why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pin-cores", action="store_true")
    _worker(parser.parse_args())


if __name__ == "__main__":
    main()
