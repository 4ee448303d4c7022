"""A pretraining run SIGKILLed inside an epoch and resumed ends bitwise equal to one run
straight through (the real command, on a slice of real MNIST)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pretrain.crash import resume_equal

TINY = ("train_size=6000", "val_size=500", "epochs=3", "batch_size=16")


@pytest.mark.data
@pytest.mark.slow
def test_killed_and_resumed_equals_uninterrupted(tmp_path: Path, mnist_dir: Path) -> None:
    check = resume_equal(tmp_path, overrides=TINY, kill_epochs=(2,))
    assert check.equal, check
    assert check.max_abs_diff == 0.0 and check.epochs == 3
    assert len(check.kills) == 1 and check.kills[0]["seconds_in"] > 0
