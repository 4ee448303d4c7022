"""`make demo`'s script: its configs are valid for the packages it drives (no training here; the
whole demo takes minutes and is run by `make demo`, not by the tests)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
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
        EMBEDNET,
        sparsity=dict(c.sparsity),
        bits=dict(c.bits),
        rounds=c.prune_rounds,
        steps_per_round=c.prune_steps,
        quant_steps=c.quant_steps,
        max_identities=c.identities,
    )
    assert recipe.rounds == c.prune_rounds
    assert check_scopes(c.scopes)[0] == "head"
    assert 0 < c.target_far < 1 and c.enroll < c.owner_impressions


def test_shipped_backbone_holds_out_an_owner_and_a_crowd(demo, tmp_path: Path) -> None:
    """The default starts from the committed backbone: its held-out test identities give the
    owner and a crowd of >= 1,000 impostor attempts, none of them trained on."""
    from devices.preprocess import PreprocessSpec
    from export.artifact.split import training_config

    c = demo.DemoConfig()
    assert c.backbone and not demo.SMOKE.backbone  # --smoke trains from scratch
    model_dir = demo.shipped_backbone(c)
    test, seed = demo.held_out(model_dir)
    assert len(test) >= 1 + c.crowd and 8 * c.crowd >= 1000
    saved = pretrain.load_model(model_dir)
    options = training_config(saved)["dataset_options"]
    assert test.stop <= options.get("val_identities", 100) + options["test_identities"]
    assert seed == options["seed"]
    assert PreprocessSpec.from_dict(saved.info["info"]["preprocess"]).modality == "fingerprint"
    with pytest.raises(SystemExit, match="--pretrain"):
        demo.shipped_backbone(dataclasses.replace(c, backbone=str(tmp_path)))


@pytest.mark.slow
def test_smoke_run_end_to_end(tmp_path: Path) -> None:
    """``make demo DEMO_ARGS=--smoke``'s script in a fresh process: every step runs and the
    summary's figures agree with the scores it records (about 2 minutes on 2 cores)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(DEMO), "--smoke", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Traceback" not in done.stderr
    assert (tmp_path / "demo.png").stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    device = summary["device"]
    threshold = device["report"]["threshold"]
    genuine, impostor = np.asarray(device["genuine_scores"]), np.asarray(device["impostor_scores"])
    assert device["genuine_attempts"] == len(genuine) and device["impostor_attempts"] == len(
        impostor
    )
    assert device["frr_pct"] == pytest.approx(100 * np.mean(genuine < threshold))
    assert device["far_pct"] == pytest.approx(100 * np.mean(impostor >= threshold))
    # one of the two flows trains: the device's default for prints, and the other beside it
    assert (device["report"]["steps"] >= 1) != (device["comparison"]["steps"] >= 1)
    assert device["model_bytes"] == summary["sizes"]["model_bytes"]
    assert summary["sizes"]["pfb_bytes"] == (tmp_path / "backbone.pfb").stat().st_size
