"""The import graph of the four packages, read from the source (imports inside functions too).

No cycles: ``from pkg import x`` counts as importing ``pkg`` (its ``__init__`` runs first and,
when ``x`` is not a submodule, is where ``x`` comes from) and, when ``x`` is a submodule, ``x``.
The device side (``personalize`` and ``devices`` outside ``devices.server``) imports no server
framework anywhere in its source, not even inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pretrain", "export", "personalize", "devices")
SERVER_FRAMEWORKS = (
    *("jax", "jaxlib", "flax", "optax", "orbax", "tensorflow"),
    *("fastapi", "starlette", "uvicorn"),  # the offload service (export.serve)
)
# The one device-side module that may reach devices.server: the CLI's `calibrate` command, which
# runs on a server (it converts probe models with TensorFlow).
SERVER_DOOR = "devices.__main__"


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imported(name: str, path: Path) -> Iterator[str]:
    """Every module name ``path`` imports anywhere (absolute, relative resolved)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    return {
        name: {m for m in _imported(name, path) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert len(MODULES) > 50, "the packages were not found"
    assert _cycles(_graph()) == []


def _device_side() -> list[str]:
    return sorted(
        name
        for name in MODULES
        if name.split(".")[0] == "personalize"
        or (name.split(".")[0] == "devices" and not name.startswith("devices.server"))
    )


@pytest.mark.parametrize("module", _device_side())
def test_the_device_side_imports_no_server_framework(module: str) -> None:
    imported = set(_imported(module, MODULES[module]))
    bad = sorted(m for m in imported if m.split(".")[0] in SERVER_FRAMEWORKS)
    if module != SERVER_DOOR:
        bad += sorted(m for m in imported if m.startswith(("devices.server", "pretrain", "export")))
    assert not bad, f"{MODULES[module].relative_to(ROOT)} imports {bad}"


def test_the_device_side_finder_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    import tensorflow as tf\n    from jax import numpy\n")
    assert {"tensorflow", "jax", "jax.numpy"} <= set(_imported("m", source))
