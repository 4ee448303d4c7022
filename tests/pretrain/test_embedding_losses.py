"""Margin softmax (CosFace, ArcFace) and NT-Xent against values worked out by hand."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from pretrain.embedding import cosine_logits, margin_logits, margin_softmax_loss, nt_xent


def test_cosine_logits_normalise_both_sides() -> None:
    e = jnp.array([[3.0, 4.0]])
    w = jnp.array([[2.0, 0.0], [0.0, 5.0]])  # columns are the classes
    np.testing.assert_allclose(cosine_logits(e, w), [[0.6, 0.8]], rtol=1e-6)


def test_cosface_by_hand() -> None:
    # cos = (0.8, 0.6), target 0, s = 10, m = 0.2: logits (6, 6), loss log 2.
    cos = jnp.array([[0.8, 0.6]])
    labels = jnp.array([0])
    np.testing.assert_allclose(
        margin_logits(cos, labels, scale=10.0, margin=0.2), [[6.0, 6.0]], rtol=1e-6
    )
    loss = margin_softmax_loss(cos, labels, scale=10.0, margin=0.2)
    np.testing.assert_allclose(loss, [math.log(2.0)], rtol=1e-6)


def test_arcface_by_hand() -> None:
    # cos(theta + m) = cos cos(m) - sin sin(m) with cos = 0.8, sin = 0.6, m = 0.5.
    cos = jnp.array([[0.8, 0.6]])
    target = 0.8 * math.cos(0.5) - 0.6 * math.sin(0.5)
    logits = margin_logits(cos, jnp.array([0]), scale=2.0, margin=0.5, kind="arcface")
    np.testing.assert_allclose(logits, [[2 * target, 1.2]], rtol=1e-6)
    expected = -math.log(math.exp(2 * target) / (math.exp(2 * target) + math.exp(1.2)))
    loss = margin_softmax_loss(cos, jnp.array([0]), scale=2.0, margin=0.5, kind="arcface")
    np.testing.assert_allclose(loss, [expected], rtol=1e-6)
    # Past theta + m = pi the penalty stays monotone: cos - m sin(m).
    far = margin_logits(
        jnp.array([[-0.95, 0.0]]), jnp.array([0]), scale=1.0, margin=0.5, kind="arcface"
    )
    np.testing.assert_allclose(far[0, 0], -0.95 - 0.5 * math.sin(0.5), rtol=1e-6)


def test_margin_only_touches_the_target_class() -> None:
    cos = jnp.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    logits = margin_logits(cos, jnp.array([2, 0]), scale=4.0, margin=0.35)
    np.testing.assert_allclose(logits, 4.0 * (cos - 0.35 * np.eye(3)[[2, 0]]), rtol=1e-6)
    with pytest.raises(ValueError, match="margin kind"):
        margin_logits(cos, jnp.array([2, 0]), scale=4.0, margin=0.35, kind="sphereface")


def test_nt_xent_by_hand() -> None:
    # Two examples whose views coincide: each vector sees its positive at cosine 1 and two
    # negatives at cosine 0: loss = -log(e / (e + 2)) at temperature 1.
    z = jnp.eye(2)
    loss, correct = nt_xent(z, z, temperature=1.0)
    np.testing.assert_allclose(loss, np.full(4, -math.log(math.e / (math.e + 2))), rtol=1e-5)
    assert bool(jnp.all(correct))
    # At temperature 0.5 the similarities double.
    loss, _ = nt_xent(z, z, temperature=0.5)
    np.testing.assert_allclose(loss, np.full(4, -math.log(math.e**2 / (math.e**2 + 2))), rtol=1e-5)


def test_nt_xent_positive_is_the_other_view() -> None:
    # Views swapped between the two examples: every vector's best match is a negative.
    z1 = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    z2 = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    _, correct = nt_xent(z1, z2, temperature=0.1)
    assert not bool(jnp.any(correct))


def test_nt_xent_leaves_copies_out_of_the_negatives() -> None:
    # Examples 0 and 1 are copies of one image: with that known, example 0's only other vector
    # that is not excluded is its positive, so its loss is 0.
    z1 = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    dup = jnp.array([[False, True, False], [True, False, False], [False, False, False]])
    loss, _ = nt_xent(z1, z1, temperature=1.0, duplicates=dup)
    # Row 0 still has example 2's two views as negatives: -log(e / (e + 2 e^0.6)).
    expected = -math.log(math.e / (math.e + 2 * math.exp(0.6)))
    np.testing.assert_allclose(loss[0], expected, rtol=1e-6)
    without, _ = nt_xent(z1, z1, temperature=1.0)
    assert float(without[0]) > float(loss[0])
