"""Distillation during retraining: the soft term is Hinton's, the mix is exact, retraining uses it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain.compression as pc
from pretrain.config import make_config
from pretrain.models import build_model
from pretrain.train import Splits, Trainer
from pretrain.train.steps import init_state
from pretrain.train.tasks import Classification


@pytest.fixture(scope="module")
def tiny(tiny_lenet: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return tiny_lenet(weight_decay=0.0)


def numpy_soft(logits: np.ndarray, teacher: np.ndarray, t: float) -> np.ndarray:
    """T^2 KL(softmax(teacher / T) || softmax(logits / T)) in float64."""

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z / t - np.max(z / t, axis=-1, keepdims=True)
        return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))

    lp, lq = log_softmax(teacher.astype(np.float64)), log_softmax(logits.astype(np.float64))
    return t**2 * np.sum(np.exp(lp) * (lp - lq), axis=-1)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_soft_term_is_the_scaled_kl_and_its_gradient(temperature) -> None:
    rng = np.random.default_rng(0)
    student = rng.normal(size=(6, 10)).astype(np.float32) * 3
    teacher = rng.normal(size=(6, 10)).astype(np.float32) * 3
    got = np.asarray(pc.soft_cross_entropy(jnp.asarray(student), jnp.asarray(teacher), temperature))
    np.testing.assert_allclose(got, numpy_soft(student, teacher, temperature), rtol=1e-5, atol=1e-6)
    assert (got > 0).all()
    # d/dz of T^2 KL = T (softmax(z / T) - softmax(teacher / T)) per example
    grad = jax.grad(lambda z: pc.soft_cross_entropy(z, jnp.asarray(teacher), temperature).sum())(
        jnp.asarray(student)
    )
    expected = temperature * (
        jax.nn.softmax(student / temperature) - jax.nn.softmax(teacher / temperature)
    )
    np.testing.assert_allclose(np.asarray(grad), np.asarray(expected), rtol=1e-5, atol=1e-6)
    # a perfect match (up to a constant per example) costs nothing
    same = pc.soft_cross_entropy(jnp.asarray(teacher + 2.0), jnp.asarray(teacher), temperature)
    np.testing.assert_allclose(np.asarray(same), 0.0, atol=1e-5)


def test_distillation_mixes_hard_and_soft_losses() -> None:
    module = build_model("lenet300", hidden=(32, 16))
    x = np.random.default_rng(0).normal(size=(8, 28, 28, 1)).astype(np.float32)
    labels = np.arange(8) % 10
    init = jax.jit(lambda seed: module.init(jax.random.key(seed), x)["params"])
    params, other = init(1), init(2)
    teacher = pc.distillation_teacher(module, other)
    weights = (0.0, 0.3, 1.0)

    @jax.jit
    def losses(p: Any) -> Any:
        hard, _ = Classification().loss(module.apply, p, x, labels, 0)
        logits: Any = module.apply({"params": p}, x)
        soft = pc.soft_cross_entropy(logits, teacher(jnp.asarray(x)), 4.0).mean()
        mixed = [
            pc.Distillation(teacher, weight=w, temperature=4.0).loss(module.apply, p, x, labels, 0)
            for w in weights
        ]
        return hard, soft, mixed

    hard, soft, mixed = losses(params)
    assert float(soft) > 0
    for weight, (loss, metrics) in zip(weights, mixed, strict=True):
        np.testing.assert_allclose(float(loss), (1 - weight) * hard + weight * soft, rtol=1e-5)
        assert float(metrics["soft_loss"]) == pytest.approx(float(soft), rel=1e-5)
    with pytest.raises(ValueError, match="weight must be in"):
        pc.Distillation(teacher, weight=1.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        pc.Distillation(teacher, temperature=0.0)


def test_recipe_refuses_bad_distillation_settings() -> None:
    base = pc.recipe("lenet300")
    with pytest.raises(ValueError, match="distill must be in"):
        dataclasses.replace(base, distill=-0.1)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        dataclasses.replace(base, temperature=0.0)


@pytest.fixture(scope="module")
def toy(make_toy, tiny: dict[str, Any]):
    config = make_config(tiny)
    splits = Splits(make_toy(320, seed=0), make_toy(100, seed=1), make_toy(100, seed=2))
    trainer = Trainer(config, splits.train.images)
    params = jax.device_get(trainer.init_state(jax.random.key(0)).params)
    return config, splits, params, pc.distillation_teacher(trainer.module, params)


def test_an_epoch_towards_itself_alone_leaves_the_model_where_it_is(toy) -> None:
    """Weight 1, the model its own teacher, no decay: the gradient is 0 and nothing moves; the
    same epoch on the labels moves the weights (so the task really reaches the step)."""
    config, splits, params, teacher = toy
    keep = pc.magnitude_pruning(0.0)  # every weight kept: the projection is the identity

    def moved(task: pc.Distillation | None) -> float:
        trainer = pc.CompressedTrainer(
            config, splits.train.images, keep, keep.init(params), task=task
        )
        train = trainer.replicate(init_state(jax.tree.map(jnp.copy, params), trainer.tx))
        train, _ = trainer.train_epoch(
            train, splits.train, key=jax.random.key(3), epoch=0, progress=False
        )
        pairs = zip(jax.tree.leaves(train.params), jax.tree.leaves(params), strict=True)
        return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs)

    # float32 rounding between two compilations of one forward pass moves far less than 1e-5
    assert moved(pc.Distillation(teacher, weight=1.0, temperature=4.0)) < 1e-5
    assert moved(None) > 1e-3


def test_retrain_and_pruning_rounds_train_with_the_given_task(toy) -> None:
    config, splits, params, teacher = toy
    task = pc.Distillation(teacher, weight=1.0, temperature=4.0)
    keep = pc.magnitude_pruning(0.0)
    kw: dict[str, Any] = {"epochs": 1, "key": jax.random.key(3), "progress": False}
    itself = pc.retrain(keep, keep.init(params), params, config, splits, task=task, **kw)
    labels = pc.retrain(keep, keep.init(params), params, config, splits, **kw)
    assert itself.history[1]["train_loss"] < 1e-6 < 0.5 < labels.history[1]["train_loss"]
    *_, history = pc.iterative_pruning(
        pc.magnitude_pruning, pc.constant(0.0), 1, params, config, splits, task=task, **kw
    )
    assert history[0]["epochs"][0]["train_loss"] < 1e-6
