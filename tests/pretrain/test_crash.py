"""Crash injection of the final model's writer (a slice of make bench-reliability; the Orbax
checkpoint's is in the bench, the killed-and-resumed run in test_resume.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devices.crash import crash
from pretrain.train.artifacts import load_model, save_model


def test_a_killed_model_save_leaves_old_or_new() -> None:
    # main's save renamed params.npz, then model.json: kills between the two lost the model
    report = crash("pretrain.crash:targets", "final_model", injections=16, seed=0, tail=12)
    assert report.lost_or_corrupt == 0, report.examples
    assert report.old > 0 and report.new > 0


def test_save_model_keeps_the_folders_other_files(tmp_path: Path) -> None:
    params = {"dense": {"kernel": np.ones((2, 3), np.float32), "bias": np.zeros(3, np.float32)}}
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    save_model(out, model="lenet300", model_options={}, params=params)
    save_model(out, model="lenet300", model_options={}, params=params)
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "notes.txt", "params.npz"]
    assert (out / "notes.txt").read_text() == "mine"
    np.testing.assert_array_equal(load_model(out).params["dense"]["kernel"], 1.0)
