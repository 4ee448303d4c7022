"""LiteRT artifacts: builtins only, JAX-exact training, int8 embed, exact weights I/O, trust."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain
from devices.graph import Graph
from export.artifact.convert import op_names
from export.artifact.head import HeadConfig, imprint
from export.artifact.scopes import train_fn
from export.bundle import generate_key
from personalize import ArtifactError, load_artifact

CLASSES = 4


@pytest.fixture(scope="module")
def built(tmp_path_factory, make_toy, make_toy_artifact):
    """A small LeNet-300 backbone exported with every scope, int8 embed."""
    splits = pretrain.train.Splits(
        make_toy(640, seed=0), make_toy(200, seed=1), make_toy(200, seed=2)
    )
    data = make_toy(400, seed=3)
    images = np.clip(data.images, 0, 1)
    art = make_toy_artifact(
        tmp_path_factory.mktemp("artifact"),
        splits,
        hidden=(32, 16),
        calibration=images[:256],
        background=images[200:400],
        background_source="toy",
        classes=CLASSES,
    )
    return {**art, "images": images, "labels": data.labels % CLASSES}


@pytest.fixture
def artifact(built):
    return load_artifact(built["dir"], built["pub"])


def test_builtins_only_and_contract(artifact) -> None:
    ops = op_names(artifact.model)
    assert not [o for o in ops if o.startswith(("FLEX", "CUSTOM"))], ops
    assert {"VAR_HANDLE", "ASSIGN_VARIABLE", "READ_VARIABLE"} <= set(ops)
    sigs = artifact.interpreter().get_signature_list()
    assert set(sigs) == {
        "embed",
        "train",
        "train_head_biases",
        "train_last_block",
        "infer",
        "refine",
        "get_weights",
        "set_weights",
    }
    assert sigs["train"]["inputs"] == ["embeddings", "labels", "lr", "weight_decay"]
    assert set(artifact.manifest["signatures"]) == set(sigs)


def _weights(runner_get) -> dict[str, np.ndarray]:
    return runner_get(unused=np.int32(0))


def test_train_follows_the_jax_step(built, artifact, steps_follow_jax) -> None:
    it = artifact.interpreter()
    x, y = built["images"][:12], built["labels"][:12].astype(np.int32)
    emb = it.get_signature_runner("embed")(images=x)["embeddings"]
    variables = {n: v["tensor"] for n, v in artifact.manifest["variables"].items()}
    start = _weights(it.get_signature_runner("get_weights"))
    start["head__kernel"] = imprint(emb, y, CLASSES)
    it.get_signature_runner("set_weights")(**start)
    jax_vars = {n: jnp.asarray(start[t]) for n, t in variables.items()}
    step = jax.jit(train_fn(built["backbone"], HeadConfig(emb.shape[1], CLASSES), "head"))
    inputs = {"embeddings": emb, "labels": y}
    steps_follow_jax(
        it,
        "train",
        step,
        jax_vars,
        variables,
        inputs,
        steps=50,
        lr=np.float32(0.1),
        weight_decay=np.float32(1e-3),
    )


def test_int8_embed_agrees_with_jax_within_the_quantization_step(built, artifact) -> None:
    # Inputs inside the calibrated range: the error is rounding, not saturation (a held-out
    # input beyond every calibration example saturates; bench-export reports that case).
    x = built["images"][:64]
    out = artifact.interpreter().get_signature_runner("embed")(images=x)
    for name, ref in (
        ("features", built["backbone"].front()(x)),
        ("embeddings", built["backbone"].embed()(x)),
    ):
        ref = np.asarray(ref)
        step = (ref.max() - ref.min()) / 255  # the output tensor's int8 step
        err = np.abs(out[name] - ref)
        assert err.mean() <= 0.5 * step, name
        assert err.max() <= 4 * step, name
    assert artifact.manifest["embed_precision"] == "int8"


def test_weights_round_trip_exactly(artifact) -> None:
    it = artifact.interpreter()
    rng = np.random.default_rng(0)
    values = {
        k: rng.standard_normal(v.shape).astype(np.float32)
        for k, v in _weights(it.get_signature_runner("get_weights")).items()
    }
    it.get_signature_runner("set_weights")(**values)
    back = _weights(it.get_signature_runner("get_weights"))
    for k, v in values.items():
        np.testing.assert_array_equal(back[k], v)


@pytest.mark.parametrize("scope", ["train_head_biases", "train_last_block"])
def test_wider_scopes_learn_from_cached_features(built, artifact, scope: str) -> None:
    it = artifact.interpreter()
    x, y = built["images"][:16], built["labels"][:16].astype(np.int32)
    out = it.get_signature_runner("embed")(images=x)
    start = _weights(it.get_signature_runner("get_weights"))
    start["head__kernel"] = imprint(out["embeddings"], y, CLASSES)
    it.get_signature_runner("set_weights")(**start)
    train = it.get_signature_runner(scope)
    losses = [
        float(
            train(
                features=out["features"], labels=y, lr=np.float32(0.2), weight_decay=np.float32(0.0)
            )["loss"]
        )
        for _ in range(20)
    ]
    assert losses[-1] < 0.8 * losses[0]
    after = _weights(it.get_signature_runner("get_weights"))
    moved = {k for k in start if not np.array_equal(start[k], after[k])}
    expected = {"head__kernel", "last__fc2__bias"} | (
        {"last__fc2__kernel"} if scope == "train_last_block" else set()
    )
    assert moved == expected


def test_manifest_describes_the_artifact(built, artifact) -> None:
    m = artifact.manifest
    assert m["input"]["preprocess"]["normalise"] == "unit" and m["input"]["shape"] == [28, 28, 1]
    assert m["scopes"]["head"]["trainable_params"] == 16 * CLASSES
    assert m["scopes"]["last_block"]["trainable_params"] == 16 * CLASSES + 32 * 16 + 16
    assert artifact.background.shape == (200, 16)
    graph = Graph.from_dict(m["graph"])
    assert (
        graph.train_input("head") == "embeddings" and graph.train_input("last_block") == "features"
    )
    plan = m["memory_peak_bytes"]["phone_cpu"]
    assert plan["train_last_block"] > plan["train"] > 0
    # the plan the device's planner makes from the model file (its nodes, dynamic tensors)
    from devices import load_profile, plan_signature, read_model_stats

    stats, profile = read_model_stats(artifact.model), load_profile("phone_cpu")
    for sig in graph.signatures:
        want = plan_signature(
            graph, sig, profile, model_bytes=len(artifact.model), model_stats=stats
        )
        assert plan[sig.name] == want.peak_bytes, sig.name


def test_the_plan_holds_the_variables_a_call_copies(artifact) -> None:
    """``refine`` runs the last block from its variables, and READ_VARIABLE copies them into the
    call's arena: the file shows the copies and the plan adds the ones the layer graph does not
    (a train step's own weights are planned already)."""
    from devices import load_profile, plan_signature, read_model_stats

    graph = Graph.from_dict(artifact.manifest["graph"])
    stats, profile = read_model_stats(artifact.model), load_profile("phone_cpu")
    held = 4 * sum(layer.kernel_params for layer in graph.last_block if layer.kernel_params)
    reads = stats.work_of("refine").variable_reads
    assert held > 0 and reads >= held
    without = plan_signature(graph, "refine", profile)
    refine = plan_signature(graph, "refine", profile, model_stats=stats)
    assert refine.variable_reads == reads and without.variable_reads == 0
    assert refine.step_bytes >= without.step_bytes + reads
    wide = plan_signature(graph, "train_last_block", profile, model_stats=stats)
    assert stats.work_of("train_last_block").variable_reads > 0 and wide.variable_reads == 0
    assert stats.work_of("embed").variable_reads == 0
    # and copying them takes time: read and written once at the profile's bandwidth
    from devices import estimate

    gap = estimate(graph, "refine", profile, model_stats=stats).latency_s - (
        estimate(graph, "refine", profile).latency_s
    )
    assert gap >= 2 * reads / max(
        profile.sram_bandwidth_bytes_per_s, profile.dram_bandwidth_bytes_per_s
    )


def _copy(built, name: str) -> Path:
    target = built["tmp"] / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(built["dir"], target)
    return target


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _flip(d / "model.tflite", 4000), "model.tflite: contents differ"),
        (lambda d: _flip(d / "background.npy", 200), "background.npy: contents differ"),
        (
            lambda d: (d / "model.tflite").write_bytes((d / "model.tflite").read_bytes()[:-10]),
            "contents differ",
        ),
        (lambda d: _edit_manifest(d), "signature does not match"),
        (lambda d: _flip(d / "manifest.sig", 20), "signature does not match"),
        (lambda d: _flip(d / "manifest.sig", 0), "signed by another key"),
        (lambda d: (d / "manifest.sig").unlink(), "manifest.sig: missing"),
    ],
)
def test_tampered_artifacts_are_refused(built, mutate, message: str) -> None:
    target = _copy(built, "tampered")
    mutate(target)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(target, built["pub"])


def test_another_key_is_refused(built) -> None:
    generate_key(built["tmp"] / "other.key", built["tmp"] / "other.pub")
    with pytest.raises(ArtifactError, match="signed by another key"):
        load_artifact(built["dir"], built["tmp"] / "other.pub")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_manifest(d: Path) -> None:
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["head"]["scale"] = 64.0
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def test_views_beside_the_wider_scopes(built, tmp_path: Path) -> None:
    # the background embeddings are the averages of every test-time view; the front features
    # the wider scopes train on stay the images' own
    from devices.views import TestViews, average_views, make_views
    from export.artifact import build_artifact
    from export.artifact.build import embed_batches

    views = TestViews(mirror=True, shift_px=2, zoom=1.1)
    background = built["images"][200:264]
    manifest = build_artifact(
        built["backbone"],
        tmp_path / "flip",
        private_key=built["key"],
        calibration=built["images"][:256],
        background_images=background,
        background_source="toy",
        scopes=("head", "head_biases", "last_block"),
        classes=CLASSES,
        views=views,
    )
    assert manifest["input"]["views"] == views.to_dict()
    art = load_artifact(tmp_path / "flip", built["pub"])
    plain = embed_batches(art.model, background)
    want = average_views(embed_batches(art.model, make_views(background, views)), views.count)
    assert not np.allclose(want, plain, atol=1e-2)  # the views' embeddings differ
    np.testing.assert_allclose(art.background, want, atol=2e-3)  # float16 rows
    stored = art.features()
    assert stored is not None
    features = embed_batches(art.model, background, output="features")
    np.testing.assert_allclose(stored, features, rtol=2e-3, atol=2e-3)
