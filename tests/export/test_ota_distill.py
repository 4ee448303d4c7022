"""The OTA recipe's distillation term and the dev search's choice rule and record."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain
import pretrain.compression as pc
from export.artifact import ota_search
from export.artifact.ota import OtaRecipe
from pretrain.train import build_task

TINY = {"stem_width": 8, "widths": (16,), "strides": (2,), "embedding_dim": 8}


@pytest.fixture(scope="module")
def setup():
    module = pretrain.build_model("embednet", **TINY)
    x = jax.random.normal(jax.random.key(0), (6, 32, 32, 1))
    params = module.init(jax.random.key(1), x)["params"]
    task = build_task("margin_softmax", {"kind": "cosface", "scale": 16.0, "margin": 0.2})
    classifier = jax.random.normal(jax.random.key(2), (8, 3))
    full = {"model": params, "classifier": {"kernel": classifier}}
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    return module, params, task, full, x, labels


def test_distillation_adds_nothing_when_the_model_is_its_teacher(setup) -> None:
    module, params, task, full, x, labels = setup
    base, _ = task.loss(module.apply, full, x, labels, 0)
    same = pc.EmbeddingDistillation(task, lambda z: module.apply({"params": params}, z), 10.0)
    loss, metrics = same.loss(module.apply, full, x, labels, 0)
    # cosines of a vector with itself: 1 within float32 rounding
    assert float(metrics["distill"]) == pytest.approx(0.0, abs=1e-5)
    assert float(loss) == pytest.approx(float(base), abs=1e-4)


def test_distillation_pulls_towards_the_teacher(setup) -> None:
    module, params, task, full, x, labels = setup
    other = module.init(jax.random.key(9), x)["params"]
    base, _ = task.loss(module.apply, full, x, labels, 0)
    distilled = pc.EmbeddingDistillation(task, lambda z: module.apply({"params": other}, z), 10.0)
    loss, metrics = distilled.loss(module.apply, full, x, labels, 0)
    distance = float(metrics["distill"])
    assert 0.0 < distance <= 2.0
    assert float(loss) == pytest.approx(float(base) + 10.0 * distance, rel=1e-5)

    # the gradient reaches the model only, never the teacher's constant parameters
    def total(p):  # type: ignore[no-untyped-def]
        return distilled.loss(module.apply, {**full, "model": p}, x, labels, 0)[0]

    grads = jax.grad(total)(params)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))
    assert distilled.scale == task.scale  # everything but the loss is the base task's


def test_recipe_refuses_a_negative_distillation_weight() -> None:
    with pytest.raises(ValueError, match="distill must be >= 0"):
        OtaRecipe(distill=-1.0)


def test_dev_search_keeps_the_best_delta_within_the_download_budget() -> None:
    scores = {
        "a": {"five_shot_delta_pts": -3.0, "eer_delta_pts": 1.0, "download_bytes": 120_000},
        "b": {"five_shot_delta_pts": -1.0, "eer_delta_pts": 0.4, "download_bytes": 150_000},
        "c": {"five_shot_delta_pts": -2.0, "eer_delta_pts": 0.2, "download_bytes": 140_000},
        "d": {"five_shot_delta_pts": -2.0, "eer_delta_pts": 0.1, "download_bytes": 139_000},
    }
    assert ota_search.choose(scores, 144_000) == "d"  # b is too big; c and d tie, d's EER
    with pytest.raises(ValueError, match="no candidate's download is within 100000 bytes"):
        ota_search.choose(scores, 100_000)
    assert np.isclose(ota_search.MIN_DOWNLOAD_RATIO, 10.0)


def _fake_prints(calls: list):  # type: ignore[no-untyped-def]
    """A stand-in for ``synthetic_prints``: random 128x128 prints, one seed per identity range."""

    def fake(
        identities, impressions, *, seed, cache="", progress=True, spec=None, min_stored=8, **kw
    ):
        calls.append((identities, impressions))
        n = len(identities) * impressions
        rng = np.random.default_rng(identities.start)
        images = rng.normal(size=(n, 128, 128, 1)).astype(np.float32)
        labels = np.repeat(np.arange(len(identities), dtype=np.int32), impressions)
        return pretrain.data.ArrayDataset(images, labels, "fake")

    return fake


def _saved_prints(tmp_path, save_embednet):  # type: ignore[no-untyped-def]
    options = {"identities": 50, "val_identities": 6, "test_identities": 4, "seed": 0}
    stage = {"dataset": "synthetic_fingerprints", "dataset_options": options}
    info = {"staged_config": {"stages": {"s": stage}}}
    tiny = {**TINY, "widths": (16, 16), "strides": (2, 2), "feature_norm": True}
    return save_embednet(tmp_path / "m", tiny, info=info), options


def test_print_dev_people_are_the_validation_identities(
    tmp_path, save_embednet, monkeypatch
) -> None:
    import pretrain.embedding.data as data

    calls: list = []
    monkeypatch.setattr(data, "synthetic_prints", _fake_prints(calls))
    saved, _ = _saved_prints(tmp_path, save_embednet)
    images, labels, order = ota_search.dev_people(saved)
    # validation first (0-5), never the test identities (6-9) the protocol reports on
    assert calls == [(range(0, 6), 8)]
    assert images.shape == (48, 128, 128, 1) and sorted(set(labels.tolist())) == list(range(6))
    assert len(order) == 48
    with pytest.raises(ValueError, match="LFW-trained face and synthetic-print"):
        ota_search.dev_people(
            pretrain.train.artifacts.SavedModel(
                None, {}, {"model": "embednet", "info": {"config": {"dataset": "mnist"}}}
            )
        )


def test_whitening_scores_compare_the_unwhitened_backbone_on_dev_people(
    tmp_path, save_embednet, monkeypatch
) -> None:
    import pretrain.embedding
    import pretrain.embedding.data as data

    calls: list = []
    monkeypatch.setattr(data, "synthetic_prints", _fake_prints(calls))
    monkeypatch.setattr(pretrain.embedding, "synthetic_prints", _fake_prints(calls))
    _, options = _saved_prints(tmp_path, save_embednet)
    out = ota_search.whitening_scores(tmp_path / "m", (1e-3, 1e-1), background=20)
    assert set(out) == {"none", "eps 0.001", "eps 0.1", "fit_on"}
    for name in ("none", "eps 0.001", "eps 0.1"):
        assert 0.0 <= out[name]["five_shot_pct"] <= 100.0 and 0.0 <= out[name]["eer_pct"] <= 100.0
    # the whitener changes the scores: the variants are not the unwhitened figures again
    assert out["eps 0.001"] != out["none"]
    # fitted on fresh people after every identity the run trained, validated or tested on
    fresh = 6 + 4 + options["identities"]
    assert f"synthetic identities {fresh + 10}-" in out["fit_on"]


def test_dev_search_merge_keeps_earlier_candidates_and_notes() -> None:
    def score(delta: float, size: int) -> dict[str, float]:
        return {"five_shot_delta_pts": delta, "eer_delta_pts": 1.0, "download_bytes": size}

    old = {
        "candidates": {"a": score(-4.0, 130_000), "b": score(-6.0, 120_000)},
        "chosen": "a",
        "note": "how a and b got here",
    }
    merged = ota_search.merge_search(old, {"c": score(-3.0, 140_000)}, 144_000)
    assert sorted(merged["candidates"]) == ["a", "b", "c"]
    assert merged["chosen"] == "c"
    assert merged["note"] == "how a and b got here"
    assert merged["max_download_bytes"] == pytest.approx(144_000)
    # a rerun replaces its own entry only; over budget, the choice falls back to the others
    again = ota_search.merge_search(merged, {"c": score(-3.0, 150_000)}, 144_000)
    assert again["candidates"]["c"]["download_bytes"] == 150_000
    assert again["candidates"]["b"] == old["candidates"]["b"]
    assert again["chosen"] == "a"
    assert old["candidates"].keys() == {"a", "b"}  # the record read is not modified
    assert ota_search.merge_search({}, {"c": score(-3.0, 140_000)}, 144_000)["chosen"] == "c"
