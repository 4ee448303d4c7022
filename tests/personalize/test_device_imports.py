"""The device side runs on numpy + LiteRT: importing it must not import server frameworks."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("jax", "jaxlib", "flax", "optax", "tensorflow", "orbax", "fastapi", "uvicorn")


def test_personalize_imports_no_server_frameworks() -> None:
    code = (
        "import sys, personalize, devices\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
