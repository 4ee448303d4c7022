"""Shared fixtures. Real data comes from $POCKETFIT_DATA; tests that need it skip, saying where."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Under xdist every worker gets its share of the cores for BLAS (and so do the notebook kernels
# and subprocesses it starts, which inherit the environment). OpenBLAS's default, one thread per
# core in every worker, oversubscribes the cores, and its threads spin while they wait: the MNIST
# descriptor fits of the deep_vs_traditional notebook took 10.6 s with 2 threads beside another
# busy process and 0.5 s with 1. A variable the user set wins. This must run before numpy loads.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _share = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _share)

# XLA:CPU compiles for the tests with LLVM at -O0: most tests run a tiny model for a few steps,
# where compiling is most of the time (test_embedding_train.py 105 -> 80 s, its two-stage run
# 27 -> 14 s); only long training runs slower (the killed-and-resumed MNIST run 30 -> 33 s). The
# HLO passes (fusion, layout) are the same, so the programs compute the same functions. Workers
# and notebooks started by the tests inherit it; a level the user set wins.
_xla_flags = os.environ.get("XLA_FLAGS", "")
if "--xla_backend_optimization_level" not in _xla_flags:
    os.environ["XLA_FLAGS"] = f"{_xla_flags} --xla_backend_optimization_level=0".strip()

# One persistent XLA compilation cache for the run: the same small programs compile in many
# files, in both workers and in the processes the tests start (a killed-and-resumed run, a worker
# pair, the CLIs), so a program compiled once is loaded after that (the resume test 33 -> 23 s).
# Created by the process that starts the run, before any worker (they inherit the environment),
# removed when it ends. A cache folder the user set wins, and is kept.
_OWN_XLA_CACHE: str | None = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ and "PYTEST_XDIST_WORKER" not in os.environ:
    _OWN_XLA_CACHE = tempfile.mkdtemp(prefix="pocketfit-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_XLA_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pretrain.data import ArrayDataset  # noqa: E402

# The files holding the slowest tests (per-file sums of the `--durations` list of the suite at
# a309ccc, less what later commits saved; slowest first). They are collected first, and `make test`
# keeps collection order (`--no-loadscope-reorder`), so the two xdist workers start on them rather
# than one worker being left alone with them at the end. A file missing here only runs later;
# nothing else depends on it.
SLOW_FILES = (
    "tests/pretrain/test_parallel_embed.py",
    "tests/pretrain/test_parallel.py",
    "tests/test_notebooks.py",
    "tests/test_demo.py",
    "tests/pretrain/test_embedding_train.py",
    "tests/pretrain/test_minutiae_head.py",
    "tests/pretrain/test_mobilefacenet.py",
    "tests/pretrain/test_resume.py",
    "tests/pretrain/test_cli.py",
    "tests/pretrain/test_embednet.py",
    "tests/export/test_mobilefacenet_export.py",
    "tests/export/test_build_cli.py",
    "tests/pretrain/test_models.py",
    "tests/export/test_artifact_ota.py",
    "tests/pretrain/test_embedding_face.py",
    "tests/pretrain/test_xla_cpu.py",
)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_XLA_CACHE is not None:
        shutil.rmtree(_OWN_XLA_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(autouse=True, scope="session")
def _keys_outside_home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Store keys (personalize.keystore.key_dir) go to a temp folder, not ~/.config, for the
    tests and the commands they start."""
    old = os.environ.get("POCKETFIT_KEYS")
    os.environ["POCKETFIT_KEYS"] = str(tmp_path_factory.mktemp("keys"))
    yield
    if old is None:
        os.environ.pop("POCKETFIT_KEYS", None)
    else:
        os.environ["POCKETFIT_KEYS"] = old


def _data_root() -> Path | None:
    value = os.environ.get("POCKETFIT_DATA")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real datasets folder, or a skip that says how to provide it."""
    root = _data_root()
    if root is None:
        pytest.skip(
            "real datasets not found: set POCKETFIT_DATA to the datasets folder "
            "(e.g. ../shared/datasets); `make test` sets it when that folder exists."
        )
    return root


@pytest.fixture(scope="session")
def mnist_dir(data_root: Path) -> Path:
    path = data_root / "mnist"
    if not path.is_dir():
        pytest.skip(f"MNIST not found: put the four idx files in {path}.")
    return path


def toy_dataset(n: int = 640, *, seed: int = 0, classes: int = 10) -> ArrayDataset:
    """A learnable stand-in for MNIST: each class is a noisy fixed 28x28 template.

    The templates are the same for every ``seed``; the seed draws the labels and the noise, so
    datasets with different seeds are train / validation / test splits of one task.
    """
    templates = np.random.default_rng(1234).random((classes, 28, 28, 1), dtype=np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.int32)
    noise = 0.3 * rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    return ArrayDataset(templates[labels] + noise, labels, f"toy-{seed}")


@pytest.fixture(scope="session")
def make_toy():
    """The :func:`toy_dataset` factory (tests import nothing from conftest directly)."""
    return toy_dataset


def tiny_lenet_config(**overrides: Any) -> dict[str, Any]:
    """The training config of a tiny LeNet-300 (hidden 32, 16) that learns the toy dataset in a
    few steps, with ``overrides`` (any config key)."""
    return {
        "model": "lenet300",
        "model_options": {"hidden": (32, 16)},
        "batch_size": 32,
        "eval_batch_size": 100,
        "learning_rate": 0.05,
        **overrides,
    }


@pytest.fixture(scope="session")
def tiny_lenet() -> Callable[..., dict[str, Any]]:
    """The :func:`tiny_lenet_config` factory."""
    return tiny_lenet_config


def build_toy_artifact(
    tmp: Path,
    splits: Any,
    *,
    hidden: tuple[int, int],
    background: np.ndarray,
    background_source: str,
    calibration: np.ndarray | None = None,
    classes: int = 4,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """A briefly trained LeNet-300 exported as a signed artifact with every scope (int8 embed;
    calibrated on ``calibration``, default the first 256 background images): int8 error is
    meaningful only on weights that were trained.

    Returns:
      ``dir`` (the artifact), ``pub`` and ``key`` (its signer), ``backbone``, ``manifest``, ``tmp``.
    """
    import pretrain
    from export.artifact import build_artifact, split_backbone
    from export.bundle import generate_key

    options: dict[str, Any] = {"hidden": hidden}
    if num_classes is not None:
        options["num_classes"] = num_classes
    config = pretrain.make_config(tiny_lenet_config(model_options=options, epochs=3))
    pretrain.fit(config, tmp / "run", progress=False, splits=splits)
    key = generate_key(tmp / "signing.key", tmp / "signing.pub")
    backbone = split_backbone(pretrain.load_model(tmp / "run" / "model"))
    manifest = build_artifact(
        backbone,
        tmp / "art",
        private_key=key,
        calibration=background[:256] if calibration is None else calibration,
        background_images=background,
        background_source=background_source,
        classes=classes,
    )
    shutil.rmtree(tmp / "run" / "checkpoints", ignore_errors=True)
    return {
        "dir": tmp / "art",
        "pub": tmp / "signing.pub",
        "key": key,
        "backbone": backbone,
        "manifest": manifest,
        "tmp": tmp,
    }


@pytest.fixture(scope="session")
def make_toy_artifact() -> Callable[..., dict[str, Any]]:
    """The :func:`build_toy_artifact` factory: the one toy-artifact build of the export and
    personalize tests (each asks for its own backbone size and background people)."""
    return build_toy_artifact
