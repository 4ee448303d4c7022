"""Fixtures of the export tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import pytest

import pretrain
from pretrain.train.artifacts import SavedModel


@pytest.fixture(scope="session")
def save_embednet() -> Callable[..., SavedModel]:
    """``save(folder, options, *, info, seed=0)``: a random-init EmbedNet with ``options``,
    saved at ``folder`` (64x64x1 input) with ``info``, and read back."""

    def save(folder: Path, options: dict[str, Any], *, info: dict, seed: int = 0) -> SavedModel:
        module = pretrain.build_model("embednet", **options)
        params = module.init(jax.random.key(seed), jnp.zeros((1, 64, 64, 1)))["params"]
        pretrain.save_model(folder, model="embednet", model_options=options, params=params,
                            info=info)  # fmt: skip
        return pretrain.load_model(folder)

    return save
