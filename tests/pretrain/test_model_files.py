"""save_model's two files: each atomic, and a pair from two different saves is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import pretrain


def _save(path: Path, scale: float) -> None:
    model = pretrain.build_model("lenet300", hidden=[4, 3])
    import jax

    params = model.init(jax.random.key(0), np.zeros((1, 28, 28, 1), np.float32))["params"]
    params = jax.tree_util.tree_map(lambda x: x * scale, params)
    pretrain.save_model(path, model="lenet300", model_options={"hidden": [4, 3]}, params=params)


def test_a_torn_save_is_refused_not_mixed(tmp_path: Path) -> None:
    _save(tmp_path / "a", 1.0)
    _save(tmp_path / "b", 2.0)
    assert pretrain.load_model(tmp_path / "a").info["params"] > 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.json", "params.npz"]
    shutil.copy(tmp_path / "b" / "params.npz", tmp_path / "a" / "params.npz")  # killed between
    with pytest.raises(ValueError, match="interrupted between its two files"):
        pretrain.load_model(tmp_path / "a")
