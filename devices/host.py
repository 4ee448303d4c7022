"""What this machine is: the facts every benchmark result records beside its figures."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "numpy",
    "tensorflow-cpu",
    "ai-edge-litert",
    "scipy",
    "scikit-image",
    "cryptography",
    "pocketfit",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


RESULTS = "notebooks/results/"
"""Benchmark outputs: a change here does not make the code that produced a figure dirty (a bench
writing its own new JSON would otherwise mark its own commit ``+dirty``)."""


def _dirty(porcelain: str) -> bool:
    """Whether ``git status --porcelain`` output shows a change outside :data:`RESULTS`."""
    paths = (line[3:].split(" -> ")[-1].strip('"') for line in porcelain.splitlines() if line)
    return any(not path.startswith(RESULTS) for path in paths)


def _git_commit(cwd: Path) -> str | None:
    """HEAD's commit, with ``+dirty`` when code (anything outside :data:`RESULTS`) differs."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True
    )
    return out.stdout.strip() + ("+dirty" if _dirty(dirty.stdout) else "")


def host_info(repo: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Machine, OS, Python, package versions, git commit and time, as a JSON-ready dict."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": _git_commit(Path(repo) if repo else Path.cwd()),
        "utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
