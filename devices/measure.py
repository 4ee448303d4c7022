"""Measured peak memory and latency of a LiteRT signature, each in a fresh subprocess.

What is measured (Linux): the rise of the process's peak resident set (``VmHWM``) over a
baseline, while the interpreter loads the model and calls the signature. The baseline is taken
in a process that has already imported numpy and the LiteRT interpreter, read its inputs,
faulted in every page of its loaded libraries (``madvise(MADV_POPULATE_READ)``) and returned its
heap's free pages to the kernel (``malloc_trim``), after the peak has been reset to the current
resident set (``echo 5 > /proc/self/clear_refs``). So the figure
counts what the model costs (its memory-mapped file, the interpreter's tensors and arena,
variables, delegate buffers, the outputs handed back) and not the runtime's code, which an app
carries whatever model it runs. :mod:`devices.planner` predicts exactly this quantity.

The functions here import only the standard library and numpy; the child process (``python -m
devices._probe``) imports ``ai_edge_litert``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

MADV_POPULATE_READ = 22  # Linux >= 5.14
DELEGATES = ("default", "none")


class MeasureError(RuntimeError):
    """The measurement could not be made (platform, model or child process); says why."""


def rss_status() -> dict[str, int]:
    """Resident-set counters of this process in bytes: VmHWM, VmRSS, RssAnon, RssFile."""
    out: dict[str, int] = {}
    try:
        text = Path("/proc/self/status").read_text()
    except OSError as err:
        raise MeasureError(
            f"/proc/self/status unreadable ({err}): peak memory needs Linux."
        ) from err
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak() -> None:
    """Resets ``VmHWM`` to the current resident set (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as err:
        raise MeasureError(f"cannot reset the peak RSS via /proc/self/clear_refs: {err}") from err


def trim_heap() -> None:
    """Returns the C heap's free pages to the kernel (glibc ``malloc_trim``), so that memory
    reused by the measured code counts as new resident memory instead of hiding in free lists."""
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def prefault_libraries() -> int:
    """Faults in every page of this process's file-backed readable mappings; returns bytes.

    After it, running new kernels in a loaded library no longer raises the resident set, so a
    peak measured afterwards counts data, not code.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    done = 0
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) < 6 or not parts[5].startswith("/") or "r" not in parts[1]:
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        if libc.madvise(start, end - start, MADV_POPULATE_READ) == 0:
            done += end - start
    return done


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One signature measured in a fresh process."""

    model: str
    signature: str
    delegate: str
    threads: int
    peak_bytes: int
    loaded_bytes: int
    anon_bytes: int
    file_bytes: int
    first_call_s: float
    latency_s: float  # the fastest timed call: the others also measure other load (timeit's advice)
    latencies_s: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["latencies_s"] = list(self.latencies_s)
        return d


def example_inputs(
    model: str | os.PathLike[str], signature: str, *, seed: int = 0, batch: int | None = None
) -> dict[str, np.ndarray]:
    """Inputs of the right shapes and dtypes: images in [0, 1), labels 0..1, lr 0.01, wd 5e-4.

    ``batch``: rows for inputs whose leading dimension is symbolic (``-1`` in the signature's
    ``shape_signature``, as a polymorphic-batch export has); the stored shape (1) otherwise.
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model))
    try:
        runner = interp.get_signature_runner(signature)
    except ValueError as err:
        raise MeasureError(f"{model}: no signature {signature!r} ({err}).") from err
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, d in runner.get_input_details().items():
        shape, dtype = tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"])
        symbolic = d.get("shape_signature")
        if (
            batch is not None
            and shape
            and symbolic is not None
            and len(symbolic)
            and symbolic[0] < 0
        ):
            shape = (batch, *shape[1:])
        if np.issubdtype(dtype, np.integer):
            out[name] = (np.arange(int(np.prod(shape))) % 2).astype(dtype).reshape(shape)
        elif not shape:
            out[name] = np.asarray(5e-4 if "decay" in name else 0.01, dtype)
        else:
            out[name] = rng.random(shape).astype(dtype)
    return out


def _run_probe(
    path: Path, signature: str, feed: dict[str, np.ndarray], options: list[str], timeout_s: float
) -> dict[str, Any]:
    """Runs ``python -m devices._probe`` on the model in a fresh process; its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "inputs.npz"
        save: Any = np.savez  # the stubs reserve keyword names for options
        save(npz, **feed)
        cmd = [sys.executable, "-m", "devices._probe", str(path), signature, str(npz), *options]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired as err:
            raise MeasureError(
                f"{path}:{signature}: probe timed out after {timeout_s:.0f} s."
            ) from err
    if proc.returncode != 0:
        raise MeasureError(f"{path}:{signature}: probe failed: {proc.stderr.strip()[-2000:]}")
    try:
        data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as err:
        raise MeasureError(
            f"{path}:{signature}: probe printed no result: {proc.stdout[-500:]}"
        ) from err
    return data


def measure_signature(
    model: str | os.PathLike[str],
    signature: str,
    *,
    inputs: Mapping[str, np.ndarray] | None = None,
    runs: int = 10,
    delegate: str = "default",
    threads: int = 1,
    timeout_s: float = 300.0,
    invoke_only: bool = False,
) -> Measurement:
    """Loads ``model`` in a fresh process, calls ``signature`` ``1 + runs`` times, measures.

    Args:
      model: a ``.tflite`` file.
      signature: its signature key.
      inputs: the call's inputs; default :func:`example_inputs`.
      runs: timed calls after the first (which allocates; its time is reported apart).
      delegate: ``"default"`` (the interpreter's default delegates: XNNPACK on CPU, what an app
        gets) or ``"none"`` (builtin kernels only).
      threads: interpreter threads.
      invoke_only: time ``Interpreter.invoke()`` alone (inputs set once, outputs not copied
        out): the kernels of a one-subgraph model without the signature runner's copies.

    Raises:
      MeasureError: not Linux, missing model or signature, or the child failed (its stderr).
    """
    path = Path(model)
    if not path.is_file():
        raise MeasureError(f"{path}: model file not found.")
    if delegate not in DELEGATES:
        raise MeasureError(f"delegate {delegate!r}: expected one of {', '.join(DELEGATES)}.")
    feed = dict(inputs) if inputs is not None else example_inputs(path, signature)
    options = ["--runs", str(runs), "--delegate", delegate, "--threads", str(threads)]
    if invoke_only:
        options.append("--invoke-only")
    data = _run_probe(path, signature, feed, options, timeout_s)
    lat = tuple(float(x) for x in data["latencies_s"])
    return Measurement(
        model=str(path),
        signature=signature,
        delegate=delegate,
        threads=threads,
        peak_bytes=int(data["peak_bytes"]),
        loaded_bytes=int(data["loaded_bytes"]),
        anon_bytes=int(data["anon_bytes"]),
        file_bytes=int(data["file_bytes"]),
        first_call_s=float(data["first_call_s"]),
        latency_s=float(min(lat)) if lat else float(data["first_call_s"]),
        latencies_s=lat,
    )
