"""A tiny signed artifact for the personalize tests, built once per session.

The task: 200 identities, each a fixed random 28x28 template; a capture is the template plus
Gaussian noise (std 0.1), clipped to [0, 1]. The backbone is a LeNet-300 (hidden 64, 32) trained
briefly to classify identities 0-59; the background people are identities 60-159 (400
captures), the owner is 160 and the impostors 161-199, none of whom the backbone saw (the
pairwise EER of its raw embeddings on unseen identities is about 1%).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

IDENTITIES, NOISE = 200, 0.1
SEEN, BACKGROUND, OWNER, IMPOSTORS = range(60), range(60, 160), 160, range(161, 200)
CLASSES = 4


def captures(identities: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` captures of identities drawn from ``identities``: (float32 images, labels)."""
    templates = np.random.default_rng(1234).random((IDENTITIES, 28, 28, 1), dtype=np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.asarray(list(identities)), n).astype(np.int32)
    noise = NOISE * rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    return np.clip(templates[labels] + noise, 0.0, 1.0), labels


def remove_background_features(art: Path, private_key: Any) -> None:
    """Drops ``background_features.npy`` (which export writes for wider scopes) from an
    artifact and signs its manifest again: an artifact of an older exporter."""
    from export.bundle import signing

    manifest = json.loads((art / "manifest.json").read_text())
    (art / "background_features.npy").unlink()
    del manifest["files"]["background_features.npy"]
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    (art / "manifest.json").write_bytes(text)
    public = private_key.public_key()
    (art / "manifest.sig").write_bytes(signing.key_id(public) + signing.sign(private_key, text))


@pytest.fixture(scope="session")
def toy_artifact(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A signed artifact with every scope and background features (``dir``), the same without
    the features (``plain``), the public key (``pub``), and raw captures (floats in [0, 1],
    28x28x1): five of the owner to enroll (``owner``), 20 more (``owner_test``), 180 of 39
    impostors (``impostors``)."""
    import pretrain
    from export.artifact.build import build_artifact
    from export.artifact.split import split_backbone
    from export.bundle import generate_key

    tmp = tmp_path_factory.mktemp("personalize_artifact")
    splits = pretrain.train.Splits(
        *(pretrain.ArrayDataset(*captures(SEEN, n, seed), f"toy-{seed}")
          for n, seed in ((3000, 10), (100, 11), (100, 12)))
    )  # fmt: skip
    config = pretrain.make_config(
        {"model": "lenet300", "model_options": {"hidden": (64, 32), "num_classes": len(SEEN)},
         "batch_size": 32, "eval_batch_size": 100, "epochs": 3, "learning_rate": 0.05}
    )  # fmt: skip
    pretrain.fit(config, tmp / "run", progress=False, splits=splits)
    key = generate_key(tmp / "signing.key", tmp / "signing.pub")
    background, _ = captures(BACKGROUND, 400, seed=13)
    backbone = split_backbone(pretrain.load_model(tmp / "run" / "model"))
    build_artifact(
        backbone, tmp / "art", private_key=key, calibration=background[:256],
        background_images=background, background_source="toy identities 60-159", classes=CLASSES,
    )  # fmt: skip
    assert (tmp / "art" / "background_features.npy").is_file()  # export writes them
    shutil.copytree(tmp / "art", tmp / "art_plain")  # every scope, no background features
    remove_background_features(tmp / "art_plain", key)
    owner, _ = captures([OWNER], 25, seed=14)
    impostors, impostor_labels = captures(IMPOSTORS, 180, seed=15)
    shutil.rmtree(tmp / "run" / "checkpoints", ignore_errors=True)
    return {
        "dir": tmp / "art",
        "plain": tmp / "art_plain",
        "pub": tmp / "signing.pub",
        "key": key,
        "tmp": tmp,
        "owner": owner[:5],
        "owner_test": owner[5:],
        "impostors": impostors,
        "impostor_labels": impostor_labels,
    }
