"""``python -m pretrain``: clean errors and a tiny real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pretrain.__main__ import main

ROOT = Path(__file__).parents[2]
CONFIG = str(ROOT / "pretrain" / "configs" / "lenet300.py")


def test_unknown_key_is_a_clean_error(tmp_path: Path, capsys) -> None:
    code = main(["--config", CONFIG, "--workdir", str(tmp_path), "--set", "bogus=1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "unknown config key 'bogus'" in err
    assert "Traceback" not in err and "learning_rate" in err


def test_missing_data_names_the_setting(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("POCKETFIT_DATA", str(tmp_path))
    code = main(["--config", CONFIG, "--workdir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "POCKETFIT_DATA" in err and "train-images-idx3-ubyte" in err


def test_distributed_needs_a_coordinator(tmp_path: Path, capsys) -> None:
    code = main(["--config", CONFIG, "--workdir", str(tmp_path), "--num-processes", "2"])
    assert code == 2 and "--coordinator" in capsys.readouterr().err


def test_bad_process_counts_and_a_file_workdir_are_clean_errors(tmp_path: Path, capsys) -> None:
    base = ["--config", CONFIG, "--workdir", str(tmp_path)]
    args = [*base, "--num-processes", "2", "--coordinator", "127.0.0.1:1", "--process-id", "5"]
    assert main(args) == 2
    assert (
        capsys.readouterr().err == "error: --process-id 5 is not one of the 2 processes (0 .. 1).\n"
    )
    for flag, value in (("--num-processes", "0"), ("--process-id", "-1")):
        with pytest.raises(SystemExit) as exit_:
            main([*base, flag, value])
        assert exit_.value.code == 2 and f"argument {flag}: must be >=" in capsys.readouterr().err
    file = tmp_path / "file"
    file.write_text("")
    assert main(["--config", CONFIG, "--workdir", str(file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --workdir {file} is a file") and err.count("\n") == 1


@pytest.mark.data
def test_tiny_real_run_end_to_end(tmp_path: Path, mnist_dir: Path) -> None:
    """The smoke test: the real command on a small slice of real MNIST, then a resume."""
    workdir = tmp_path / "run"
    base = [
        sys.executable,
        "-m",
        "pretrain",
        "--config",
        CONFIG,
        "--workdir",
        str(workdir),
        "--no-progress",
        "--set",
        "train_size=3000",
        "--set",
        "val_size=500",
    ]
    first = subprocess.run([*base, "--set", "epochs=1"], capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "done: 1 epochs" in first.stdout
    again = subprocess.run([*base, "--set", "epochs=2"], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 2 and "Pass --resume" in again.stderr
    second = subprocess.run(
        [*base, "--set", "epochs=2", "--resume"], capture_output=True, text=True, cwd=ROOT
    )
    assert second.returncode == 0, second.stderr[-2000:]
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    info = json.loads((workdir / "model" / "model.json").read_text())
    assert info["params"] == 266_610
    assert info["info"]["test_error_pct"] < 20.0  # 3000 examples, 2 epochs: far above chance
