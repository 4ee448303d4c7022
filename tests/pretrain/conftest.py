"""Fixtures of the pretraining tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

DpRun = Callable[..., dict[str, np.ndarray]]


def _run_dp_worker(
    worker: Path, out: Path, *, devices: int = 1, processes: int = 1
) -> dict[str, np.ndarray]:
    """Runs a data-parallel worker script on ``devices`` host devices in each of ``processes``
    processes (jax.distributed over a free local port) and returns the arrays it saved."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    flags = [f for f in flags if "xla_force_host_platform_device_count" not in f]
    flags.append(f"--xla_force_host_platform_device_count={devices}")
    env = {**os.environ, "XLA_FLAGS": " ".join(flags)}
    env.pop("JAX_PLATFORMS", None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, str(worker), "--out", str(out), "--port", str(port)]
    procs = [
        subprocess.Popen(
            [*command, "--num-processes", str(processes), "--process-id", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    with np.load(out) as npz:
        result = {k: npz[k] for k in npz.files}
    assert int(result.pop("devices")) == devices * processes
    assert int(result.pop("processes")) == processes
    return result


@pytest.fixture(scope="session")
def dp_run() -> DpRun:
    """``dp_run(worker, out, devices=1, processes=1)``: see :func:`_run_dp_worker`."""
    return _run_dp_worker


@pytest.fixture(scope="session")
def orl_root(data_root: Path) -> Path:
    """The datasets folder when it holds ORL (``orl_faces/s1..s40``), or a skip saying where."""
    if not (data_root / "orl_faces").is_dir():
        pytest.skip(f"ORL not found: put s1..s40 in {data_root / 'orl_faces'}.")
    return data_root
