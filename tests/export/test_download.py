"""The download: a compressed EmbedNet's artifact packed into one signed .pfb, installed on the
device bit for bit; the int8 model holds exactly the decoded compressed weights."""

from __future__ import annotations

import hashlib
import io
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
from devices.bundle.download import (
    BACKGROUND_Q,
    LAYOUTS,
    SKELETON,
    compact_background,
    expand_background,
    laid_out,
    read_download,
)
from devices.bundle.grid import fixed_scales, snap
from devices.contract import (
    BACKGROUND,
    BACKGROUND_MINUTIAE,
    EMBED,
    EMBEDDINGS,
    IMAGES,
    MANIFEST,
    MODEL,
    SIGNATURE,
    ArtifactError,
)
from devices.preprocess import preprocess_batch
from devices.print_minutiae import PrintSet
from devices.trust import KEY_ID_BYTES
from devices.views import FLIP, average_views
from export.artifact import build_artifact
from export.artifact.download import compressed_backbone, pack_download
from export.artifact.flatbuffer import int8_constants
from export.artifact.split import split_backbone
from export.bundle import BundleError, SignatureError
from export.bundle.download import as_coded, build_download
from personalize import Device, install, load_artifact
from personalize.cli import main as personalize_main
from pretrain.train.artifacts import SavedModel

TINY = {"stem_width": 8, "widths": (16, 24), "strides": (2, 2), "embedding_dim": 16}
LEVELS = 15


def _share(w: np.ndarray, rng: np.random.Generator) -> export.Coded:
    """A pruned (half the weights), 8-centroid shared kernel: a stand-in for the OTA retraining."""
    values = np.asarray(w, np.float32)
    keep = np.abs(values) >= np.median(np.abs(values))
    book = np.quantile(values[keep], np.linspace(0, 1, 8)).astype(np.float32)
    book = book + np.float32(1e-3) * rng.standard_normal(8).astype(np.float32)  # nonzero entries
    codes = np.where(keep, np.abs(values[..., None] - book).argmin(-1) + 1, 0)
    return export.Coded(np.concatenate([[0.0], book]).astype(np.float32), codes)


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        out.update(_leaves(v, f"{prefix}{k}/") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _built(packed: dict, out: Path, images: np.ndarray, **options: Any) -> dict:
    """The manifest of ``packed``'s compressed backbone built into ``out`` (head only, the
    download's background levels) with ``images`` as background (their first 32 calibrate)."""
    return build_artifact(
        packed["backbone"],
        out,
        private_key=packed["key"],
        calibration=images[:32],
        background_images=images,
        background_source="random images",
        **{"scopes": ("head",), "background_levels": LEVELS, **options},
    )


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("download")
    module = pretrain.build_model("embednet", **TINY)
    params = module.init(jax.random.key(0), jnp.zeros((1, 64, 64, 1)))["params"]
    info = {"staged_config": {"stages": {"s": {"dataset": "orl_faces"}}}}
    backbone = split_backbone(
        SavedModel(module, params, {"model": "embednet", "model_options": TINY, "info": info})
    )
    rng = np.random.default_rng(0)
    flat = _leaves({**backbone.front_params, **backbone.last_params})
    tensors = {n: _share(v, rng) if n.endswith("kernel") else v for n, v in flat.items()}
    key = ed25519.Ed25519PrivateKey.generate()
    weights = export.build_bundle(
        tensors,
        model="embednet",
        options=backbone.options,
        private_key=key,
        codebook_dtype="float16",
        raw_dtype="float16",
    )
    compressed = compressed_backbone(backbone, weights, key.public_key())
    images = rng.standard_normal((96, 64, 64, 1)).astype(np.float32)
    build_artifact(
        compressed,
        tmp / "built",
        private_key=key,
        calibration=images[:32],
        background_images=images,
        background_source="random images",
        scopes=("head",),
        background_levels=LEVELS,
    )
    files = {p.name: p.read_bytes() for p in (tmp / "built").iterdir()}
    decoded = _leaves(export.read_bundle(weights, public_key=key.public_key()).params)
    kernels = {n: as_coded(v) for n, v in decoded.items() if n.endswith("kernel")}
    blob = build_download(files, kernels, model="embednet", private_key=key)
    (tmp / "face.pfb").write_bytes(blob)
    export.bundle.write_public_key(key.public_key(), tmp / "signing.pub")
    other = ed25519.Ed25519PrivateKey.generate()
    export.bundle.write_public_key(other.public_key(), tmp / "other.pub")
    return {
        "tmp": tmp,
        "key": key,
        "files": files,
        "blob": blob,
        "compressed": _leaves({**compressed.front_params, **compressed.last_params}),
        "backbone": compressed,
        "weights": weights,
        "kernels": kernels,
    }


def test_the_int8_model_holds_exactly_the_decoded_compressed_weights(packed) -> None:
    consts = int8_constants(packed["files"][MODEL])
    for name, weights in packed["compressed"].items():
        if not name.endswith("kernel"):
            continue
        on_grid = snap(weights)
        np.testing.assert_array_equal(on_grid.weights, weights)  # already on its grid
        hits = []
        for q, scales, axis in consts:
            for layout in LAYOUTS:
                mine = laid_out(on_grid.q, layout)
                if q.size == mine.size and np.array_equal(q.ravel(), mine.ravel()):
                    hits.append((scales, axis, layout))
        assert hits, f"{name}: no int8 tensor of the model holds its codes"
        for scales, _, _ in hits:
            np.testing.assert_array_equal(scales, on_grid.scales)  # equal, not close
            read_back = on_grid.q.astype(np.float32) * scales  # model's q x model's scale
            np.testing.assert_array_equal(read_back, weights)


def test_install_rebuilds_every_signed_file_byte_for_byte(packed) -> None:
    tmp = packed["tmp"]
    done = install(tmp / "face.pfb", tmp / "installed", tmp / "signing.pub")
    assert done["bundle_bytes"] == len(packed["blob"])
    for name, data in packed["files"].items():
        assert (tmp / "installed" / name).read_bytes() == data, name
    loaded = load_artifact(tmp / "installed", tmp / "signing.pub")
    assert loaded.background.shape == (96, 16)
    # the background is the 5-bit grid's values, exactly
    values = np.load(io.BytesIO(packed["files"][BACKGROUND]))
    np.testing.assert_array_equal(expand_background(*compact_background(values, LEVELS)), values)


def _state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("damage", ["flip", "truncate", "wrong_key", "append"])
def test_damaged_bundles_are_refused_and_change_nothing(packed, damage) -> None:
    tmp, blob = packed["tmp"], packed["blob"]
    target = tmp / f"installed-{damage}"
    install(tmp / "face.pfb", target, tmp / "signing.pub")
    before = _state(target)
    siblings = sorted(p.name for p in tmp.iterdir())
    key = tmp / "signing.pub"
    data = bytearray(blob)
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
    elif damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "append":
        data += b"\0"
    else:
        key = tmp / "other.pub"
    bad = tmp / f"bad-{damage}.pfb"
    bad.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="Nothing was installed"):
        install(bad, target, key)
    assert _state(target) == before
    assert sorted(p.name for p in tmp.iterdir()) == sorted([*siblings, bad.name])
    bad.unlink()


def test_the_cli_installs_and_refuses(packed, capsys) -> None:
    tmp = packed["tmp"]
    args = ["install", "--bundle", str(tmp / "face.pfb"), "--artifact", str(tmp / "cli")]
    assert personalize_main([*args, "--key", str(tmp / "signing.pub"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"][MODEL] == len(packed["files"][MODEL])
    assert personalize_main([*args, "--key", str(tmp / "other.pub")]) == 2
    assert "signed by another key" in capsys.readouterr().err


def test_install_never_replaces_a_folder_that_holds_no_artifact(packed, capsys) -> None:
    tmp = packed["tmp"]
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("years of work")
    key_file = tmp / "signing.pub"
    for target in (docs, key_file):
        args = ["install", "--bundle", str(tmp / "face.pfb"), "--artifact", str(target)]
        assert personalize_main([*args, "--key", str(key_file)]) == 2
        assert "Nothing was written" in capsys.readouterr().err
    assert [p.name for p in docs.iterdir()] == ["thesis.txt"] and key_file.is_file()
    assert not [p for p in tmp.iterdir() if p.name.startswith((".docs", ".signing"))]


def test_reader_verifies_before_it_decodes(packed) -> None:
    blob, key = packed["blob"], packed["key"]
    download = read_download(blob, public_key=key.public_key())
    assert set(download.files) == {MODEL, BACKGROUND, MANIFEST, SIGNATURE}
    assert len(download.files[SIGNATURE]) == KEY_ID_BYTES + 64
    parts = download.record_bytes
    assert parts[SKELETON] < len(packed["files"][MODEL]) // 2 and BACKGROUND_Q in parts
    with pytest.raises(SignatureError):
        read_download(blob[:-1] + bytes([blob[-1] ^ 1]), public_key=key.public_key())
    weights_only = export.build_bundle(
        {"fc/kernel": np.ones((2, 2), np.float32)}, model="m", options={}, private_key=key
    )
    with pytest.raises(BundleError, match="not a download"):
        read_download(weights_only, public_key=key.public_key())


def test_a_model_not_built_from_the_kernels_is_refused(packed) -> None:
    files = dict(packed["files"])
    model = bytearray(files[MODEL])
    name, coded = next((n, k) for n, k in packed["kernels"].items() if k.codes.size >= 64)
    q = snap(np.asarray(coded.codebook, np.float16).astype(np.float32)[coded.codes]).q
    for layout in LAYOUTS:
        data = laid_out(q, layout).tobytes()
        at = bytes(model).find(data)
        while at >= 0:
            model[at] ^= 1
            at = bytes(model).find(data)
    files[MODEL] = bytes(model)
    with pytest.raises(BundleError, match=f"does not hold kernel {name}"):
        build_download(files, packed["kernels"], model="embednet", private_key=packed["key"])
    with pytest.raises(BundleError, match="head-only"):
        build_download(
            {**packed["files"], "background_features.xz": b""},
            packed["kernels"],
            model="embednet",
            private_key=packed["key"],
        )


def test_scales_map_to_themselves() -> None:
    rng = np.random.default_rng(1)
    top = np.abs(rng.standard_normal(10_000)).astype(np.float32) * np.float32(0.1)
    s = fixed_scales(top)
    levels = np.float32(127)
    np.testing.assert_array_equal(((s * levels).astype(np.float32) / levels).astype(np.float32), s)
    assert np.all(np.abs(s - top / levels) <= 4 * np.spacing(s))


def test_a_flip_averaged_download_installs_and_the_device_embeds_both_views(
    packed, tmp_path: Path
) -> None:
    key, rng = packed["key"], np.random.default_rng(1)
    images = rng.standard_normal((96, 64, 64, 1)).astype(np.float32)
    manifest = _built(packed, tmp_path / "art", images, views=FLIP)
    assert manifest["input"]["views"] == {"mirror": True, "shift_px": 0, "zoom": 1.0}
    files = {p.name: p.read_bytes() for p in (tmp_path / "art").iterdir()}
    blob = pack_download(files, packed["backbone"], packed["weights"], private_key=key)
    (tmp_path / "flip.pfb").write_bytes(blob)
    pub = packed["tmp"] / "signing.pub"
    install(tmp_path / "flip.pfb", tmp_path / "installed", trusted_key=pub)
    for name, data in files.items():
        assert (tmp_path / "installed" / name).read_bytes() == data, name
    dev = Device(tmp_path / "installed", tmp_path / "store", trusted_key=pub)
    assert dev.views == FLIP and dev.trainable_scopes() == ("head",)
    raw = [rng.integers(0, 256, (112, 92), dtype=np.uint8) for _ in range(6)]
    runner = load_artifact(tmp_path / "installed", pub).interpreter().get_signature_runner(EMBED)
    x = preprocess_batch(raw, dev.spec)
    views = [runner(**{IMAGES: v})[EMBEDDINGS] for v in (x, np.ascontiguousarray(x[:, :, ::-1]))]
    # one batch of both views on the device, two here: float32 rounding apart at most
    np.testing.assert_allclose(
        dev.embed(raw)[EMBEDDINGS], average_views(np.concatenate(views), 2), atol=1e-5
    )
    report = dev.enroll("owner", raw[:5], train=True, target_far=1e-2)  # faces default: imprint
    assert report.scope == "head" and dev.verify("owner", raw[5]).threshold == report.threshold


def test_a_download_carries_the_background_prints_and_installs_them(packed) -> None:
    """A fingerprint artifact's background prints (the minutiae fusion) travel in the download
    and come back byte for byte; the installed artifact reads them."""
    tmp, key = packed["tmp"], packed["key"]
    rng = np.random.default_rng(5)
    minutiae = tuple(
        rng.uniform(0, 80, (int(rng.integers(3, 30)), 4)).astype(np.float32) for _ in range(96)
    )
    prints = PrintSet(minutiae, tuple(rng.random((20, 20)) < 0.6 for _ in range(96)))
    images = np.random.default_rng(0).standard_normal((96, 64, 64, 1)).astype(np.float32)
    manifest = _built(packed, tmp / "built-prints", images, background_prints=prints)
    assert manifest["minutiae"]["count"] == 96 and BACKGROUND_MINUTIAE in manifest["files"]
    files = {p.name: p.read_bytes() for p in (tmp / "built-prints").iterdir()}
    blob = build_download(files, packed["kernels"], model="embednet", private_key=key)
    install_to = tmp / "installed-prints"
    (tmp / "prints.pfb").write_bytes(blob)
    install(tmp / "prints.pfb", install_to, tmp / "signing.pub")
    for name, data in files.items():
        assert (install_to / name).read_bytes() == data, name
    loaded = load_artifact(install_to, tmp / "signing.pub")
    assert loaded.prints is not None and loaded.prints.size == 96
    np.testing.assert_array_equal(loaded.prints.minutiae[7], minutiae[7])
    with pytest.raises(ValueError, match="95 background prints"):
        _built(packed, tmp / "built-wrong", images, background_prints=prints.take(range(95)))
