"""Data parallelism of the embedding tasks: the same parameters on 1, 4 and 2x1 devices."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("dp_embed_worker.py")


def _run(out: Path, *, devices: int = 1, processes: int = 1) -> dict[str, np.ndarray]:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    env.pop("JAX_PLATFORMS", None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, str(WORKER), "--out", str(out), "--port", str(port)]
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


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, np.ndarray]:
    return _run(tmp_path_factory.mktemp("ref") / "p.npz")


@pytest.mark.slow
@pytest.mark.parametrize(("devices", "processes"), [(4, 1), (1, 2)])
def test_same_parameters_as_one_device(
    tmp_path: Path, reference, devices: int, processes: int
) -> None:
    got = _run(tmp_path / "p.npz", devices=devices, processes=processes)
    assert got.keys() == reference.keys()
    assert any(k.startswith("contrastive/projection") for k in got)
    assert any(k.startswith("margin_softmax/classifier") for k in got)
    for k in reference:
        np.testing.assert_allclose(got[k], reference[k], rtol=1e-4, atol=1e-5, err_msg=k)
