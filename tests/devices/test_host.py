"""The commit a benchmark records: ``+dirty`` for changed code, not for its own results."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from devices.host import host_info

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


def test_results_do_not_make_the_commit_dirty_but_code_does(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "notebooks" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "notebooks" / "results" / "old.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    head = _git(tmp_path, "rev-parse", "HEAD").strip()
    assert host_info(tmp_path)["git_commit"] == head

    (tmp_path / "notebooks" / "results" / "new.json").write_text("{}\n")  # a bench's new output
    (tmp_path / "notebooks" / "results" / "old.json").write_text('{"a": 1}\n')  # and a rewrite
    assert host_info(tmp_path)["git_commit"] == head

    (tmp_path / "new_config.py").write_text("y = 2\n")  # code nobody committed
    assert host_info(tmp_path)["git_commit"] == head + "+dirty"
    (tmp_path / "new_config.py").unlink()
    (tmp_path / "code.py").write_text("x = 2\n")  # changed code
    assert host_info(tmp_path)["git_commit"] == head + "+dirty"
