"""Writes a benchmark's JSON result and prints its table; every bench-* script uses this."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

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


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (results name files portably)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def this_run() -> dict[str, Any]:
    """The running bench's machine, versions, git commit and command line."""
    return {"machine": host_info(ROOT), "command": " ".join(shlex.quote(a) for a in sys.argv)}


def write_results(
    name: str,
    figures: dict[str, Any],
    *,
    command: str | None = None,
    machine: dict[str, Any] | None = None,
) -> Path:
    """Writes ``notebooks/results/<name>.json``: the figures plus machine, versions and command
    (``command`` / ``machine``: a partial rerun that updates a file in place keeps those of the
    run that wrote it, and records its own in its section, :func:`this_run`)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    own = this_run()
    record = {
        **figures,
        "machine": machine or own["machine"],
        "command": command or own["command"],
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


def model_dirs(
    parser: argparse.ArgumentParser, items: Sequence[str], models: Sequence[str]
) -> dict[str, Path]:
    """The model folder of each of ``models``: the committed one under notebooks/results/models,
    or the ``NAME=DIR`` of a ``--model`` item (a bad item ends through ``parser.error``)."""
    dirs = {m: RESULTS / "models" / m for m in models}
    for item in items:
        name, _, folder = item.partition("=")
        if name not in models or not folder:
            parser.error(f"--model expects NAME=DIR with NAME in {models}, got {item!r}")
        dirs[name] = Path(folder)
    return dirs


def _project_errors() -> tuple[type[Exception], ...]:
    """The errors the packages raise for bad input or a missing file (each says what and how to
    fix it in one line), as opposed to bugs."""
    from devices.contract import ArtifactError
    from devices.graph import GraphError
    from devices.preprocess import PreprocessError
    from devices.profiles import ProfileError
    from devices.tflite_file import ModelFileError
    from devices.trust import TrustError
    from personalize.errors import PersonalizeError
    from pretrain.config import ConfigError
    from pretrain.data.errors import DataError
    from pretrain.train.checkpoint import CheckpointError

    return (
        ArtifactError,
        CheckpointError,
        ConfigError,
        DataError,
        GraphError,
        ModelFileError,
        PersonalizeError,
        PreprocessError,
        ProfileError,
        TrustError,
    )


BENCH_KEYS = ROOT / "runs" / "bench-keys"


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """Runs a bench's ``main`` and exits with its status. The project's own errors (datasets not
    found under $POCKETFIT_DATA, a bad config, a missing checkpoint) end with their one-line
    message and status 2 instead of a traceback; Ctrl-C ends with status 130.

    The store keys of the devices a bench makes (``personalize.keystore.key_dir``) go to
    ``runs/bench-keys`` unless ``$POCKETFIT_KEYS`` says otherwise: a bench's throwaway stores
    must not fill the user's own key folder (``~/.config/pocketfit/keys``)."""
    os.environ.setdefault("POCKETFIT_KEYS", str(BENCH_KEYS))
    try:
        status = main()
    except _project_errors() as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{Path(sys.argv[0]).name}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
