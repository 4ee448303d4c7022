"""A tiny signed artifact for the personalize tests, built once per session.

The backbone is a LeNet-300 (hidden 32, 16) trained briefly on six classes of the toy task
(``tests/conftest.py``); the device then enrolls one of the four classes it never saw as the
owner and meets the others as impostors. Background people are the six training classes.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SEEN, OWNER, IMPOSTORS = (0, 1, 2, 3, 4, 5), 7, (6, 8, 9)
CLASSES = 4


def _images_of(make_toy: Any, classes: tuple[int, ...], n: int, seed: int) -> tuple[Any, Any]:
    data = make_toy(n * 4, seed=seed)
    keep = np.isin(data.labels, classes)
    return np.clip(data.images[keep][:n], 0.0, 1.0), data.labels[keep][:n]


def add_background_features(art: Path, private_key: Any, images: np.ndarray) -> None:
    """Adds ``background_features.npy`` (the frozen front's features of the background images,
    through the artifact's own int8 ``embed``) to the manifest and signs it again."""
    from ai_edge_litert.interpreter import Interpreter

    from export.bundle import signing

    manifest = json.loads((art / "manifest.json").read_text())
    embed = Interpreter(model_content=(art / "model.tflite").read_bytes()).get_signature_runner(
        "embed"
    )
    feats = np.concatenate(
        [embed(images=images[i : i + 64])["features"] for i in range(0, len(images), 64)]
    ).astype(np.float16)
    buffer = io.BytesIO()
    np.save(buffer, feats, allow_pickle=False)
    data = buffer.getvalue()
    (art / "background_features.npy").write_bytes(data)
    manifest["files"]["background_features.npy"] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    (art / "manifest.json").write_bytes(text)
    public = private_key.public_key()
    (art / "manifest.sig").write_bytes(
        signing.key_id(public) + signing.sign(private_key, text)
    )


@pytest.fixture(scope="session")
def toy_artifact(tmp_path_factory: pytest.TempPathFactory, make_toy: Any) -> dict[str, Any]:
    """``{"dir", "pub", "owner", "owner_test", "impostors"}``: a signed artifact with every scope
    and background features, plus raw owner / impostor images (floats in [0, 1], 28x28x1)."""
    import pretrain
    from export.artifact.build import build_artifact
    from export.artifact.split import split_backbone
    from export.bundle import generate_key

    tmp = tmp_path_factory.mktemp("personalize_artifact")
    train = make_toy(2000, seed=10)
    keep = np.isin(train.labels, SEEN)
    splits = pretrain.train.Splits(
        pretrain.ArrayDataset(train.images[keep], train.labels[keep], "toy-seen"),
        make_toy(100, seed=11),
        make_toy(100, seed=12),
    )
    config = pretrain.make_config(
        {"model": "lenet300", "model_options": {"hidden": (32, 16)}, "batch_size": 32,
         "eval_batch_size": 100, "epochs": 3, "learning_rate": 0.05}
    )  # fmt: skip
    pretrain.fit(config, tmp / "run", progress=False, splits=splits)
    key = generate_key(tmp / "signing.key", tmp / "signing.pub")
    background, _ = _images_of(make_toy, SEEN, 400, seed=13)
    backbone = split_backbone(pretrain.load_model(tmp / "run" / "model"))
    build_artifact(
        backbone, tmp / "art", private_key=key, calibration=background[:256],
        background_images=background, background_source="toy classes 0-5", classes=CLASSES,
    )  # fmt: skip
    add_background_features(tmp / "art", key, background)
    head_only = tmp / "art_plain"
    build_artifact(
        backbone, head_only, private_key=key, calibration=background[:256],
        background_images=background, background_source="toy classes 0-5", classes=CLASSES,
        scopes=("head",),
    )  # fmt: skip
    owner, _ = _images_of(make_toy, (OWNER,), 25, seed=14)
    impostors, impostor_labels = _images_of(make_toy, IMPOSTORS, 150, seed=15)
    shutil.rmtree(tmp / "run" / "checkpoints", ignore_errors=True)
    return {
        "dir": tmp / "art",
        "head_only": head_only,
        "pub": tmp / "signing.pub",
        "key": key,
        "tmp": tmp,
        "owner": owner[:5],
        "owner_test": owner[5:],
        "impostors": impostors,
        "impostor_labels": impostor_labels,
    }
