"""``python -m export build`` on a tiny EmbedNet: a verified artifact, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import export
import pretrain
from devices.preprocess import FACE_SPEC, FINGERPRINT_SPEC
from export.__main__ import main
from export.artifact.convert import op_names, size_breakdown
from export.artifact.head import HeadConfig, imprint
from export.artifact.pipeline import fit_whitening
from export.artifact.scopes import train_fn
from export.artifact.sources import data_sources
from export.artifact.split import split_backbone
from export.artifact.whiten import EPS
from personalize.artifact import load_artifact
from pretrain.compression import named_leaves
from pretrain.models import registry

TINY = {
    "stem_width": 8,
    "widths": (16, 24),
    "strides": (2, 2),
    "embedding_dim": 16,
    "standardize": True,
    "feature_norm": True,
}
CLASSES = 8  # the CLI's default head


def _config() -> dict:
    return pretrain.make_config(
        {
            "model": "embednet",
            "model_options": TINY,
            "dataset": "orl_faces",
            "dataset_options": {"train_subjects": (1, 20)},
            "val_size": 0,
            "batch_size": 32,
            "eval_batch_size": 200,
            "task": "margin_softmax",
        }
    ).to_dict()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, data_root) -> dict:
    """A random-init tiny EmbedNet (weight-standardised) saved as trained on ORL s1-s20."""
    tmp = tmp_path_factory.mktemp("build")
    module = pretrain.build_model("embednet", **TINY)
    params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 64, 64, 1)))["params"]
    pretrain.save_model(
        tmp / "model",
        model="embednet",
        model_options=TINY,
        params=params,
        info={"config": _config()},
    )
    return {"tmp": tmp, "module": module, "params": params}


@pytest.fixture(scope="module")
def built(tiny) -> dict:
    """The CLI run: int8 embed, head + last_block scopes, a raw OTA bundle, a fresh key."""
    tmp = tiny["tmp"]
    key = ed25519.Ed25519PrivateKey.generate()
    tensors = named_leaves(jax.device_get(tiny["params"]))
    bundle = export.build_bundle(tensors, model="embednet", options=TINY, private_key=key)
    export.write_bundle(tmp / "tiny.pfb", bundle)
    _write_key(key, tmp / "signing.key")
    code = main(
        [
            "build",
            "--backbone",
            str(tmp / "model"),
            "--out",
            str(tmp / "art"),
            "--bundle",
            str(tmp / "tiny.pfb"),
            "--scope",
            "last_block",
            "--key",
            str(tmp / "signing.key"),
            "--public",
            str(tmp / "signing.pub"),
        ]
    )
    assert code == 0
    return {**tiny, "artifact": load_artifact(tmp / "art", tmp / "signing.pub")}


def test_build_writes_a_verified_embednet_artifact(built, capsys) -> None:
    art = built["artifact"]
    m = art.manifest
    assert m["input"]["preprocess"] == FACE_SPEC.to_dict() and m["input"]["shape"] == [64, 64, 1]
    assert set(m["scopes"]) == {"head", "last_block"}
    assert "ORL s1-s20" in m["background"]["source"] and art.background.shape == (200, 16)
    assert m["source"]["whitening"]["eps"] == EPS
    assert "200 images, the background images: ORL s1-s20" in m["source"]["whitening"]["fit_on"]
    assert m["ota"]["bytes"] == (built["tmp"] / "tiny.pfb").stat().st_size
    assert m["ota"]["ratio"] == pytest.approx(m["ota"]["float_backbone_bytes"] / m["ota"]["bytes"])
    ops = op_names(art.model)
    assert "DEPTHWISE_CONV_2D" in ops and not [o for o in ops if o.startswith(("FLEX", "CUSTOM"))]
    sizes = size_breakdown(art.model)
    parts = sum(sizes["constants"].values()) + sizes["quantization_params"] + sizes["tensor_names"]
    assert parts + sizes["graph_and_metadata"] == len(art.model)
    # int8 front + last block in embed; the wide scope's starting kernels int8 too (dequantized
    # into its float variables once): float32 constants are biases and kernels too small to pack
    assert sizes["constants"]["float32"] < sizes["constants"]["int8"] and parts < len(art.model)
    assert sizes["tensor_names"] == 0


def test_int8_embed_matches_the_folded_model(built, data_root) -> None:
    from pretrain.embedding import orl_subjects

    faces = orl_subjects(range(1, 21)).images[::5]  # inside the calibrated data
    # The saved (weight-standardised, "fast") model is the reference: folding the
    # standardisation and the "native" implementation compute the same function in float...
    ref = np.asarray(built["module"].apply({"params": built["params"]}, faces))
    saved = pretrain.load_model(built["tmp"] / "model")
    backbone = split_backbone(saved)
    np.testing.assert_allclose(
        np.asarray(backbone.embed()(jnp.asarray(faces))), ref, rtol=1e-4, atol=1e-5
    )
    # ...whitened on the background people (the export's default for an EmbedNet)...
    w, _ = fit_whitening(backbone, data_sources(saved))
    ref = ref @ w / np.linalg.norm(ref @ w, axis=1, keepdims=True)
    # ...and int8 stays close: rounding in five int8 layers and the feature normalisation adds
    # up to a few output steps (2/255 for a unit vector), far below the gap between people.
    # Whitening weighs up the directions people share little of, and the rounding in them: the
    # worst cosine to float was 0.965 here (this random-init net; the trained backbones' int8 vs
    # float accuracy is measured by bench-export).
    got = built["artifact"].interpreter().get_signature_runner("embed")(images=faces)["embeddings"]
    cosine = np.sum(got * ref, axis=1) / np.linalg.norm(got, axis=1)
    others = ref @ ref.T
    assert cosine.min() >= 0.95 and np.abs(got - ref).mean() <= 4 * 2.0 / 255
    assert cosine.mean() > others[~np.eye(len(ref), dtype=bool)].mean() + 0.1


def test_last_block_step_follows_jax(built, data_root, steps_follow_jax) -> None:
    from pretrain.embedding import orl_subjects

    faces = orl_subjects(range(1, 3))
    it = built["artifact"].interpreter()
    out = it.get_signature_runner("embed")(images=faces.images)
    start = it.get_signature_runner("get_weights")(unused=np.int32(0))
    start["head__kernel"] = imprint(out["embeddings"], faces.labels, CLASSES)
    it.get_signature_runner("set_weights")(**start)
    names = {n: v["tensor"] for n, v in built["artifact"].manifest["variables"].items()}
    jax_vars = {n: jnp.asarray(start[t]) for n, t in names.items()}
    backbone = split_backbone(pretrain.load_model(built["tmp"] / "model"))
    step = jax.jit(train_fn(backbone, HeadConfig(16, CLASSES), "last_block"))
    # A stable step size: at lr 0.05 this random-init net's loss jumps (0.57, 0.24, 0.63, 4.5).
    inputs = {"features": out["features"], "labels": faces.labels.astype(np.int32)}
    steps_follow_jax(
        it,
        "train_last_block",
        step,
        jax_vars,
        names,
        inputs,
        steps=5,
        lr=np.float32(0.005),
        weight_decay=np.float32(1e-3),
    )


class _NoPart(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(4)(x.reshape((x.shape[0], -1)))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such model directory"),
        ("scope", "unknown training scope"),
        ("nopart", "cannot be cut into front and last block"),
        ("corrupt", "bundle"),
        ("othermodel", "holds a 'lenet300'"),
        ("otherkey", "signed by another key"),
        ("nokey", "pass --new-key"),
        ("openkey", "chmod 600"),
        ("fewcaptures", "at least 20 captures from the sensor"),
        ("nocaptures", "no capture files"),
        ("captures_bundle", "bundle made before the sensor calibration"),
        ("small_captures", "capture 0: 112x92 pixels, smaller than the model input 128x128"),
    ],
)
def test_build_errors_are_one_clear_line(tiny, monkeypatch, capsys, case: str, message: str):
    tmp = tiny["tmp"]
    key = ed25519.Ed25519PrivateKey.generate()
    args = [
        "build",
        "--backbone",
        str(tmp / "model"),
        "--out",
        str(tmp / f"err-{case}"),
        "--key",
        str(tmp / f"{case}.key"),
    ]
    if case == "missing":
        args[2] = str(tmp / "nowhere")
    elif case == "scope":
        args += ["--scope", "everything"]
    elif case in ("nokey", "openkey"):
        pass
    elif case == "small_captures":  # ORL faces for a print model: the device refuses them
        pretrain.save_model(
            tmp / "print_model",
            model="embednet",
            model_options=TINY,
            params=tiny["params"],
            info={"config": _config(), "preprocess": FINGERPRINT_SPEC.to_dict()},
        )
        args[2] = str(tmp / "print_model")
        args += ["--sensor-captures", str(_captures(tmp / f"{case}-captures", 20))]
    elif case in ("fewcaptures", "nocaptures", "captures_bundle"):
        folder = _captures(tmp / f"{case}-captures", 3 if case == "fewcaptures" else 20)
        if case == "nocaptures":
            for file in folder.iterdir():
                file.rename(file.with_suffix(".txt"))
        args += ["--sensor-captures", str(folder)]
        if case == "captures_bundle":
            args += ["--bundle", str(tmp / "tiny.pfb")]
    elif case == "nopart":
        monkeypatch.setitem(registry._MODELS, "nopart", _NoPart)
        params = _NoPart().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
        pretrain.save_model(
            tmp / "nopart",
            model="nopart",
            model_options={},
            params=params,
            info={"config": {"dataset": "mnist"}},
        )
        args[2] = str(tmp / "nopart")
    else:
        path = tmp / f"{case}.pfb"
        if case == "corrupt":
            path.write_bytes(b"\x89PFB" + bytes(40))
        else:
            signer = key if case == "othermodel" else ed25519.Ed25519PrivateKey.generate()
            if case == "othermodel":
                tensors = {"fc1/kernel": np.zeros((784, 4), np.float32)}
                data = export.build_bundle(tensors, model="lenet300", options={}, private_key=key)
            else:
                tensors = named_leaves(jax.device_get(tiny["params"]))
                data = export.build_bundle(
                    tensors, model="embednet", options=TINY, private_key=signer
                )
            path.write_bytes(data)
        args += ["--bundle", str(path)]
    if case != "nokey":
        _write_key(key, tmp / f"{case}.key")
    if case == "openkey":
        (tmp / f"{case}.key").chmod(0o644)
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert not (tmp / f"err-{case}").exists()


def _captures(folder: Path, n: int) -> Path:
    """``n`` ORL faces of people the tiny model did not train on (s21 on), as PNG files."""
    from PIL import Image

    from pretrain.data.faces import read_orl

    folder.mkdir(parents=True, exist_ok=True)
    faces = read_orl()
    for i, image in enumerate(faces.images[-n:]):
        Image.fromarray(np.asarray(image, np.uint8)).save(folder / f"capture{i:02d}.png")
    return folder


def test_build_calibrates_to_a_sensor_from_its_captures(tiny, capsys) -> None:
    """24 unlabeled captures: the direction they share leaves the artifact's embedding
    (unwhitened, where this random-init net's faces share much of one direction)."""
    tmp = tiny["tmp"]
    folder = _captures(tmp / "sensor", 24)
    key = ed25519.Ed25519PrivateKey.generate()
    _write_key(key, tmp / "sensor.key")
    out = tmp / "art-sensor"
    args = ["build", "--backbone", str(tmp / "model"), "--out", str(out)]
    args += ["--key", str(tmp / "sensor.key"), "--public", str(tmp / "sensor.pub")]
    code = main([*args, "--no-whiten", "--sensor-captures", str(folder)])
    assert code == 0
    assert "calibrated to the sensor on 24 captures" in capsys.readouterr().out
    art = load_artifact(out, tmp / "sensor.pub")
    record = art.manifest["source"]["sensor_calibration"]
    assert record["captures"] == 24 and record["directions"] == 1
    assert record["mean_unit_norm_after"] < record["mean_unit_norm_before"]
    # the int8 artifact's embeddings of the captures: the shared part is gone on the device too
    saved = pretrain.load_model(tmp / "model")
    from devices.imagefile import read_folder
    from devices.preprocess import preprocess_batch
    from export.artifact.split import preprocess_of

    inputs = preprocess_batch(read_folder(folder), preprocess_of(saved))
    got = art.interpreter().get_signature_runner("embed")(images=inputs)["embeddings"]
    got = got / np.linalg.norm(got, axis=1, keepdims=True)
    cone = float(np.linalg.norm(got.mean(axis=0)))
    assert cone == pytest.approx(record["mean_unit_norm_after"], abs=0.05)
    assert cone < record["mean_unit_norm_before"] - 0.1


def _write_key(key, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def test_manifest_records_the_feature_cache_shape(built) -> None:
    manifest = json.loads((built["tmp"] / "art" / "manifest.json").read_text())
    assert manifest["signatures"]["train_last_block"]["inputs"]["features"]["shape"][1:] == [
        16,
        16,
        16,
    ]


def test_a_public_key_is_never_written_over_a_private_one(tiny, tmp_path: Path, capsys) -> None:
    from export.__main__ import main as export_main

    private = tmp_path / "signing.key"
    assert export_main(["keygen", "--private", str(private), "--public", str(private)]) == 2
    assert "--public names the private key's file" in capsys.readouterr().err
    assert not private.exists()
    assert export_main(["keygen", "--private", str(private), "--public", str(tmp_path / "p")]) == 0
    pem = private.read_bytes()
    backbone = tiny["tmp"] / "model"
    out = tmp_path / "art"
    build = ["build", "--backbone", str(backbone), "--out", str(out), "--key", str(private)]
    assert export_main([*build, "--public", str(private)]) == 2
    assert "private key" in capsys.readouterr().err
    other = tmp_path / "other.key"
    other.write_bytes(pem)
    rekey = ["rekey", str(out), "--old-key", str(tmp_path / "p"), "--key", str(private)]
    assert export_main([*rekey, "--public", str(other)]) == 2
    assert "holds a private key" in capsys.readouterr().err
    assert private.read_bytes() == pem == other.read_bytes() and not out.exists()
    before = sorted(p.name for p in backbone.iterdir())
    assert export_main(["build", "--backbone", str(backbone), "--out", str(backbone),
                        "--key", str(private)]) == 2  # fmt: skip
    assert "has no manifest.json" in capsys.readouterr().err
    assert sorted(p.name for p in backbone.iterdir()) == before


def test_a_signing_key_is_created_only_when_asked(tmp_path: Path) -> None:
    from export.artifact.pipeline import signing_key

    file = tmp_path / "keys" / "signing.key"
    with pytest.raises(export.BundleError, match=r"not found.*keygen.*--new-key"):
        signing_key(file)
    assert not file.exists()
    key = signing_key(file, create=True)
    assert file.stat().st_mode & 0o777 == 0o600
    assert export.bundle.key_id(signing_key(file).public_key()) == export.bundle.key_id(
        key.public_key()
    )
