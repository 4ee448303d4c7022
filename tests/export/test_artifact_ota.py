"""The OTA form of an EmbedNet: pruned, weight-shared, retrained on the embedding task, signed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import export
import pretrain
from export.artifact import ota, ota_search
from export.artifact.ota import OtaRecipe, compress_backbone, per_layer
from export.artifact.pipeline import check_bundle
from export.artifact.sensor import SensorCalibrationError
from export.artifact.split import split_backbone

TINY = {
    "stem_width": 8,
    "widths": (16, 24),
    "strides": (2, 2),
    "embedding_dim": 16,
    "standardize": True,
    "feature_norm": True,
    "embed_norm": True,  # as the face backbone (embed_face_wide.py): folded before retraining
}
RECIPE = OtaRecipe(rounds=1, steps_per_round=2, quant_steps=2)


def _save_tiny(folder: Any, options: dict, adjust: Any = None) -> None:
    """A randomly initialised EmbedNet of ``options`` (its parameters through ``adjust``) saved
    with the margin-softmax config on ORL s1-s20 that OTA retraining reads."""
    config = pretrain.make_config(
        {
            "model": "embednet",
            "model_options": options,
            "dataset": "orl_faces",
            "dataset_options": {"train_subjects": (1, 20)},
            "val_size": 0,
            "batch_size": 32,
            "eval_batch_size": 200,
            "task": "margin_softmax",
            "task_options": {"kind": "cosface", "scale": 16.0, "margin": 0.2},
        }
    )
    module = pretrain.build_model("embednet", **options)
    params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 64, 64, 1)))["params"]
    pretrain.save_model(
        folder,
        model="embednet",
        model_options=options,
        params=params if adjust is None else adjust(params),
        info={"config": config.to_dict()},
    )


def _download(tmp_path: Path, key: Any, **options: Any) -> Any:
    """The download of the tiny model saved in ``tmp_path / "model"``, compressed by
    :data:`RECIPE` (100 background people), into ``tmp_path / "artifact"``."""
    from export.artifact.download import export_download

    return export_download(
        tmp_path / "model",
        tmp_path / "artifact",
        private_key=key,
        key=jax.random.key(1),
        recipe=RECIPE,
        background=100,
        progress=False,
        **options,
    )


@pytest.fixture(scope="module")
def compressed(tmp_path_factory, data_root) -> dict:
    tmp = tmp_path_factory.mktemp("ota")
    _save_tiny(tmp / "model", TINY)
    saved = pretrain.load_model(tmp / "model")
    key = ed25519.Ed25519PrivateKey.generate()
    result = compress_backbone(
        saved, private_key=key, recipe=RECIPE, key=jax.random.key(0), progress=False
    )
    return {"saved": saved, "key": key, "result": result, "dir": tmp / "model"}


def test_bundle_decodes_to_the_compressed_weights(compressed) -> None:
    result, key = compressed["result"], compressed["key"]
    bundle = export.read_bundle(result.bundle, public_key=key.public_key())
    assert bundle.model == "embednet" and bundle.options["standardize"] is False
    assert bundle.options["embed_norm"] is False and "embed_norm" not in bundle.params
    got = dict(jax.tree_util.tree_leaves_with_path(bundle.params))
    want = dict(jax.tree_util.tree_leaves_with_path(result.params))
    assert got.keys() == want.keys()
    for path, value in want.items():
        # float16 codebooks and biases: the only loss between the trained and the shipped form
        np.testing.assert_allclose(got[path], value, rtol=1e-3, atol=1e-3)


def test_sparsity_and_codebooks_follow_the_recipe(compressed) -> None:
    result = compressed["result"]
    params = result.params
    sparsity = per_layer(params, RECIPE.sparsity)
    bits = per_layer(params, RECIPE.bits)
    assert set(sparsity) == {
        "stem",
        "block1/depthwise",
        "block1/pointwise",
        "block2/depthwise",
        "block2/pointwise",
        "embed",
    }
    for layer, target in sparsity.items():
        group, name = ([*layer.split("/"), ""])[:2]
        kernel = np.asarray((params[group][name] if name else params[group])["kernel"])
        assert np.mean(kernel == 0) == pytest.approx(target, abs=0.05), layer
        assert np.unique(kernel[kernel != 0]).size <= 2 ** bits[layer], layer
    assert [h["phase"] for h in result.history] == ["prune 1", "weight sharing"]


def test_bundle_fits_the_backbone_and_is_smaller(compressed) -> None:
    backbone = split_backbone(compressed["saved"])
    ota = check_bundle(compressed["result"].bundle, backbone, compressed["key"].public_key())
    assert ota["ratio"] > 2.5  # tiny layers: headers dominate; the real figure is in export.json


def test_a_kept_compression_is_shipped_as_is_and_only_for_its_recipe(compressed, tmp_path) -> None:
    """What the dev search scored is what the export ships: no second, different retraining."""
    import dataclasses

    from export.artifact.download import export_download
    from export.artifact.ota import load_ota, save_ota

    result, key = compressed["result"], compressed["key"]
    kept = load_ota(save_ota(result, tmp_path / "kept"))
    assert (kept.bundle, kept.recipe, kept.history) == (
        result.bundle,
        result.recipe,
        result.history,
    )
    down = export_download(
        compressed["dir"],
        tmp_path / "artifact",
        private_key=key,
        key=jax.random.key(1),
        recipe=RECIPE,
        ota=kept,
        background=40,
        progress=False,
    )
    assert down.ota.bundle == result.bundle
    assert down.manifest["source"]["compression"]["recipe"] == result.recipe
    with pytest.raises(ValueError, match="made by the recipe"):
        export_download(
            compressed["dir"],
            tmp_path / "other",
            private_key=key,
            key=jax.random.key(1),
            recipe=dataclasses.replace(RECIPE, steps_per_round=3),
            ota=kept,
            background=40,
            progress=False,
        )
    assert not (tmp_path / "other").exists()
    captures = [np.full((112, 92), i, np.uint8) for i in range(20)]
    with pytest.raises(SensorCalibrationError, match="made before the sensor calibration"):
        export_download(
            compressed["dir"],
            tmp_path / "calibrated",
            private_key=key,
            key=jax.random.key(1),
            recipe=RECIPE,
            ota=kept,
            sensor_captures=captures,
            progress=False,
        )
    assert not (tmp_path / "calibrated").exists()
    with pytest.raises(ValueError, match="not a saved compression"):
        load_ota(tmp_path / "nothing")


def test_a_sensor_calibrated_download_compresses_the_calibrated_backbone(tmp_path) -> None:
    """The captures' shared direction is folded in before compression: the backbone the
    compression started from (the download's float reference) embeds the captures without it,
    and the download installs."""
    from devices.preprocess import preprocess_batch
    from export.artifact.split import preprocess_of
    from export.bundle import write_public_key
    from personalize import install

    rng = np.random.default_rng(3)
    _save_tiny(tmp_path / "model", TINY, lambda p: p)
    key = ed25519.Ed25519PrivateKey.generate()
    write_public_key(key.public_key(), tmp_path / "signing.pub")
    # captures sharing a pattern (a bright band), as one sensor's prints share its look
    captures = rng.integers(0, 120, (30, 112, 92), dtype=np.uint8)
    captures[:, 40:70] += 120
    down = _download(tmp_path, key, sensor_captures=list(captures))
    record = down.manifest["source"]["sensor_calibration"]
    assert record["captures"] == 30 and record["directions"] == 1
    inputs = preprocess_batch(
        list(captures), preprocess_of(pretrain.load_model(tmp_path / "model"))
    )
    e = np.asarray(down.float_backbone.embeddings(inputs), np.float64)
    cone = float(np.linalg.norm((e / np.linalg.norm(e, axis=1, keepdims=True)).mean(axis=0)))
    assert cone == pytest.approx(record["mean_unit_norm_after"], abs=1e-4)
    assert record["mean_unit_norm_after"] < record["mean_unit_norm_before"] - 0.5
    (tmp_path / "s.pfb").write_bytes(down.bundle)
    installed = install(tmp_path / "s.pfb", tmp_path / "installed", tmp_path / "signing.pub")
    assert installed["key_id"]


def test_a_gdc_backbone_goes_all_the_way_to_the_device(tmp_path, data_root) -> None:
    """An EmbedNet with ``pool="gdc"`` (its pool weights off the mean): compressed for OTA (the
    pool as a depthwise layer), packed as a download, installed and embedding on a device; and a
    wide artifact whose last block (pool included) the device trains."""
    from export.artifact import build_artifact
    from export.bundle import write_public_key
    from personalize import Device, install

    rng = np.random.default_rng(0)
    _save_tiny(  # the pool's weights off the mean
        tmp_path / "model",
        {**TINY, "pool": "gdc"},
        lambda p: {**p, "gdc": p["gdc"] * rng.uniform(0, 2, p["gdc"].shape)},
    )
    key = ed25519.Ed25519PrivateKey.generate()
    write_public_key(key.public_key(), tmp_path / "signing.pub")
    down = _download(tmp_path, key)
    assert "gdc" in per_layer(down.ota.params, RECIPE.bits)
    (tmp_path / "face.pfb").write_bytes(down.bundle)
    install(tmp_path / "face.pfb", tmp_path / "installed", tmp_path / "signing.pub")
    images = list(rng.integers(0, 256, (6, 112, 92), dtype=np.uint8))
    device = Device(
        tmp_path / "installed", tmp_path / "store", trusted_key=tmp_path / "signing.pub"
    )
    assert device.embed(images)["embeddings"].shape == (6, TINY["embedding_dim"])
    backbone = split_backbone(pretrain.load_model(tmp_path / "model"))
    build_artifact(
        backbone,
        tmp_path / "wide",
        private_key=key,
        calibration=rng.normal(size=(32, 64, 64, 1)).astype(np.float32),
        background_images=rng.normal(size=(100, 64, 64, 1)).astype(np.float32),
        background_source="noise",
        scopes=("head", "head_biases", "last_block"),
    )
    wide = Device(tmp_path / "wide", tmp_path / "store2", trusted_key=tmp_path / "signing.pub")
    report = wide.enroll("ann", images[:5], train=True, scope="last_block", measure_memory=False)
    assert report.scope == "last_block"
    assert np.isfinite(wide.scores("ann", images[5:])).all()


@pytest.mark.parametrize(
    ("search", "modality", "recipe"),
    [
        ("export_search", "face", "FACE_LFW"),
        ("export_search_fingerprint", "fingerprint", "FINGERPRINT"),
    ],
)
def test_registered_ota_recipes_are_the_searchs_choice(
    search: str, modality: str, recipe: str
) -> None:
    """The recipe an export runs is the candidate the dev search chose for that backbone."""
    results = Path(__file__).parents[2] / "notebooks" / "results" / f"{search}.json"
    chosen = json.loads(results.read_text())["chosen"]
    assert getattr(ota, recipe) == ota_search.CANDIDATES[modality][chosen]
