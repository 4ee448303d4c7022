"""Every notebook runs top to bottom on its smoke config (POCKETFIT_SMOKE=1)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, data_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("POCKETFIT_SMOKE", "1")
    monkeypatch.setenv("POCKETFIT_DATA", os.fspath(data_root))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
