"""Data parallelism of the embedding tasks: the same parameters on 1 device and on 2 processes
of 2 host devices each.

2x2 splits the batch over several local devices and over processes at once, so one run checks
both what a 4x1 and a 1x2 run checked (one reference plus one 2-process run instead of four
worker processes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("dp_embed_worker.py")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dp_run) -> dict[str, np.ndarray]:
    return dp_run(WORKER, tmp_path_factory.mktemp("ref") / "p.npz")


@pytest.mark.slow
def test_same_parameters_as_one_device(tmp_path: Path, reference, dp_run) -> None:
    got = dp_run(WORKER, tmp_path / "p.npz", devices=2, processes=2)
    assert got.keys() == reference.keys()
    assert any(k.startswith("contrastive/projection") for k in got)
    assert any(k.startswith("margin_softmax/classifier") for k in got)
    for k in reference:
        np.testing.assert_allclose(got[k], reference[k], rtol=1e-4, atol=1e-5, err_msg=k)
