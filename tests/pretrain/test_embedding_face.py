"""Face pretraining options: the preprocessing a config chooses, the joint margin + NT-Xent loss."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from devices.preprocess import FACE_SPEC
from pretrain.config import ConfigError, make_config
from pretrain.embedding import face_spec, face_suite, orl_subjects
from pretrain.embedding import suites as suites_module
from pretrain.models import build_model
from pretrain.train import build_task, load_splits

TINY = {"stem_width": 8, "widths": (16, 32), "strides": (2, 2), "embedding_dim": 16}
# Intensity only: the views differ, and the loss compiles in seconds (no resampling).
AUG = {"noise": 0.2, "erase": 0.3}


def test_face_spec_replaces_only_what_is_given() -> None:
    assert face_spec() == FACE_SPEC
    full = face_spec((78, 64), "none")
    assert full.input_size == (78, 64) and full.crop == "none"
    assert full.resize == FACE_SPEC.resize and full.normalise == FACE_SPEC.normalise
    assert face_spec([40, 32]).crop == FACE_SPEC.crop
    with pytest.raises(ConfigError, match="crop must be one of"):
        face_spec(crop="chin")


@pytest.mark.data
def test_orl_subjects_in_the_chosen_preprocessing(orl_root: Path) -> None:
    square = orl_subjects(range(1, 3), str(orl_root))
    full = orl_subjects(range(1, 3), str(orl_root), (78, 64), "none")
    assert square.images.shape == (20, 64, 64, 1) and full.images.shape == (20, 78, 64, 1)
    np.testing.assert_array_equal(square.labels, full.labels)
    # The whole 92x112 face, not its centre square: the rows differ from a stretched square.
    assert np.abs(full.images[:, :8].mean() - square.images[:, :8].mean()) > 0.01


@pytest.mark.data
def test_face_suite_preprocesses_as_the_training_stage(orl_root: Path, monkeypatch) -> None:
    config = make_config(
        {
            "model": "embednet",
            "model_options": TINY,
            "dataset": "orl_faces",
            "dataset_options": {"input_size": (40, 32), "crop": "none"},
        }
    )
    module = build_model("embednet", **TINY)
    params = module.init(jax.random.key(0), jnp.zeros((1, 40, 32, 1)))["params"]
    seen = []
    real_embed = suites_module.embed

    def spy(module, params, images, **kw):
        seen.append(images.shape)
        return real_embed(module, params, images, **kw)

    monkeypatch.setattr(suites_module, "embed", spy)
    report = face_suite(module, params, config=config, subjects=(21, 23), root=str(orl_root))
    assert seen == [(30, 40, 32, 1)] and report["samples"] == 30


def _batch() -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(0)
    faces = rng.standard_normal((4, 16, 16))
    labels = np.repeat(np.arange(4, dtype=np.int32), 2)
    x = faces[labels] + 0.3 * rng.standard_normal((8, 16, 16))
    return jnp.asarray(x[..., None], jnp.float32), jnp.asarray(labels)


def test_joint_loss_adds_the_weighted_nt_xent() -> None:
    module = build_model("embednet", **TINY)
    x, y = _batch()
    options = {"augment": AUG, "scale": 16.0, "margin": 0.2}
    assert "projection" not in build_task("margin_softmax", options).init(
        module, jax.random.key(0), x[:1], num_classes=4
    )
    once = build_task("margin_softmax", {**options, "contrastive_weight": 1.0})
    twice = build_task("margin_softmax", {**options, "contrastive_weight": 2.0})
    params = once.init(module, jax.random.key(0), x[:1], num_classes=4)
    assert set(params) == {"model", "classifier", "projection"}
    step = jnp.asarray(5)

    @jax.jit
    def both(p):  # one compilation for both weights
        grad_fn = jax.value_and_grad(lambda q: once.loss(module.apply, q, x, y, step), has_aux=True)
        (l1, aux), grads = grad_fn(p)
        return l1, twice.loss(module.apply, p, x, y, step)[0], grads, aux["errors"]

    l1, l2, grads, errors = both(params)
    assert 0 <= int(errors) <= 8
    # Same parameters and views for both weights: the loss is affine in the weight, with the
    # NT-Xent of the 16 views as the slope (about log 14 from a random start: 14 candidates).
    assert float(l2 - l1) > 1.0
    # Only the NT-Xent term reaches the projection head: it trains.
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads["projection"])) > 0


def test_joint_loss_options_are_checked() -> None:
    with pytest.raises(ValueError, match="contrastive_weight must be >= 0"):
        build_task("margin_softmax", {"augment": AUG, "contrastive_weight": -1.0})
    with pytest.raises(ValueError, match="contrastive_weight needs augment options"):
        build_task("margin_softmax", {"contrastive_weight": 0.5})


def test_face_data_options_reach_the_loader() -> None:
    config = make_config({"dataset": "orl_faces", "dataset_options": {"crop": "oval"}})
    with pytest.raises(ConfigError, match="crop must be one of"):
        load_splits(config)
