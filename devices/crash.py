"""Crash injection: SIGKILL a writer at a random point, then read what it left with the readers.

A *target* is a writer and the project's own reader of what it writes: ``prepare(folder)`` puts
the previous state in a fresh folder, ``write(folder)`` writes the new state (in a child process
that is killed), ``state(folder)`` reads the folder and names what it found, ``"old"`` or
``"new"``; anything else it returns or raises counts as lost or corrupt.

Two ways to choose the moment, per target:

* ``"steps"``: the writer's file steps go through :mod:`devices.files`, whose
  :func:`~devices.files.crash_point` runs between any two of them (temp file created, each 4 KiB
  written, fsync, chmod, rename or link, folder fsync, folder exchanged). A dry run counts the
  steps N; each injection forks a child armed to SIGKILL itself at step ``k``, uniform in
  ``0..N`` (``k = N``: the write completes). Every torn state is reachable, a partly written
  temp file included.
* ``"delay"``: for writers whose files another library writes (Orbax checkpoints), the child is
  a fresh interpreter SIGKILLed after a random delay, uniform over 1.2x the write's measured
  duration.

The driver runs a target's injections in a spawned worker (:func:`crash`), so a parent that
imported JAX or TensorFlow forks nothing. Targets live beside their writers
(``personalize.crash``, ``export.crash``, ``pretrain.crash``). Standard library only.

Example:
  >>> report = crash("personalize.crash:targets", "record_save", injections=100, seed=0)
  >>> report.lost_or_corrupt
  0
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, cast

from devices.files import arm_crash, crash_steps
from devices.fuzz import load_target

DELAY_SPAN = 1.2  # delays are uniform over this multiple of the write's duration
CHILD_TIMEOUT_S = 300.0
EXAMPLES_KEPT = 5


class CrashTarget(NamedTuple):
    """One writer under crash injection (see the module docstring).

    Attributes:
      prepare: puts the previous state into an empty folder.
      write: writes the new state into a folder ``prepare`` filled.
      state: reads the folder with the project's readers: ``"old"`` or ``"new"``.
      kill: ``"steps"`` (at a write step of :mod:`devices.files`) or ``"delay"`` (after a time).
      warm: run by a ``"delay"`` child before its clock starts (imports, a runtime's start-up).
    """

    prepare: Callable[[Path], Any]
    write: Callable[[Path], Any]
    state: Callable[[Path], str]
    kill: str = "steps"
    warm: Callable[[], Any] | None = None


class CrashReport(NamedTuple):
    """What one target's injections left: the old state, the new one, or neither."""

    target: str
    injections: int
    old: int
    new: int
    lost_or_corrupt: int
    write_steps: int
    examples: list[str]


def _check(target: CrashTarget, folder: Path) -> tuple[str, str]:
    try:
        found = target.state(folder)
    except Exception as err:
        return "lost", f"{type(err).__name__}: {err}"[:300]
    return (found, "") if found in ("old", "new") else ("lost", f"state {found!r}")


def _forked_write(target: CrashTarget, folder: Path, at: int | None) -> int:
    """Runs ``write`` in a forked child armed at step ``at``; returns its wait status."""
    pid = os.fork()
    if pid == 0:  # the child: write, then leave without running the parent's cleanups
        code = 0
        try:
            arm_crash(at)
            target.write(folder)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def _count_steps(target: CrashTarget, folder: Path) -> int:
    target.prepare(folder)
    arm_crash(sys.maxsize)  # armed (writes in pieces) but never reached: counts the steps
    target.write(folder)
    steps = crash_steps()
    arm_crash(None)
    found, detail = _check(target, folder)
    if found != "new":
        raise RuntimeError(f"the uninterrupted write does not read back as new: {detail}")
    return steps


_CHILD = (
    "import sys\nfrom pathlib import Path\nfrom devices.fuzz import load_target\n"
    "t = load_target(sys.argv[1], sys.argv[2], Path(sys.argv[3]))\n"
    "t.warm and t.warm()\n"
    "print('go', flush=True)\nt.write(Path(sys.argv[4]))\nprint('done', flush=True)\n"
)


def _read_until(stream: Any, word: str) -> bool:
    """Reads the child's output up to a line ``word`` (other lines: a library's prints)."""
    return any(line.strip() == word for line in iter(stream.readline, ""))


def _delayed_write(args: tuple[str, str, Path], folder: Path, delay: float | None) -> float:
    """Runs ``write`` in a fresh interpreter, SIGKILLed ``delay`` s after it starts writing
    (None: let it finish); returns the seconds it wrote for."""
    factory, name, workdir = args
    (workdir / "child").mkdir(exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, factory, name, str(workdir / "child"), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if not _read_until(child.stdout, "go"):
        child.wait()
        raise RuntimeError(f"crash child for {name} did not start (exit {child.returncode}).")
    start = time.perf_counter()
    if delay is None:  # the dry run: time the write itself, not the interpreter's exit
        done = _read_until(child.stdout, "done")
        took = time.perf_counter() - start
        child.wait(CHILD_TIMEOUT_S)
        if not done:
            raise RuntimeError(f"crash child for {name} failed (exit {child.returncode}).")
        child.stdout.close()
        return took
    try:
        child.wait(delay)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.wait()
    child.stdout.close()
    return time.perf_counter() - start


def _run(
    factory: str, name: str, injections: int, seed: int, tail: int, workdir: Path
) -> CrashReport:
    target = cast(CrashTarget, load_target(factory, name, workdir))  # a CrashTarget factory
    rng = random.Random(f"{seed}:{name}")
    counts = {"old": 0, "new": 0, "lost": 0}
    examples: list[str] = []
    steps = 0
    duration = 0.0
    dry = workdir / "dry"
    dry.mkdir()
    if target.kill == "steps":
        steps = _count_steps(target, dry)
    else:
        target.prepare(dry)
        duration = _delayed_write((factory, name, workdir), dry, None)
    for index in range(injections):
        folder = workdir / f"injection{index}"
        folder.mkdir()
        target.prepare(folder)
        if target.kill == "steps":
            at = steps - index if index < min(tail, steps + 1) else rng.randrange(steps + 1)
            _forked_write(target, folder, at)
            where = f"step {at} of {steps}"
        else:
            delay = rng.uniform(0, DELAY_SPAN * duration)
            _delayed_write((factory, name, workdir), folder, delay)
            where = f"{delay:.3f} s of {duration:.3f}"
        found, detail = _check(target, folder)
        counts[found] += 1
        if found == "lost" and len(examples) < EXAMPLES_KEPT:
            examples.append(f"injection {index} (killed at {where}): {detail}")
        shutil.rmtree(folder, ignore_errors=True)
    return CrashReport(
        name, injections, counts["old"], counts["new"], counts["lost"], steps, examples
    )


def _worker(factory: str, name: str, injections: int, seed: int, tail: int, conn: Any) -> None:
    try:
        with tempfile.TemporaryDirectory() as tmp:
            conn.send(("ok", _run(factory, name, injections, seed, tail, Path(tmp))))
    except Exception:
        conn.send(("error", traceback.format_exc()))


def crash(factory: str, name: str, *, injections: int, seed: int = 0, tail: int = 0) -> CrashReport:
    """Kills target ``name`` of ``factory`` ``injections`` times mid-write; counts what was left.

    Args:
      factory: ``"module:function"`` returning ``{name: CrashTarget}`` for a scratch folder.
      name: the target.
      injections: how many killed writes.
      seed: the run's seed (the kill points follow from it).
      tail: ``"steps"`` targets: the first injections kill at each of the last ``tail`` steps
        (the renames and syncs where old and new meet), the rest at random steps.

    Returns:
      The :class:`CrashReport`; its examples say where the first losses were killed.

    Raises:
      RuntimeError: the target could not be built, or its uninterrupted write reads back wrong.
    """
    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_worker, args=(factory, name, injections, seed, tail, child))
    process.start()
    child.close()
    try:
        kind, result = conn.recv()
    except EOFError:
        kind, result = "error", "the worker exited without a report (its error is on stderr)"
    process.join()
    if kind != "ok":
        raise RuntimeError(f"crash injection of {name} failed:\n{result}")
    return result
