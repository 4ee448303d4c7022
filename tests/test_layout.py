"""The house rules that a glance at the tree can check."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("pretrain", "export", "personalize", "devices")


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_has_a_thin_main(package: str) -> None:
    main = ROOT / package / "__main__.py"
    if not main.exists():
        pytest.skip(f"{package} has no CLI yet")
    assert len(main.read_text().splitlines()) < 400, (
        "__main__ parses arguments; work goes in the library"
    )


def test_bench_scripts_shadow_no_module() -> None:
    """A bench script's folder is first on sys.path: a script named like a module replaces it.

    (notebooks/bench/compression.py once broke `import jax`, which probes for `compression`.)
    """
    for script in (ROOT / "notebooks" / "bench").glob("*.py"):
        name = script.stem
        if name == "_results":
            continue
        assert name.startswith("bench_"), f"{script.name}: name bench scripts bench_<target>.py"
        assert name not in sys.stdlib_module_names and importlib.util.find_spec(name) is None, (
            f"{script.name} shadows the module {name!r}"
        )


def test_dataset_files_are_not_in_the_repo() -> None:
    suffixes = {".tif", ".tiff", ".pgm", ".bmp"}
    tracked = [
        p for p in ROOT.rglob("*") if p.suffix.lower() in suffixes and ".venv" not in p.parts
    ]
    assert not tracked, f"dataset files belong under $POCKETFIT_DATA, not the repo: {tracked[:5]}"


def _long_functions(package: str, limit: int) -> list[str]:
    import ast

    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    return out


@pytest.mark.parametrize("package", ["personalize", "devices"])
def test_device_side_functions_do_one_step(package: str) -> None:
    """A function over 80 lines (docstring included) is several steps: split it."""
    assert _long_functions(package, 80) == []
