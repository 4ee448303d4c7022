"""Choosing a compression recipe on validation: the test split is withheld, the rule is kept."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import pytest

import pretrain
import pretrain.compression as pc
from pretrain.compression import pipeline, search
from pretrain.config import make_config
from pretrain.train import Splits, Trainer


@pytest.fixture(scope="module")
def tiny(tiny_lenet: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return tiny_lenet()


def trial(name: str, val: float, ratio: float) -> pc.Trial:
    return pc.Trial(name, {}, val, val, 100, ratio, 0.0)


def test_choose_takes_the_lowest_validation_error_among_ratios_reached() -> None:
    trials = [trial("a", 1.2, 49.0), trial("b", 1.5, 51.0), trial("c", 1.4, 50.5)]
    assert pc.choose(trials, 50) == "c"
    # ties on validation error: the smaller model
    assert pc.choose([trial("a", 1.4, 50.0), trial("b", 1.4, 52.0)], 50) == "b"
    # none reaches the ratio: the largest ratio
    assert pc.choose([trial("a", 1.0, 40.0), trial("b", 2.0, 45.0)], 50) == "b"
    with pytest.raises(ValueError, match="no trials"):
        pc.choose([], 50)


def test_search_never_sees_the_test_split(
    tmp_path, make_toy, monkeypatch, tiny: dict[str, Any]
) -> None:
    config = make_config(tiny)
    trainer = Trainer(config, make_toy(32).images)
    params = jax.device_get(trainer.init_state(jax.random.key(0)).params)
    pretrain.save_model(
        tmp_path,
        model="lenet300",
        model_options={"hidden": (32, 16)},
        params=params,
        info={"config": config.to_dict()},
    )
    saved = pretrain.load_model(tmp_path)
    splits = Splits(make_toy(640, seed=0), make_toy(200, seed=1), make_toy(200, seed=2))
    given: list[int] = []
    real = search.deep_compression

    def recording(saved, recipe, splits, **kw):  # type: ignore[no-untyped-def]
        given.append(len(splits.test))
        return real(saved, recipe, splits, **kw)

    monkeypatch.setattr(search, "deep_compression", recording)
    base = pc.Recipe(
        sparsity={"fc1": 0.5, "fc2": 0.5, "fc3": 0.2},
        bits={"fc1": 4, "fc2": 4, "fc3": 5},
        rounds=1,
        prune_epochs=1,
        quant_epochs=1,
    )
    candidates = {
        "light": base,
        "heavy": dataclasses.replace(base, sparsity={"fc1": 0.9}),
        "light_lr": dataclasses.replace(base, quant_lr=1e-3),  # shares light's pruning
    }
    calls: list[pc.Packed] = []
    pruning_runs: list[dict[str, float]] = []
    real_prune = pipeline.prune_stage

    def counting(saved, recipe, splits, **kw):  # type: ignore[no-untyped-def]
        pruning_runs.append(dict(recipe.sparsity))
        return real_prune(saved, recipe, splits, **kw)

    monkeypatch.setattr(pipeline, "prune_stage", counting)

    def size(packed: pc.Packed) -> int:  # the heavier pruning is the smaller model
        calls.append(packed)
        return 100 if len(calls) == 2 else 200

    result = pc.search_recipes(
        saved,
        candidates,
        splits,
        size=size,
        reference_bytes=1000,
        min_ratio=8,
        key=jax.random.key(1),
        trainer=trainer,
        progress=False,
    )
    assert [t.name for t in result.trials] == ["light", "heavy", "light_lr"]
    assert [t.ratio for t in result.trials] == [5.0, 10.0, 5.0]
    assert pruning_runs == [base.sparsity, {"fc1": 0.9}]  # light_lr reused light's pruning
    assert result.trials[2].pruned_val_error_pct == result.trials[0].pruned_val_error_pct
    assert result.chosen == "heavy"  # the only one reaching 8x
    for t in result.trials:
        assert 0.0 <= t.val_error_pct <= 100.0
    assert given == [0, 0, 0]  # every compression ran without the test images
    assert len(splits.test) == 200  # the caller's splits are untouched


def test_registered_lenet_recipes_are_the_searchs_choice() -> None:
    """The recipes bench-compression runs are the candidates the validation search chose."""
    results = Path(__file__).parents[2] / "notebooks" / "results" / "compression_search.json"
    models = json.loads(results.read_text())["models"]
    for name in ("lenet300", "lenet5"):
        chosen = models[name]["chosen"]
        assert pc.recipe(name) == pc.CANDIDATES[name][chosen], name
        trial = next(t for t in models[name]["trials"] if t["name"] == chosen)
        assert trial["recipe"] == json.loads(json.dumps(pc.recipe(name).to_dict())), name
        assert trial["ratio"] >= 51
