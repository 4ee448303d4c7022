"""Whitening folded into the embedding layer: the same function as whitening the embeddings."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from devices.preprocess import FACE_SPEC
from export.artifact.split import Backbone, split_backbone
from export.artifact.whiten import WhiteningError, can_whiten, fold_whitening, whitener

TINY = {"stem_width": 8, "widths": (16, 24), "strides": (2, 2), "embedding_dim": 16}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_whitener_equalises_the_second_moments() -> None:
    rng = np.random.default_rng(0)
    # Unit rows in a narrow cone: one shared direction, the rest small and unequal.
    e = _unit(
        np.concatenate(
            [np.full((500, 1), 4.0), rng.normal(size=(500, 7)) * np.linspace(0.1, 1.0, 7)], axis=1
        )
    )
    z = _unit(e) @ whitener(e, eps=1e-9)
    np.testing.assert_allclose(z.T @ z / len(z), np.eye(8), atol=1e-5)
    assert np.linalg.norm(_unit(z).mean(axis=0)) < 0.5 < np.linalg.norm(e.mean(axis=0))
    # eps damps the weakest directions instead of dividing by their noise
    damped = _unit(e) @ whitener(e, eps=1e-2)
    assert np.linalg.eigvalsh(damped.T @ damped / len(z)).min() < 0.9


def test_folding_computes_the_whitened_embedding(tmp_path, save_embednet) -> None:
    saved = save_embednet(
        tmp_path / "m",
        {**TINY, "feature_norm": True},
        info={"preprocess": FACE_SPEC.to_dict()},
        seed=3,
    )
    backbone = split_backbone(saved)
    rng = np.random.default_rng(1)
    layer = {**backbone.last_params["embed"], "bias": rng.normal(size=16).astype(np.float32)}
    backbone = backbone._replace(last_params={**backbone.last_params, "embed": layer})
    fit, probe = (jnp.asarray(rng.uniform(size=(n, 64, 64, 1)), jnp.float32) for n in (40, 12))
    w = whitener(np.asarray(backbone.embed()(fit)))
    folded = fold_whitening(backbone, w)
    want = _unit(np.asarray(backbone.embed()(probe), np.float64) @ w)
    np.testing.assert_allclose(np.asarray(folded.embed()(probe)), want, atol=2e-5)
    assert folded.front_params is backbone.front_params
    for name, group in backbone.last_params.items():
        if name != "embed":
            assert folded.last_params[name] is group


def test_only_a_normalised_embed_layer_folds(tmp_path, save_embednet) -> None:
    saved = save_embednet(
        tmp_path / "m", {**TINY, "normalize": False}, info={"preprocess": FACE_SPEC.to_dict()}
    )
    raw = split_backbone(saved)
    lenet = Backbone("lenet300", {}, {}, {"fc2": {"kernel": np.zeros((4, 4))}}, FACE_SPEC, (), 4)
    for backbone in (raw, lenet):
        assert not can_whiten(backbone)
        with pytest.raises(WhiteningError, match="L2-normalised Dense 'embed'"):
            fold_whitening(backbone, np.eye(16))
    normal = raw._replace(options={**raw.options, "normalize": True})
    with pytest.raises(WhiteningError, match=r"shape \(8, 8\) for a 16-d"):
        fold_whitening(normal, np.eye(8))


@pytest.mark.parametrize(
    ("rows", "eps", "message"),
    [
        (np.ones((1, 4)), 1e-3, ">= 2 finite"),
        (np.full((3, 4), np.nan), 1e-3, ">= 2 finite"),
        (np.ones((3, 4)), 0.0, "eps must be"),
    ],
)
def test_whitener_refuses_bad_input(rows: np.ndarray, eps: float, message: str) -> None:
    with pytest.raises(WhiteningError, match=message):
        whitener(rows, eps)
