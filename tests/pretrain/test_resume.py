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


def test_metrics_log_drops_a_torn_last_line_on_resume(tmp_path: Path) -> None:
    from pretrain.train.loop import _MetricsLog

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "step": 10}\n{"epoch": 2, "step": 20}\n{"epoch": 3, "st')
    log = _MetricsLog(path, keep_through_epoch=2, enabled=True)
    assert [r["epoch"] for r in log.lines] == [1, 2]
    assert path.read_text() == '{"epoch": 1, "step": 10}\n{"epoch": 2, "step": 20}\n'
    log.add({"epoch": 3, "step": 30})
    assert path.read_text().splitlines()[-1] == '{"epoch": 3, "step": 30}'
