"""The bench scripts end bad input with the project's one-line message, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
BENCH = ROOT / "notebooks" / "bench"
WORKERS = {"bench_pretrain_keras.py"}  # started by bench_pretrain, not by a user


def test_every_bench_runs_its_main_through_run_main() -> None:
    for script in sorted(BENCH.glob("bench_*.py")):
        if script.name not in WORKERS:
            tail = script.read_text().rstrip().splitlines()[-1].strip()
            assert tail == "run_main(main)", f"{script.name} ends with {tail!r}"


def test_missing_datasets_end_with_one_line_and_status_2(tmp_path: Path) -> None:
    env = {**os.environ, "POCKETFIT_DATA": str(tmp_path)}
    args = ["--tasks", "mnist", "--no-cnn", "--workdir", str(tmp_path / "curves")]
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_curves.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("bench_curves.py: error: No 'mnist' folder under POCKETFIT_DATA")
