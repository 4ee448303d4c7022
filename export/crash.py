"""Crash injection targets of the server's writers of bundles and artifacts (run by
:func:`devices.crash.crash`).

``bundle_write``: a ``.pfb`` replaced by another (:func:`export.bundle.write_bundle`), read back
with :func:`export.bundle.read_bundle`; ``artifact_write``: an artifact folder replaced by a newer
one (:func:`export.artifact.write_artifact`, the last step of ``export build``), read back with
the device's :func:`personalize.load_artifact`; ``artifact_resign``: an artifact's manifest signed
again by the publisher's next key (:func:`export.artifact.sign_manifest`). The seeds are the committed bundles and the
committed ``lenet300`` artifact, re-signed with a key made for the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from devices.contract import MANIFEST, SIGNATURE, ArtifactError
from devices.crash import CrashTarget
from devices.files import atomic_write_dir
from export.artifact.build import sign_manifest, write_artifact
from export.bundle.fuzz import resign
from export.bundle.io import read_bundle, write_bundle
from personalize.crash import SEED_ARTIFACT, artifact_state, artifact_versions

RESULTS = Path(__file__).resolve().parents[1] / "notebooks/results"


def _flat(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(tree, dict):
        return {
            k: v for name, sub in tree.items() for k, v in _flat(sub, f"{prefix}/{name}").items()
        }
    return {prefix: np.asarray(tree)}


def _bundle_targets(key: Any) -> dict[str, CrashTarget]:
    public = key.public_key()
    blobs = [
        resign((RESULTS / f"bundles/{m}.pfb").read_bytes(), key) for m in ("lenet5", "lenet300")
    ]
    params = [_flat(read_bundle(b, public_key=public).params) for b in blobs]

    def state(folder: Path) -> str:
        found = _flat(read_bundle(folder / "model.pfb", public_key=public).params)
        for name, expected in zip(("old", "new"), params, strict=True):
            if found.keys() == expected.keys() and all(
                np.array_equal(found[k], expected[k]) for k in found
            ):
                return name
        return "a bundle that is neither"

    return {
        "bundle_write": CrashTarget(
            lambda f: write_bundle(f / "model.pfb", blobs[0]),
            lambda f: write_bundle(f / "model.pfb", blobs[1]),
            state,
        )
    }


def _artifact_targets(key: Any) -> dict[str, CrashTarget]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    source = Path(os.environ.get("POCKETFIT_FUZZ_ARTIFACT", SEED_ARTIFACT))
    old, new = artifact_versions(source, key)
    manifest = json.loads(new[MANIFEST])
    files = {k: v for k, v in new.items() if k not in (MANIFEST, SIGNATURE)}

    rotated = ed25519.Ed25519PrivateKey.generate()  # the publisher's next key

    def resign_state(folder: Path) -> str:
        try:
            return "old" if artifact_state(folder / "artifact", key.public_key()) == "new" else "?"
        except ArtifactError:  # not the old signature: it must be the new one, on the same files
            found = artifact_state(folder / "artifact", rotated.public_key())
            return "new" if found == "new" else found

    return {
        "artifact_write": CrashTarget(
            lambda f: atomic_write_dir(f / "artifact", old, marker=MANIFEST),
            lambda f: write_artifact(f / "artifact", files, manifest, key),
            lambda f: artifact_state(f / "artifact", key.public_key()),
        ),
        "artifact_resign": CrashTarget(
            lambda f: atomic_write_dir(f / "artifact", new, marker=MANIFEST),
            lambda f: sign_manifest(f / "artifact", rotated),
            resign_state,
        ),
    }


def targets(workdir: Path) -> dict[str, CrashTarget]:
    """The bundle and artifact writers (``workdir`` is unused: the seeds are committed files)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    return {**_bundle_targets(key), **_artifact_targets(key)}
