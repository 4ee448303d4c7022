"""Writes a benchmark's JSON result and prints its table; every bench-* script uses this."""

from __future__ import annotations

import json
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devices import host_info
from devices.files import atomic_write

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "notebooks" / "results"


def _clean(value: Any) -> Any:
    """NaN/inf are not JSON; they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_results(name: str, figures: dict[str, Any], *, command: str | None = None) -> Path:
    """Writes ``notebooks/results/<name>.json``: the figures plus machine, versions and command."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        **figures,
        "machine": host_info(ROOT),
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
    }
    path = RESULTS / f"{name}.json"
    return atomic_write(path, (json.dumps(_clean(record), indent=2) + "\n").encode())


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table on stdout."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
