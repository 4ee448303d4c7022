"""The training loop: the update rule, the plateau cut, exact resume, refusals, outputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pretrain.compression as pc
from pretrain.config import ConfigError, make_config
from pretrain.train import (
    CheckpointError,
    Splits,
    build_task,
    fit,
    load_model,
    make_optimizer,
    make_plateau,
    plateau_step,
)


@pytest.fixture(scope="module")
def tiny(tiny_lenet: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return tiny_lenet(plateau_patience=1)


@pytest.fixture(scope="module")
def splits(make_toy) -> Splits:
    return Splits(make_toy(640, seed=0), make_toy(200, seed=1), make_toy(200, seed=2))


def test_update_includes_weight_decay_on_weights_only() -> None:
    config = make_config({"learning_rate": 0.1, "momentum": 0.0, "weight_decay": 0.01})
    tx = make_optimizer(config)
    params = {"kernel": jnp.full((2, 2), 3.0), "bias": jnp.full((2,), 3.0)}
    grads = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["kernel"], -0.1 * (1.0 + 0.01 * 3.0), rtol=1e-6)
    np.testing.assert_allclose(updates["bias"], -0.1 * 1.0, rtol=1e-6)


def test_grown_parameters_can_learn_at_their_own_rate() -> None:
    base = {"learning_rate": 0.1, "momentum": 0.0, "weight_decay": 0.0, "init_from": "m"}
    config = make_config({**base, "init_new": ["ridge"], "init_new_lr_scale": 10.0})
    tx = make_optimizer(config, build_task("margin_softmax", {}))
    params = {"model": {"ridge": {"kernel": jnp.zeros((2, 2))}, "stem": jnp.zeros((2, 2))}}
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["model"]["ridge"]["kernel"], -1.0, rtol=1e-6)
    np.testing.assert_allclose(updates["model"]["stem"], -0.1, rtol=1e-6)
    with pytest.raises(ConfigError, match="name them"):
        make_config({**base, "init_new_lr_scale": 10.0})
    with pytest.raises(ConfigError, match="must be positive"):
        make_config({**base, "init_new": ["ridge"], "init_new_lr_scale": 0.0})


def test_momentum_accumulates() -> None:
    config = make_config({"learning_rate": 1.0, "momentum": 0.5, "weight_decay": 0.0})
    tx = make_optimizer(config)
    params = {"w": jnp.zeros((2, 2))}
    state = tx.init(params)
    grads = {"w": jnp.ones((2, 2))}
    first, state = tx.update(grads, state, params)
    second, _ = tx.update(grads, state, params)
    np.testing.assert_allclose(first["w"], -1.0)
    np.testing.assert_allclose(second["w"], -1.5)


def test_plateau_cuts_after_patience_epochs() -> None:
    config = make_config({"plateau_factor": 0.1, "plateau_patience": 2})
    plateau = make_plateau(config)
    state = plateau.init({})
    scales = []
    for error in [0.10, 0.05, 0.06, 0.05, 0.05, 0.04, 0.04, 0.04]:
        state = plateau_step(plateau, state, error)
        scales.append(round(float(state.scale), 6))
    assert scales == [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.01]


def _params(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "model" / "params.npz") as npz:
        return {k: npz[k] for k in npz.files}


def test_resume_continues_exactly(tmp_path: Path, splits: Splits, tiny: dict[str, Any]) -> None:
    # Patience high so both runs keep the last epoch's params as "best" only by improvement.
    straight = fit(
        make_config({**tiny, "epochs": 2}), tmp_path / "a", progress=False, splits=splits
    )
    fit(make_config({**tiny, "epochs": 1}), tmp_path / "b", progress=False, splits=splits)
    resumed = fit(
        make_config({**tiny, "epochs": 2}),
        tmp_path / "b",
        resume=True,
        progress=False,
        splits=splits,
    )
    assert straight.epochs == resumed.epochs == 2
    a, b = _params(tmp_path / "a"), _params(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert straight.test_error == resumed.test_error
    history = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2]
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in straight.history]


def test_training_learns_and_writes_outputs(
    tmp_path: Path, splits: Splits, tiny: dict[str, Any]
) -> None:
    result = fit(make_config({**tiny, "epochs": 4}), tmp_path, progress=False, splits=splits)
    assert result.test_error < 0.05  # the toy classes are easy; chance is 0.9
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < losses[0]
    saved = load_model(result.model_dir)
    assert saved.info["info"]["test_error_pct"] == pytest.approx(100 * result.test_error)
    logits = saved.module.apply({"params": saved.params}, splits.test.images[:3])
    assert logits.shape == (3, 10)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_options"]["hidden"] == [32, 16]


def test_early_stopping(tmp_path: Path, splits: Splits, tiny: dict[str, Any]) -> None:
    # A learning rate of ~0 never improves on the first epoch's validation error.
    config = make_config({**tiny, "learning_rate": 1e-12, "epochs": 20, "early_stop_patience": 2})
    result = fit(config, tmp_path, progress=False, splits=splits)
    assert result.epochs <= 3


def test_a_run_that_stopped_early_stays_stopped_when_resumed(
    tmp_path: Path, splits: Splits, tiny: dict[str, Any]
) -> None:
    config = make_config({**tiny, "learning_rate": 1e-12, "epochs": 20, "early_stop_patience": 2})
    first = fit(config, tmp_path, progress=False, splits=splits)
    assert first.epochs < 20
    again = fit(config, tmp_path, resume=True, progress=False, splits=splits)
    assert again.epochs == first.epochs
    history = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(history) == first.epochs


def test_existing_run_is_not_overwritten(
    tmp_path: Path, splits: Splits, tiny: dict[str, Any]
) -> None:
    fit(make_config({**tiny, "epochs": 1}), tmp_path, progress=False, splits=splits)
    with pytest.raises(CheckpointError, match="Pass --resume"):
        fit(make_config({**tiny, "epochs": 1}), tmp_path, progress=False, splits=splits)
    with pytest.raises(CheckpointError, match=r"config changed \(learning_rate: 0.05 -> 0.1\)"):
        changed = make_config({**tiny, "epochs": 2, "learning_rate": 0.1})
        fit(changed, tmp_path, resume=True, progress=False, splits=splits)


def test_a_staged_run_resumes_after_its_folder_moved(tmp_path: Path, tiny: dict[str, Any]) -> None:
    # a later stage records the earlier stage's model as an absolute path: a run folder copied
    # or moved elsewhere still resumes; another model does not
    from pretrain.train.loop import _check_resumable

    old = make_config({**tiny, "init_from": "/old/place/face5/contrastive/model"})
    moved = make_config({**tiny, "init_from": str(tmp_path / "face5" / "contrastive" / "model")})
    _check_resumable(old.to_dict(), moved, tmp_path / "face5" / "metric")
    other = make_config({**tiny, "init_from": str(tmp_path / "face5" / "other" / "model")})
    with pytest.raises(CheckpointError, match="init_from"):
        _check_resumable(old.to_dict(), other, tmp_path / "face5" / "metric")
    elsewhere = make_config({**tiny, "init_from": "/elsewhere/contrastive/model"})
    with pytest.raises(CheckpointError, match="init_from"):
        _check_resumable(old.to_dict(), elsewhere, tmp_path / "face5" / "metric")


def test_jitted_step_compiles_once(splits: Splits, tiny: dict[str, Any]) -> None:
    from pretrain.train import Trainer

    trainer = Trainer(make_config({**tiny, "epochs": 1}), splits.train.images)
    state = trainer.init_state(jax.random.key(0))
    for epoch in range(2):
        state, _ = trainer.train_epoch(
            state, splits.train, key=jax.random.key(1), epoch=epoch, progress=False
        )
    assert trainer._train_step._cache_size() == 1


def test_optax_sgd_reference_agrees(splits: Splits, tiny: dict[str, Any]) -> None:
    """Our step equals a hand-written optax step on the same batch."""
    from pretrain.train import Trainer, global_batch, train_step_fn

    config = make_config({**tiny, "epochs": 1})
    trainer = Trainer(config, splits.train.images)
    state = trainer.init_state(jax.random.key(0))
    x, y = splits.train.images[:32], splits.train.labels[:32]
    ref_tx = optax.chain(
        optax.add_decayed_weights(
            config.weight_decay, mask=lambda p: jax.tree.map(lambda a: a.ndim > 1, p)
        ),
        optax.sgd(config.learning_rate, momentum=config.momentum),
    )

    def ref_loss(p):
        logits = trainer.module.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    grads = jax.grad(ref_loss)(state.params)
    updates, _ = ref_tx.update(grads, ref_tx.init(state.params), state.params)
    expected = optax.apply_updates(state.params, updates)
    ours, _ = jax.jit(train_step_fn(trainer.module.apply, trainer.tx))(
        state, global_batch(x, trainer._bat), global_batch(y, trainer._bat)
    )
    for a, b in zip(jax.tree.leaves(ours.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("error", [0.07, 0.0175, 1 / 3, 0.9, 0.5])
def test_a_tie_is_no_improvement_whichever_way_float32_rounds(error: float) -> None:
    from pretrain.train.loop import improved

    best = jnp.asarray(error, jnp.float32)  # how the run state keeps the best
    assert float(best) != error or error == 0.5  # float32 rounds these up or down (0.5 exact)
    assert not improved(error, best)
    assert improved(float(np.nextafter(np.float32(error), np.float32(0))), best)
    assert not improved(float("nan"), best)
    assert improved(error, jnp.asarray(jnp.inf, jnp.float32))


def test_a_built_task_replaces_the_configs(
    tmp_path: Path, splits: Splits, tiny: dict[str, Any]
) -> None:
    # Pure distillation towards a teacher that always says class 0: the model learns that, not
    # the labels (with the config's own task the toy classes are learnt: the test above).
    def teacher(images: jax.Array) -> jax.Array:
        return jnp.zeros((images.shape[0], 10)).at[:, 0].set(10.0)

    task = pc.Distillation(teacher=teacher, weight=1.0, temperature=1.0)
    config = make_config({**tiny, "epochs": 2})
    result = fit(config, tmp_path, progress=False, splits=splits, task=task)
    saved = load_model(result.model_dir)
    logits = saved.module.apply({"params": saved.params}, splits.test.images)
    assert np.mean(np.argmax(logits, -1) == 0) > 0.95
