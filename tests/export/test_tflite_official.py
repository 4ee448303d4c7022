"""Baseline (b), the official TFLite on-device training recipe: converts, trains, says what fails."""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from export.artifact.convert import op_names
from export.baselines import (
    FlexUnavailable,
    OfficialModel,
    build_official,
    one_hot,
    time_official_enrollments,
)
from pretrain import build_model

CLASSES = 4


class TinyBackbone:
    """A small untrained EmbedNet standing in for a trained backbone (same ops, fewer channels)."""

    input_shape = (32, 32, 1)
    embedding_dim = 16

    def __init__(self) -> None:
        self.module = build_model(
            "embednet",
            stem_width=8,
            widths=(8, 16),
            strides=(2, 2),
            embedding_dim=16,
            feature_norm=True,
        )
        self.params = self.module.init(jax.random.key(0), jnp.zeros((1, *self.input_shape)))[
            "params"
        ]

    def embed(self) -> Any:
        return lambda x: self.module.apply({"params": self.params}, x)


@pytest.fixture(scope="module")
def official() -> dict[str, Any]:
    backbone = TinyBackbone()
    blob = build_official(backbone, CLASSES, learning_rate=4.0)
    rng = np.random.default_rng(0)
    templates = rng.random((CLASSES, *backbone.input_shape), dtype=np.float32)
    labels = np.arange(32) % CLASSES
    images = templates[labels] + 0.1 * rng.standard_normal((32, *backbone.input_shape)).astype(
        np.float32
    )
    return {"blob": blob, "backbone": backbone, "images": images, "labels": labels}


def test_guide_signatures_and_ops(official) -> None:
    model = OfficialModel(official["blob"])
    assert set(model.interpreter.get_signature_list()) == {
        "load",
        "train",
        "infer",
        "save",
        "restore",
    }
    ops = op_names(official["blob"])
    # save / restore are the guide's tf.raw_ops.Save / Restore: Select TF ops.
    assert {"CUSTOM:FlexSave", "CUSTOM:FlexRestore"} <= set(ops)
    assert {"VAR_HANDLE", "ASSIGN_VARIABLE", "READ_VARIABLE"} <= set(ops)
    assert model.classes == CLASSES


def test_load_is_the_float32_backbone(official) -> None:
    model = OfficialModel(official["blob"])
    x = official["images"][:8]
    ref = np.asarray(official["backbone"].embed()(x))
    np.testing.assert_allclose(model.load(x), ref, rtol=1e-4, atol=1e-5)


def test_train_lowers_the_loss_and_learns(official) -> None:
    model = OfficialModel(official["blob"])
    x, y = official["images"], official["labels"]
    before = model.infer(x)
    losses = model.train(model.load(x), y, epochs=40, batch=16)
    assert losses[-1] < 0.85 * losses[0], losses
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    after = model.infer(x)
    assert not np.allclose(before, after)
    assert np.mean(np.argmax(after, 1) == y) > np.mean(np.argmax(before, 1) == y)
    np.testing.assert_allclose(after.sum(1), 1.0, rtol=1e-5)


def test_save_needs_flex_that_the_pip_interpreter_lacks(official, tmp_path) -> None:
    model = OfficialModel(official["blob"])
    with pytest.raises(FlexUnavailable, match="Select TF ops"):
        model.save(tmp_path / "head.ckpt")


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_official(TinyBackbone(), 1)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.3"):
        one_hot(np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="not an official-recipe model"):
        OfficialModel(_builtin_only_model())


def _builtin_only_model() -> bytes:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def f(x):
        return {"y": x * 2.0}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()])
    return bytes(converter.convert())


def test_enroll_loads_the_person_and_trains_over_the_gallery(official) -> None:
    model = OfficialModel(official["blob"])
    x, y = official["images"], official["labels"]
    person, others = x[y == 3][:5], y != 3
    gallery = model.load(x[others])
    before = model.infer(person)[:, 3]
    out = model.enroll(person, 3, gallery, y[others], epochs=40, batch=16)
    assert set(out) == {"enroll", "load", "train"} and min(out.values()) > 0
    np.testing.assert_allclose(out["enroll"], out["load"] + out["train"], rtol=1e-9)
    # the new person's captures were appended under their label and learned
    assert np.mean(model.infer(person)[:, 3]) > np.mean(before) + 0.1


def test_time_official_enrollments_one_per_class(official) -> None:
    model = OfficialModel(official["blob"])
    x, y = official["images"], official["labels"]
    people = np.stack([x[y == c][:5] for c in range(CLASSES)])
    out = time_official_enrollments(model, people, epochs=2, batch=16)
    assert set(out) == {"enroll", "load", "train"} and min(out.values()) > 0
    with pytest.raises(ValueError, match="4 classes for 3 people"):
        time_official_enrollments(model, people[:3], epochs=1)
