"""``python -m pretrain snapshot``: a run's best parameters so far, from its checkpoint, as the
model :func:`fit` writes at the end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pretrain.__main__ import main
from pretrain.config import make_config
from pretrain.train import CheckpointError, Splits, fit, load_model
from pretrain.train.snapshot import snapshot_model


@pytest.fixture(scope="module")
def tiny(tiny_lenet: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return tiny_lenet(epochs=3, keep_checkpoints=3)


@pytest.fixture(scope="module")
def run(make_toy, tmp_path_factory: pytest.TempPathFactory, tiny: dict[str, Any]) -> Path:
    splits = Splits(make_toy(640, seed=0), make_toy(200, seed=1), make_toy(200, seed=2))
    workdir = tmp_path_factory.mktemp("run")
    fit(make_config(tiny), workdir, progress=False, splits=splits)
    return workdir


def test_the_last_checkpoint_gives_the_finished_runs_model(run: Path) -> None:
    out = snapshot_model(run)
    assert out == run / "snapshot"
    finished, snap = load_model(run / "model"), load_model(out)
    assert snap.info["model_options"] == finished.info["model_options"]
    a, b = finished.params, snap.params
    for layer in a:
        for name in a[layer]:
            np.testing.assert_array_equal(a[layer][name], b[layer][name])
    info, done = snap.info["info"], finished.info["info"]
    assert info["val_error_pct"] == pytest.approx(done["val_error_pct"])
    assert info["epochs"] == 3 and info["snapshot"]["checkpoint"] == 3
    assert info["config"] == done["config"]


def test_an_earlier_checkpoint_gives_the_best_up_to_it(run: Path, tmp_path: Path) -> None:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    first = float(lines[0].split('"val_error": ')[1].split(",")[0])
    snap = load_model(snapshot_model(run, epoch=1, out=tmp_path / "m")).info["info"]
    assert snap["epochs"] == 1 and snap["val_error_pct"] == pytest.approx(100 * first)


def test_the_command_writes_it_and_refuses_what_is_not_there(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    assert main(["snapshot", "--workdir", str(run), "--out", str(out)]) == 0
    assert "best of epochs 1-3" in capsys.readouterr().out
    assert (out / "model.json").is_file()
    assert main(["snapshot", "--workdir", str(run), "--epoch", "7"]) == 2
    assert "no checkpoint of epoch 7" in capsys.readouterr().err
    assert main(["snapshot", "--workdir", str(tmp_path / "nothing")]) == 2
    assert "holds no checkpoints" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="is 'late' a stage"):
        snapshot_model(run, stage="late")


def test_a_snapshot_never_writes_over_the_run(run: Path, capsys: pytest.CaptureFixture[str]):
    before = sorted(p.name for p in run.iterdir())
    assert main(["snapshot", "--workdir", str(run), "--out", str(run)]) == 2
    assert "holds folders" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before
    assert (run / "checkpoints").is_dir() and load_model(run / "model").params


def test_a_staged_runs_stage_is_found_or_must_be_named(run: Path, tmp_path: Path) -> None:
    from pretrain.train.snapshot import run_folder

    (tmp_path / "first").symlink_to(run, target_is_directory=True)
    assert run_folder(tmp_path) == tmp_path / "first"
    (tmp_path / "second" / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"several stages .*first, second.*--stage"):
        run_folder(tmp_path)
    assert run_folder(tmp_path, "second") == tmp_path / "second"
