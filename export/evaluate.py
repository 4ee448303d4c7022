"""Test error of a decoded bundle: rebuild the network, load the decoded weights, classify.

The bundle is verified and decoded with numpy (:mod:`export.bundle`); only this evaluation needs
the model code, so ``pretrain`` and JAX are imported when it runs, not when ``export`` is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from devices.bundle.download import FORMAT as DOWNLOAD_FORMAT
from export.bundle import Bundle, read_bundle


class Dataset(NamedTuple):
    """A test split a bundle can be measured on: its loader, image shape and class count."""

    load: Callable[[], Any]
    image_shape: tuple[int, ...]
    classes: int


def _mnist() -> Any:
    import pretrain

    return pretrain.load_mnist("test")


TEST_SETS = {"mnist": Dataset(_mnist, (28, 28, 1), 10)}
DATASETS = tuple(TEST_SETS)


def _test_split(name: str) -> Any:
    if name not in TEST_SETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    return TEST_SETS[name].load()


def check_classifier(bundle: Bundle, dataset: str, where: str = "bundle") -> None:
    """Refuses a bundle whose network is not a classifier of ``dataset``'s images: a download
    bundle (an artifact, not a network), or a network whose output is not one logit per class
    (an embedding backbone), found from the shapes alone (nothing is computed).

    Raises:
      ValueError: the bundle is not a classifier for ``dataset``; the message says what it is.
    """
    import flax
    import jax

    import pretrain

    spec = TEST_SETS[dataset]
    if bundle.options.get("format") == DOWNLOAD_FORMAT:
        raise ValueError(
            f"{where} is an artifact's download bundle ({DOWNLOAD_FORMAT}), not a {dataset} "
            "classifier; evaluate measures a classifier's .pfb (e.g. pretrain/configs/lenet300.py's)."
        )
    module = pretrain.build_model(bundle.model, **bundle.options)
    images = jax.ShapeDtypeStruct((1, *spec.image_shape), np.float32)
    try:
        out = jax.eval_shape(lambda p, x: module.apply({"params": p}, x), bundle.params, images)
        shape = tuple(out.shape)
    except (ValueError, TypeError, AttributeError, flax.errors.FlaxError) as err:
        raise ValueError(
            f"{where}: its {bundle.model} does not take {dataset}'s "
            f"{'x'.join(map(str, spec.image_shape))} images ({str(err).splitlines()[0]}); not a "
            f"{dataset} classifier."
        ) from None
    if shape != (1, spec.classes):
        raise ValueError(
            f"{where}: its {bundle.model} gives {shape[-1] if shape else 'no'} outputs an image, "
            f"not {spec.classes} class scores: not a {dataset} classifier (an embedding backbone?)."
        )


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
    """Verifies and decodes ``path``, checks it classifies ``dataset``, then measures its test
    error.

    Returns:
      ``{"test_error_pct", "ratio", "bytes", "reference_bytes", "model", "dataset", "examples",
      "key_id"}``.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    bundle = read_bundle(path, public_key=public_key)
    check_classifier(bundle, dataset, str(path))
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
