"""``export build``: a trained backbone -> a signed artifact directory the phone downloads.

Files of an artifact (format ``pocketfit-artifact/1``):
  ``model.tflite``    every device operation as a signature (see ``convert``), builtins only;
                      in an int8 artifact the wider scopes start from the int8 weights (their
                      kernels stored int8 + per-channel scales, dequantized once on load);
  ``background.npy``  float16 embeddings of background people (synthetic or public only) for
                      on-device threshold calibration;
  ``background_features.xz``  with a wider scope than ``head``: front features of the same
                      background people (the ``features`` output of the int8 ``embed``), the
                      negatives and calibration set of the wider scopes on the device, as a
                      float16 codebook and XZ-compressed codes (:mod:`devices.coded_features`);
  ``backbone.pfb``    optional: the backbone as a Deep Compression bundle (the OTA form);
  ``manifest.json``   what the device needs to know, with the SHA-256 of every file above;
  ``manifest.sig``    8-byte signer key id + 64-byte Ed25519 signature of ``manifest.json``.

The device verifies ``manifest.sig`` against a key it already trusts, then each file's hash,
before any byte reaches the interpreter (``personalize.load_artifact``).

Manifest fields the device reads: ``format``, ``input`` (shape, dtype, ``preprocess``: the
``devices.preprocess`` spec; ``views`` when set: the test-time views each capture is embedded as,
``devices.views``; ``flip_average``, which older artifacts carry, is the mirror view alone),
``embedding_dim``, ``embed_precision``, ``head``, ``variables``, ``scopes`` (signature, input,
trained variables, ``trainable_params``), ``signatures``, ``memory_peak_bytes`` (per device
profile and signature), ``background`` (file, count, dtype, ``source``: which people), ``ota``
(null, or the bundle's file, bytes, ``float_backbone_bytes`` and ``ratio``) and ``files``. ``source`` is provenance only (model name and directory, the
calibration images, the bundle signer's key id when a bundle is shipped).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from devices import coded_features, localiser, npy
from devices.bundle.download import compact_background as compact_background_rows
from devices.bundle.download import expand_background
from devices.contract import (
    BACKGROUND,
    BACKGROUND_FEATURES,
    BACKGROUND_MINUTIAE,
    EMBED,
    EMBEDDINGS,
    FEATURES,
    FORMAT,
    IMAGES,
    MANIFEST,
    MODEL,
    OTA,
    SIGNATURE,
    tensor_name,
    train_input,
    train_signature,
)
from devices.files import atomic_write, atomic_write_dir
from devices.planner import plan_signature
from devices.print_minutiae import PrintSet, fusion_entry, prints_bytes
from devices.profiles import load_profile, profile_names
from devices.tflite_file import read_model_stats
from devices.views import SINGLE, TestViews, embed_views
from export.artifact.convert import build_tflite, contract
from export.artifact.head import HeadConfig
from export.artifact.layers import artifact_graph
from export.artifact.scopes import check_scopes, initial_variables, trained
from export.artifact.split import Backbone
from export.bundle import signing


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def embed_batches(
    model: bytes, images: np.ndarray, batch: int = 64, output: str = EMBEDDINGS
) -> np.ndarray:
    """Runs the artifact's ``embed`` signature over ``images`` in the LiteRT interpreter and
    returns its ``output`` (``embeddings``, or ``features`` when the artifact has wider scopes)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=model).get_signature_runner(EMBED)
    out = [
        runner(**{IMAGES: np.asarray(images[i : i + batch], np.float32)})[output]
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(out)


def make_manifest(
    backbone: Backbone,
    head: HeadConfig,
    scopes: Sequence[str],
    files: dict[str, bytes],
    *,
    int8: bool,
    train_batch: int,
    source: dict[str, Any],
    background: dict[str, Any],
    ota: dict[str, Any] | None,
    views: TestViews = SINGLE,
) -> dict[str, Any]:
    """The manifest: contract, preprocessing, scopes, memory plan, background, file hashes."""
    initial_shapes = {n: list(s) for n, s in _variable_shapes(backbone, head, scopes).items()}
    sigs = contract(backbone, head, scopes, initial_shapes)
    graph = artifact_graph(
        backbone,
        head,
        scopes,
        sigs,
        name=source["name"],
        embed_bits=8 if int8 else 32,
        train_batch=train_batch,
    )
    # the planner charges the file's nodes, dynamic tensors and scratch (what the device's
    # planner charges too, and what bench-devices validates)
    stats = read_model_stats(files[MODEL])
    memory = {}
    for name in profile_names():
        profile = load_profile(name)
        memory[name] = {
            s.name: plan_signature(
                graph, s, profile, model_bytes=len(files[MODEL]), model_stats=stats
            ).peak_bytes
            for s in graph.signatures
        }
    return {
        "format": FORMAT,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "source": source,
        "input": {
            "shape": list(backbone.input_shape),
            "dtype": "float32",
            "preprocess": backbone.preprocess.to_dict(),
            **localiser.pin(backbone.preprocess),
            **({"views": views.to_dict()} if views != SINGLE else {}),
        },
        "embedding_dim": head.embedding_dim,
        "embed_precision": "int8" if int8 else "float32",
        "head": {"kind": "cosine", "classes": head.classes, "scale": head.scale},
        "variables": {
            n: {"shape": s, "dtype": "float32", "tensor": tensor_name(n)}
            for n, s in initial_shapes.items()
        },
        "scopes": {
            scope: {
                "signature": train_signature(scope),
                "input": train_input(scope),
                "trains": trained(backbone, scope),
                "trainable_params": int(
                    sum(np.prod(initial_shapes[n]) for n in trained(backbone, scope))
                ),
            }
            for scope in scopes
        },
        "signatures": {
            s.name: {"kind": s.kind, "scope": s.scope, "inputs": s.inputs, "outputs": s.outputs}
            for s in sigs
        },
        "memory_peak_bytes": memory,
        "train_batch_planned": train_batch,
        "graph": graph.to_dict(),
        "background": background,
        "ota": ota,
        "files": {
            name: {"sha256": _sha256(data), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
    }


def _variable_shapes(
    backbone: Backbone, head: HeadConfig, scopes: Sequence[str]
) -> dict[str, tuple[int, ...]]:
    zeros = np.zeros((head.embedding_dim, head.classes), np.float32)
    return {n: tuple(v.shape) for n, v in initial_variables(backbone, zeros, scopes).items()}


def build_artifact(
    backbone: Backbone,
    out: str | os.PathLike[str],
    *,
    private_key: Any,
    calibration: np.ndarray,
    background_images: np.ndarray,
    background_source: str,
    scopes: Sequence[str] = ("head", "head_biases", "last_block"),
    classes: int = 8,
    scale: float = 16.0,
    int8: bool = True,
    train_batch: int = 5,
    bundle: bytes | None = None,
    source: dict[str, Any] | None = None,
    background_levels: int | None = None,
    views: TestViews = SINGLE,
    background_prints: PrintSet | None = None,
) -> dict[str, Any]:
    """Builds, signs and writes an artifact directory; returns its manifest.

    Args:
      backbone: the cut backbone (``split_backbone``).
      out: the artifact directory; replaced only once the new one is complete.
      private_key: Ed25519 signing key (``export.bundle.load_private_key``).
      calibration: preprocessed pretraining images for int8 calibration.
      background_images: preprocessed images of background people for threshold calibration
        (never the users'; synthetic or public people only).
      background_source: where those people come from, recorded in the manifest.
      scopes: training scopes to export (``head`` always).
      classes: head class slots.
      scale: cosine logit scale.
      int8: full-integer ``embed``.
      train_batch: batch the memory plan assumes for a train step.
      bundle: the backbone's ``.pfb`` bytes, shipped as the OTA form.
      source: provenance (model directory, hashes) recorded in the manifest.
      background_levels: store the background embeddings on a grid, ``q`` in
        -levels..levels times a power of two per row (float16 in the file, exactly;
        :func:`devices.bundle.download.compact_background`), so a download carries them as
        small integers; None: plain float16.
      views: the test-time views the device embeds each capture as, averaging their
        embeddings (:mod:`devices.views`; manifest ``input.views``), and the background
        embeddings are made so too; the front features the wider scopes train on stay one
        view's, the capture's own, for the background as on the device.
      background_prints: fingerprints: the background people's minutiae and masks, row for
        row ``background_images`` (:func:`export.artifact.fusion.background_prints`), shipped
        as ``background_minutiae.npz`` with the manifest's ``minutiae`` entry (the fusion's
        weight and the detector weights' SHA-256; :mod:`devices.print_minutiae`).
    """
    if background_prints is not None and background_prints.size != len(background_images):
        raise ValueError(
            f"{background_prints.size} background prints for {len(background_images)} images."
        )
    scopes = check_scopes(scopes)
    head = HeadConfig(backbone.embedding_dim, classes, scale)
    kernel = np.zeros(
        (backbone.embedding_dim, classes), np.float32
    )  # empty slots; imprinted on device
    initial = initial_variables(backbone, kernel, scopes)
    batches = [calibration[i : i + 16] for i in range(0, len(calibration), 16)]
    model = build_tflite(backbone, head, scopes, initial, int8=int8, calibration=batches)
    embeddings = embed_views(lambda x: embed_batches(model, x), background_images, views, chunk=256)
    if background_levels is not None:
        embeddings = expand_background(*compact_background_rows(embeddings, background_levels))
    else:
        embeddings = embeddings.astype(np.float16)
    files = {MODEL: model, BACKGROUND: npy.to_bytes(embeddings)}
    if any(scope != "head" for scope in scopes):
        features = embed_batches(model, background_images, output=FEATURES)
        files[BACKGROUND_FEATURES] = coded_features.encode(features)
    if background_prints is not None:
        files[BACKGROUND_MINUTIAE] = prints_bytes(background_prints)
    float_bytes = backbone.float_bytes
    ota = None
    if bundle is not None:
        files[OTA] = bundle
        ota = {
            "file": OTA,
            "bytes": len(bundle),
            "float_backbone_bytes": float_bytes,
            "ratio": float_bytes / len(bundle),
        }
    manifest = make_manifest(
        backbone,
        head,
        scopes,
        files,
        int8=int8,
        train_batch=train_batch,
        views=views,
        source={"name": Path(out).name, **(source or {})},
        background={
            "file": BACKGROUND,
            "count": len(embeddings),
            "dtype": "float16",
            **({"levels": background_levels} if background_levels is not None else {}),
            "source": background_source,
        },
        ota=ota,
    )
    if background_prints is not None:
        manifest["minutiae"] = fusion_entry(background_prints.size)
    write_artifact(out, files, manifest, private_key)
    return manifest


def write_artifact(
    out: str | os.PathLike[str], files: dict[str, bytes], manifest: dict[str, Any], private_key: Any
) -> Path:
    """Writes an artifact folder: ``files`` and the signed manifest, swapped in as one folder
    (:func:`devices.files.atomic_write_dir`: a killed writer leaves the old artifact or the new)."""
    return atomic_write_dir(
        out, {**files, **signed_manifest(manifest, private_key)}, marker=MANIFEST
    )


def signed_manifest(manifest: dict[str, Any], private_key: Any) -> dict[str, bytes]:
    """``manifest.json`` and ``manifest.sig`` (signer key id + Ed25519 signature) as bytes."""
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    signature = signing.key_id(private_key.public_key()) + signing.sign(private_key, text)
    return {MANIFEST: text, SIGNATURE: signature}


def sign_manifest(directory: str | os.PathLike[str], private_key: Any) -> dict[str, Any]:
    """Signs an artifact directory's ``manifest.json`` again (after a publisher edits what it
    lists, e.g. drops a file); returns the manifest."""
    base = Path(directory)
    manifest = json.loads((base / MANIFEST).read_text())
    for name, data in signed_manifest(manifest, private_key).items():
        atomic_write(base / name, data)
    return manifest
