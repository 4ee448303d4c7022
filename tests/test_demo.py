"""`make demo`'s script: its configs are valid for the packages it drives (no training here; the
whole demo takes minutes and is run by `make demo`, not by the tests)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import pretrain
from export.artifact.ota import EMBEDNET
from export.artifact.scopes import check_scopes

DEMO = Path(__file__).parents[1] / "notebooks" / "demo.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("pocketfit_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("which", ["DemoConfig", "SMOKE"])
def test_configs_build(demo, which: str) -> None:
    c = demo.DemoConfig() if which == "DemoConfig" else demo.SMOKE
    run = pretrain.make_staged(demo.pretrain_config(c), where="demo")
    stage = run.stages[-1][1]
    assert stage.task == "margin_softmax" and stage.dataset == "synthetic_fingerprints"
    model = pretrain.build_model(stage.model, **stage.model_options)
    x = jax.ShapeDtypeStruct((2, 128, 128, 1), jnp.float32)  # shapes only: no compilation
    params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    assert jax.eval_shape(model.apply, {"params": params}, x).shape == (2, c.embedding_dim)
    recipe = dataclasses.replace(
        EMBEDNET, sparsity=dict(c.sparsity), bits=dict(c.bits), rounds=c.prune_rounds,
        steps_per_round=c.prune_steps, quant_steps=c.quant_steps, max_identities=c.identities,
    )  # fmt: skip
    assert recipe.rounds == c.prune_rounds
    assert check_scopes(c.scopes)[0] == "head"
    assert 0 < c.target_far < 1 and c.enroll < c.owner_impressions
