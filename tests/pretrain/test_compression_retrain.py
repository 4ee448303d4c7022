"""Retraining under compression on the pretraining pipeline: masks hold, sharing holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest

import pretrain.compression as pc
from pretrain.config import make_config
from pretrain.train import Splits, Trainer
from pretrain.train.artifacts import SavedModel


@pytest.fixture(scope="module")
def tiny(tiny_lenet: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return tiny_lenet()


@pytest.fixture(scope="module")
def setup(make_toy, tiny: dict[str, Any]):
    config = make_config(tiny)
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


def test_retrained_error_scores_a_structure_after_masked_steps(setup, tiny: dict[str, Any]) -> None:
    config, splits, params = setup
    saved = SavedModel(None, params, {"model": config.model, "info": {"config": tiny}})
    recipe = pc.StructuredRecipe(
        plan={"fc1": pc.LayerPlan(8)}, chain=("fc1", "fc2", "fc3"), lr=0.05, score_steps=20
    )
    score = pc.retrained_error(saved, recipe, splits, steps=20, key=jax.random.key(0))
    keep = pc.l1_structure(params, {"fc1": 8})
    starved = pc.l1_structure(params, {"fc1": 1})
    trainer = Trainer(config, splits.train.images)
    untrained = trainer.evaluate(
        pc.structured_pruning(keep, recipe.chain).apply(
            params, pc.structured_pruning(keep, recipe.chain).init(params)
        )[0],
        splits.val,
    ).error
    first = score(keep)
    assert score(keep) == first  # the same batches every call: a function of the masks
    assert first < untrained  # the steps trained the network ...
    assert score(starved) > first  # ... and one hidden unit is worse than eight
    with pytest.raises(ValueError, match="steps must be >= 1"):
        pc.retrained_error(saved, recipe, splits, steps=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="score_steps must be >= 0"):
        dataclasses.replace(recipe, score_steps=-1)
