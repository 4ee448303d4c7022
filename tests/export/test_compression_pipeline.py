"""End to end on a tiny config: prune -> quantize -> signed bundle -> decode -> same network."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import export
import pretrain
import pretrain.compression as pc
from pretrain.config import make_config
from pretrain.train import Splits, Trainer


@pytest.fixture(scope="module")
def saved(tmp_path_factory, make_toy, tiny_lenet):
    config = make_config(tiny_lenet())
    trainer = Trainer(config, make_toy(32).images)
    params = jax.device_get(trainer.init_state(jax.random.key(0)).params)
    folder = tmp_path_factory.mktemp("model")
    pretrain.save_model(
        folder,
        model="lenet300",
        model_options={"hidden": (32, 16)},
        params=params,
        info={"config": config.to_dict()},
    )
    return pretrain.load_model(folder)


def test_tiny_pipeline_round_trips_through_a_bundle(saved, make_toy, tmp_path: Path) -> None:
    splits = Splits(make_toy(640, seed=0), make_toy(200, seed=1), make_toy(200, seed=2))
    recipe = pc.Recipe(
        sparsity={"fc1": 0.9, "fc2": 0.8, "fc3": 0.5},
        bits={"fc1": 4, "fc2": 4, "fc3": 5},
        rounds=1,
        prune_epochs=1,
        quant_epochs=1,
        prune_lr=0.05,
        quant_lr=1e-3,
    )
    result = pc.deep_compression(saved, recipe, splits, key=jax.random.key(3), progress=False)
    assert pc.sparsity_of(result.params) == pytest.approx(
        {"fc1/kernel": 0.9, "fc2/kernel": 0.8, "fc3/kernel": 0.5}, abs=1e-3
    )
    key = ed25519.Ed25519PrivateKey.generate()
    data = export.build_bundle(
        result.packed.leaves, model="lenet300", options={"hidden": [32, 16]}, private_key=key
    )
    bundle = export.read_bundle(data, public_key=key.public_key())
    for name, leaf in pc.named_leaves(result.params).items():
        layer, kind = name.split("/")
        np.testing.assert_array_equal(bundle.params[layer][kind], np.asarray(leaf))
    stages = export.stage_sizes(bundle)
    assert stages["pruned"]["bytes"] > stages["quantized"]["bytes"] > stages["huffman"]["bytes"]
    assert bundle.ratio > 10


def test_recipes_are_validated() -> None:
    with pytest.raises(ValueError):
        pc.Recipe(sparsity={"fc1": 1.5}, bits={"fc1": 5})
    with pytest.raises(ValueError):
        pc.Recipe(sparsity={"fc1": 0.5}, bits={"fc1": 0})
    with pytest.raises(ValueError, match="criterion"):
        pc.Recipe(sparsity={"fc1": 0.5}, bits={"fc1": 5}, criterion="random")
    lenet5 = pc.recipe("lenet5")
    assert set(lenet5.bits) == set(lenet5.sparsity) == {"conv1", "conv2", "fc1", "fc2"}
    assert all(1 <= b <= 8 for b in lenet5.bits.values())
    with pytest.raises(ValueError, match="no recipe"):
        pc.recipe("resnet")
