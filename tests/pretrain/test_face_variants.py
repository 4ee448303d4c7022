"""Test-time variants of a face backbone: whitening, AS-norm, pooled features, flip averaging."""

from __future__ import annotations

import jax
import numpy as np

from pretrain.data import ArrayDataset
from pretrain.embedding import VARIANTS, score_variants
from pretrain.embedding.face_variants import as_norm_pairs, fit_whitener, pooled_features
from pretrain.models import build_model

TINY = {"stem_width": 8, "widths": (16, 24), "strides": (2, 2), "embedding_dim": 16}


def test_whitener_makes_its_fit_set_white() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 8)) * np.array([5, 3, 2, 1, 1, 0.5, 0.3, 0.2]) + 1.0
    white = fit_whitener(x, ridge=0.0)(x / np.linalg.norm(x, axis=1, keepdims=True))
    np.testing.assert_allclose(white.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.cov(white.T), np.eye(8), atol=1e-6)


def test_as_norm_is_the_symmetric_cohort_normalised_cosine() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5))
    cohort = rng.standard_normal((30, 5))
    labels = np.array([0, 0, 1, 1, 2, 2])
    genuine, impostor = as_norm_pairs(x, labels, cohort, top=10)
    assert genuine.size == 3 and impostor.size == 12
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = cohort / np.linalg.norm(cohort, axis=1, keepdims=True)
    near = [np.sort(c @ v)[-10:] for v in u[:2]]
    s = u[0] @ u[1]
    want = 0.5 * sum((s - n.mean()) / n.std() for n in near)
    np.testing.assert_allclose(genuine[0], want, rtol=1e-12)


def test_every_variant_scores_every_set() -> None:
    model = build_model("embednet", **TINY, feature_norm=True)
    rng = np.random.default_rng(2)
    images = rng.random((36, 32, 32, 1), dtype=np.float32)
    params = model.init(jax.random.key(0), images[:1])["params"]
    labels = np.repeat(np.arange(6, dtype=np.int32), 6)
    people = ArrayDataset(images, labels, "people")
    pooled = pooled_features(model, params, images)
    assert pooled.shape == (36, 24)
    np.testing.assert_allclose(pooled.mean(axis=1), 0.0, atol=1e-5)
    out = score_variants(
        model,
        params,
        {"a": people},
        background=people,
        train=people,
        splits=2,
        progress=lambda _: None,
    )
    assert list(out) == list(VARIANTS)
    for variant in VARIANTS:
        assert 0.0 <= out[variant]["a"]["eer_pct"] <= 100.0
    # The flip-averaged model is a different function of the same parameters.
    assert out["embedding_flip"]["a"]["eer_pct"] != out["embedding"]["a"]["eer_pct"]
