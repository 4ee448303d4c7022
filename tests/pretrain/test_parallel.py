"""Data parallelism: several devices, several processes, the same parameters as one device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("dp_worker.py")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dp_run) -> dict[str, np.ndarray]:
    return dp_run(WORKER, tmp_path_factory.mktemp("ref") / "p.npz")


@pytest.mark.slow
@pytest.mark.parametrize(("devices", "processes"), [(8, 1), (1, 2), (2, 2)])
def test_same_parameters_as_one_device(
    tmp_path: Path, reference, dp_run, devices: int, processes: int
) -> None:
    got = dp_run(WORKER, tmp_path / "p.npz", devices=devices, processes=processes)
    assert got.keys() == reference.keys()
    for k in reference:
        np.testing.assert_allclose(got[k], reference[k], rtol=1e-5, atol=1e-5, err_msg=k)
