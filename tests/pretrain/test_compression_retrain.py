"""Retraining under compression on the pretraining pipeline: masks hold, sharing holds."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import pretrain.compression as pc
from pretrain.config import make_config
from pretrain.train import Splits, Trainer

TINY = {
    "model": "lenet300",
    "model_options": {"hidden": (32, 16)},
    "batch_size": 32,
    "eval_batch_size": 100,
    "learning_rate": 0.05,
}


@pytest.fixture(scope="module")
def setup(make_toy):
    config = make_config(TINY)
    splits = Splits(make_toy(640, seed=0), make_toy(200, seed=1), make_toy(200, seed=2))
    trainer = Trainer(config, splits.train.images)
    params = jax.device_get(trainer.init_state(jax.random.key(0)).params)
    return config, splits, params


def test_iterative_pruning_keeps_pruned_weights_zero(setup) -> None:
    config, splits, params = setup
    schedule = pc.polynomial({"fc1": 0.9, "fc2": 0.8, "fc3": 0.5}, 2)
    pruned, _, state, history = pc.iterative_pruning(
        pc.magnitude_pruning,
        schedule,
        2,
        params,
        config,
        splits,
        epochs=1,
        key=jax.random.key(1),
        progress=False,
    )
    assert [h["round"] for h in history] == [0, 1]
    assert len(history[1]["epochs"]) == 1
    got = pc.sparsity_of(pruned)
    assert got == pytest.approx({"fc1/kernel": 0.9, "fc2/kernel": 0.8, "fc3/kernel": 0.5}, abs=1e-3)
    for name, mask in state.masks.items():
        w = np.asarray(pc.named_leaves(pruned)[name])
        np.testing.assert_array_equal(w[~np.asarray(mask)], 0.0)
    assert 0.0 <= history[-1]["val_error"] <= 1.0


def test_quantized_retraining_keeps_weights_shared_and_zeros_zero(setup) -> None:
    config, splits, params = setup
    prune = pc.magnitude_pruning(0.7)
    pruned, _ = prune.apply(params, prune.init(params))
    share = pc.weight_sharing(3)
    state = share.init(pruned)
    result = pc.retrain(
        share,
        state,
        pruned,
        dataclasses.replace(config, learning_rate=1e-3),
        splits,
        epochs=1,
        key=jax.random.key(2),
        progress=False,
    )
    assert len(result.history) == 2 and result.history[1]["seconds"] > 0
    for name, w in pc.selected(result.params, pc.kernels()).items():
        w = np.asarray(w)
        assert np.unique(w).size <= 8
        np.testing.assert_array_equal(w == 0, np.asarray(pc.named_leaves(pruned)[name]) == 0)
        assert set(np.unique(w)) <= set(np.asarray(result.state.centroids[name]))
