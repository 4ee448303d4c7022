"""Test error of a decoded bundle: rebuild the network, load the decoded weights, classify.

The bundle is verified and decoded with numpy (:mod:`export.bundle`); only this evaluation needs
the model code, so ``pretrain`` and JAX are imported when it runs, not when ``export`` is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from export.bundle import Bundle, read_bundle

DATASETS = ("mnist",)


def _test_split(name: str) -> Any:
    import pretrain

    loaders: dict[str, Callable[[], Any]] = {"mnist": lambda: pretrain.load_mnist("test")}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    return loaders[name]()


def measure_error(
    bundle: Bundle, dataset: str = "mnist", *, batch_size: int = 1000
) -> tuple[float, int]:
    """``(error in %, examples)`` of the bundle's decoded network on ``dataset``'s test split."""
    import jax

    import pretrain

    data = _test_split(dataset)
    module = pretrain.build_model(bundle.model, **bundle.options)
    apply = jax.jit(lambda p, x: module.apply({"params": p}, x))
    wrong = 0
    for start in range(0, len(data), batch_size):
        logits = apply(bundle.params, data.images[start : start + batch_size])
        wrong += int(
            np.sum(np.argmax(np.asarray(logits), -1) != data.labels[start : start + batch_size])
        )
    return 100.0 * wrong / len(data), len(data)


def evaluate_bundle(
    path: str | os.PathLike[str], *, dataset: str = "mnist", public_key: Any = None
) -> dict[str, Any]:
    """Verifies and decodes ``path``, then measures its test error.

    Returns:
      ``{"test_error_pct", "ratio", "bytes", "reference_bytes", "model", "dataset", "examples",
      "key_id"}``.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    bundle = read_bundle(path, public_key=public_key)
    error, n = measure_error(bundle, dataset)
    return {
        "test_error_pct": error,
        "ratio": bundle.ratio,
        "bytes": bundle.nbytes,
        "reference_bytes": bundle.reference_bytes,
        "model": bundle.model,
        "dataset": dataset,
        "examples": n,
        "key_id": bundle.key_id,
    }
