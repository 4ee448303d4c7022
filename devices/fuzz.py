"""Mutation fuzzing of the parsers that read outside bytes, each input in a worker process.

A *target* is a parser plus what counts as a clear refusal: ``run(data)`` either returns (the
input loaded) or raises one of ``refusals`` (the project's own error types); anything else is an
unexpected exception. Inputs are seed files mutated by :func:`mutate` (bit flips, interesting
bytes, inserted, deleted, duplicated or spliced ranges, truncation), reproducible from
``(seed, index)``. Inputs run in a worker process under a per-input time bound and a memory cap,
so a hang or a native crash (a segfault in a decoder) is counted and the worker restarted, not
fatal. Targets are built in the worker by a factory named ``"module:function"`` (spawned, so a
parent that imported JAX or TensorFlow forks nothing).

Standard library only at import (the leaf package; the image seeds import numpy, Pillow and
tifffile when made); the targets live beside their parsers
(``export.bundle.fuzz``, ``personalize.fuzz``, ``pretrain.fuzz``).

Example:
  >>> report = fuzz("export.bundle.fuzz:targets", "pfb", inputs=1000, seed=0)
  >>> report.unexpected
  0
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import logging
import multiprocessing as mp
import random
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF)
MAX_STACK = 4  # mutations applied to one input
TIME_BOUND_S = 10.0  # per input; a parser slower than this counts as a hang
MEMORY_CAP = 4 << 30  # bytes of address space a worker may map; more is a MemoryError
EXAMPLES_KEPT = 5
IMAGE_SUFFIXES = (".png", ".pgm", ".jpg", ".bmp", ".tif", ".npy")


class Target(NamedTuple):
    """One parser under fuzzing.

    Attributes:
      seeds: valid inputs (bytes) the mutations start from.
      run: parses one input; returns normally when it loads.
      refusals: the error types a clear refusal raises.
    """

    seeds: Sequence[bytes]
    run: Callable[[bytes], Any]
    refusals: tuple[type[BaseException], ...]


class Report(NamedTuple):
    """What one target did with its inputs; ``unexpected`` counts exceptions, hangs and crashes."""

    target: str
    inputs: int
    loaded: int
    refused: int
    exceptions: int
    hangs: int
    crashes: int
    examples: list[str]

    @property
    def unexpected(self) -> int:
        return self.exceptions + self.hangs + self.crashes


def _span(rng: random.Random, n: int) -> tuple[int, int]:
    start = rng.randrange(n + 1)
    return start, min(n, start + rng.choice((1, 2, 4, 8, rng.randrange(1, 65))))


def _mutate_once(data: bytearray, rng: random.Random, seeds: Sequence[bytes]) -> bytearray:
    n = len(data)
    kind = rng.randrange(8) if n else 2
    if kind == 0:  # bit flip
        pos = rng.randrange(n)
        data[pos] ^= 1 << rng.randrange(8)
    elif kind == 1:  # interesting or random byte
        data[rng.randrange(n)] = rng.choice((*INTERESTING, rng.randrange(256)))
    elif kind == 2:  # insert random bytes
        pos = rng.randrange(n + 1)
        data[pos:pos] = rng.randbytes(rng.choice((1, 4, rng.randrange(1, 65))))
    elif kind == 3:  # delete a range
        start, end = _span(rng, n)
        del data[start:end]
    elif kind == 4:  # duplicate a range
        start, end = _span(rng, n)
        data[end:end] = data[start:end]
    elif kind == 5:  # truncate
        del data[rng.randrange(n) :]
    elif kind == 6:  # overwrite 2, 4 or 8 bytes with an extreme little-endian integer
        width = rng.choice((2, 4, 8))
        pos = rng.randrange(max(1, n - width + 1))
        value = rng.choice(
            (0, 1, (1 << (8 * width)) - 1, 1 << (8 * width - 1), rng.randrange(1 << 16))
        )
        data[pos : pos + width] = value.to_bytes(width, "little")
    else:  # splice: this input's head, another seed's tail
        other = rng.choice(seeds)
        data = data[: rng.randrange(n + 1)] + bytearray(other[rng.randrange(len(other) + 1) :])
    return data


def mutate(seeds: Sequence[bytes], seed: int, index: int) -> bytes:
    """Input ``index`` of a run: one seed with 1-4 stacked mutations (never the seed itself),
    reproducible."""
    rng = random.Random(seed * 1_000_003 + index)
    source = rng.choice(seeds)
    data = bytearray(source)
    for _ in range(rng.randrange(1, MAX_STACK + 1)):
        data = _mutate_once(data, rng, seeds)
    while data == source:  # a mutation that restored its seed (a splice, a byte set to itself)
        data = _mutate_once(data, rng, seeds)
    return bytes(data)


def classify(target: Target, data: bytes) -> tuple[str, str]:
    """Runs one input in this process: ``("loaded" | "refused" | "exception", detail)``."""
    try:
        target.run(data)
    except target.refusals:
        return "refused", ""
    except Exception as err:
        where = traceback.extract_tb(err.__traceback__)[-1]
        return "exception", f"{type(err).__name__}: {err} ({where.filename}:{where.lineno})"[:400]
    return "loaded", ""


def seed_images() -> list[bytes]:
    """Small valid captures, one per format the device reads; each begins with its suffix."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (24, 20), np.uint8)
    out = []
    for suffix in IMAGE_SUFFIXES:
        buffer = io.BytesIO()
        if suffix == ".npy":
            np.save(buffer, gray, allow_pickle=False)
        elif suffix == ".tif":
            import tifffile

            tifffile.imwrite(buffer, gray)
        else:
            fmt = {".png": "PNG", ".pgm": "PPM", ".jpg": "JPEG", ".bmp": "BMP"}[suffix]
            Image.fromarray(gray).save(buffer, format=fmt)
        out.append(suffix.encode() + b"|" + buffer.getvalue())
    return out


def image_file_runner(workdir: Path, read: Callable[[Path], Any]) -> Callable[[bytes], Any]:
    """Writes an input (``suffix|bytes``, as :func:`seed_images` makes) to a file and reads it."""

    def run(data: bytes) -> Any:
        suffix, _, body = data.partition(b"|")
        name = suffix.decode("ascii", "replace")
        file = workdir / f"capture{name if name in IMAGE_SUFFIXES else '.png'}"
        file.write_bytes(body)
        try:
            return read(file)
        finally:
            file.unlink()

    return run


def load_target(factory: str, name: str, workdir: Path) -> Target:
    """Builds target ``name`` with ``module:function(workdir) -> {name: Target}`` (the module
    may be a ``.py`` file's path)."""
    module_name, _, function = factory.rpartition(":")
    if module_name.endswith(".py"):  # a file, e.g. a test's own faulty targets
        spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
        assert spec is not None and spec.loader is not None, module_name
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    targets: dict[str, Target] = getattr(module, function)(workdir)
    return targets[name]


def _worker(factory: str, name: str, seed: int, conn: Any) -> None:
    logging.disable(logging.CRITICAL)  # decoders log every refusal (tifffile: one line each)
    warnings.simplefilter("ignore")  # and warn about what they parse (SyntaxWarning, bombs)
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    with tempfile.TemporaryDirectory() as tmp:
        target = load_target(factory, name, Path(tmp))
        conn.send(("ready", len(target.seeds)))
        while (index := conn.recv()) is not None:
            conn.send(classify(target, mutate(target.seeds, seed, index)))


class _Worker:
    """A spawned worker process and its pipe; restarted after a hang or a crash."""

    def __init__(self, factory: str, name: str, seed: int) -> None:
        self.args = (factory, name, seed)
        self.process: Any = None
        self.start()

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(*self.args, child), daemon=True)
        self.process.start()
        child.close()
        try:
            if not self.conn.poll(600):
                raise EOFError("no answer within 600 s")
            self.conn.recv()  # ("ready", seeds)
        except (EOFError, ConnectionResetError) as err:
            self.process.kill()
            raise RuntimeError(
                f"fuzz worker for target {self.args[1]} did not start ({err or 'it exited'}; "
                "its error is on stderr)."
            ) from None

    def ask(self, index: int, time_bound: float) -> tuple[str, str]:
        try:
            self.conn.send(index)
            if self.conn.poll(time_bound):
                return self.conn.recv()
            kind, detail = "hang", f"no answer within {time_bound:g} s"
        except (EOFError, BrokenPipeError, ConnectionResetError):
            kind, detail = "crash", ""
        self.process.join(0.5 if kind == "crash" else 0)
        code = self.process.exitcode
        if code is not None and code != 0:
            kind, detail = "crash", f"worker exit code {code}"
        self.stop()
        self.start()
        return kind, detail

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self.conn.send(None)
            self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def fuzz(
    factory: str,
    name: str,
    *,
    inputs: int,
    seed: int = 0,
    time_bound: float = TIME_BOUND_S,
    progress: Callable[[Iterator[int]], Iterator[int]] | None = None,
) -> Report:
    """Runs ``inputs`` mutated inputs through target ``name`` of ``factory`` in a worker.

    Args:
      factory: ``"module:function"`` returning ``{name: Target}`` for a scratch folder.
      name: the target.
      inputs: how many inputs.
      seed: the run's seed (input ``i`` is :func:`mutate` ``(seeds, seed, i)``).
      time_bound: seconds an input may take before it counts as a hang.
      progress: wraps the input loop (e.g. ``tqdm``).

    Returns:
      The :class:`Report`; its examples name the first inputs (index, kind, detail) that were
      neither loaded nor refused, to reproduce with :func:`mutate` and :func:`classify`.
    """
    counts = {"loaded": 0, "refused": 0, "exception": 0, "hang": 0, "crash": 0}
    examples: list[str] = []
    worker = _Worker(factory, name, seed)
    try:
        indices: Iterator[int] = iter(range(inputs))
        for index in progress(indices) if progress else indices:
            kind, detail = worker.ask(index, time_bound)
            counts[kind] += 1
            if kind not in ("loaded", "refused") and len(examples) < EXAMPLES_KEPT:
                examples.append(f"input {index}: {kind}: {detail}")
    finally:
        worker.stop()
    return Report(
        name,
        inputs,
        counts["loaded"],
        counts["refused"],
        counts["exception"],
        counts["hang"],
        counts["crash"],
        examples,
    )
