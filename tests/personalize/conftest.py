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

from devices.contract import BACKGROUND_FEATURES

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
    """Drops ``background_features.xz`` (which export writes for wider scopes) from an
    artifact and has the publisher sign its manifest again: an artifact of an older exporter."""
    from export.artifact import sign_manifest

    manifest = json.loads((art / "manifest.json").read_text())
    (art / BACKGROUND_FEATURES).unlink()
    del manifest["files"][BACKGROUND_FEATURES]
    (art / "manifest.json").write_text(json.dumps(manifest))
    sign_manifest(art, private_key)


@pytest.fixture(scope="session")
def toy_artifact(tmp_path_factory: pytest.TempPathFactory, make_toy_artifact) -> dict[str, Any]:
    """A signed artifact with every scope and background features (``dir``), the same without
    the features (``plain``), the public key (``pub``), and raw captures (floats in [0, 1],
    28x28x1): five of the owner to enroll (``owner``), 20 more (``owner_test``), 180 of 39
    impostors (``impostors``)."""
    import pretrain

    tmp = tmp_path_factory.mktemp("personalize_artifact")
    splits = pretrain.train.Splits(
        *(
            pretrain.ArrayDataset(*captures(SEEN, n, seed), f"toy-{seed}")
            for n, seed in ((3000, 10), (100, 11), (100, 12))
        )
    )
    background, _ = captures(BACKGROUND, 400, seed=13)
    art = make_toy_artifact(
        tmp,
        splits,
        hidden=(64, 32),
        num_classes=len(SEEN),
        background=background,
        background_source="toy identities 60-159",
        classes=CLASSES,
    )
    assert (tmp / "art" / BACKGROUND_FEATURES).is_file()  # export writes them
    shutil.copytree(tmp / "art", tmp / "art_plain")  # every scope, no background features
    remove_background_features(tmp / "art_plain", art["key"])
    owner, _ = captures([OWNER], 25, seed=14)
    impostors, impostor_labels = captures(IMPOSTORS, 180, seed=15)
    return {
        "dir": tmp / "art",
        "plain": tmp / "art_plain",
        "pub": tmp / "signing.pub",
        "key": art["key"],
        "tmp": tmp,
        "owner": owner[:5],
        "owner_test": owner[5:],
        "impostors": impostors,
        "impostor_labels": impostor_labels,
    }
