"""The download a phone installs: the compressed backbone's artifact, rebuilt from one ``.pfb``.

:func:`compressed_backbone` turns an OTA bundle (pruned, k-means shared, Huffman coded) into the
backbone the artifact is built from: its decoded kernels on their int8 grid
(:func:`devices.bundle.grid.snap`), so the int8 ``embed`` the converter writes holds exactly the
decoded weights. :func:`export_download` is the whole path from a saved model: whiten, compress
on the embedding task, build the artifact from the compressed backbone, pack it into one signed
download (:func:`export.bundle.download.build_download`); :func:`artifact_from_bundle` is its
last part, for a bundle that is already made.

Example:
  >>> result = export_download("notebooks/results/models/embed_face_lfw", "runs/face_download",
  ...                          private_key=key, key=jax.random.key(0))
  >>> result.download_bytes, result.files
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from devices.bundle.errors import BundleError
from devices.bundle.grid import snap
from devices.files import atomic_write
from devices.print_minutiae import PrintSet
from devices.views import SINGLE, TestViews
from export.artifact.build import build_artifact
from export.artifact.fusion import background_prints
from export.artifact.ota import OtaRecipe, OtaResult, compress_backbone, recipe_for
from export.artifact.pipeline import (
    calibrate_to_sensor,
    fit_whitening,
    shown_path,
    views_by_default,
    whitens_by_default,
)
from export.artifact.sensor import check_calibration
from export.artifact.sources import Sources, data_sources
from export.artifact.split import Backbone, split_backbone, training_dataset
from export.artifact.whiten import fold_whitening
from export.bundle import read_bundle
from export.bundle.download import DOWNLOAD_FILES, OPTIONAL_FILES, as_coded, build_download

BACKGROUND_LEVELS = 15
"""The download's background values: ``q`` in -15..15 (5 bits) times a power of two per row.
Chosen on the LFW development people (the LFW backbone, whitened; 1,000 background people; each
dev person's 5-shot template, its threshold from :func:`personalize.threshold.threshold_at_far`
against the background): the mean threshold moved by 0.0069 at FAR 2e-5 (0.0021 at 127 levels,
0.0050 at 31, 0.0125 at 7), against 0.048 between thresholds set on either half of the
background (its sampling noise); dev FRR at FAR 1e-2 51.62% vs 51.71% with the float16
background. 1,000 rows x 128 cost about 70 KB instead of 256 KB (float16)."""

BACKGROUND_LEVELS_BY_DATASET = {"lfw_yale_b": 9}
"""Coarser grids per training dataset, chosen on its development people. LFW faces (the
``embed_face_lfw`` backbone compressed by ``export.artifact.ota.FACE_LFW``; each LFW dev person's
5-shot template, its per-user threshold by the device's tail rule on the background's held-out
half, FAR measured on the other fold of dev people; ``bench_enroll_far``'s ``tail`` rule): at 9
levels (q in -9..9) the FAR over the target was 1.36 / 0.48 / 0 / 0 at targets 1e-2 / 1e-3 /
1e-4 / 2e-5 against 1.33 / 0.52 / 0 / 0 at 15 levels and FRR within 0.15 point at each, while
the background's record shrinks from 69,842 to 59,446 bytes; at 7 levels the FAR rose (1.45 /
0.57 / 0.13 / 0). ``python notebooks/bench/bench_enroll_far.py --grids 15 9 7 5 --name
background_grid`` -> notebooks/results/background_grid.json. The 10 KB keep the face download 10x smaller than the official recipe's model
rebuilt natively in Keras (issue 17) with the backbone compressed as the dev people chose."""


def background_levels_for(dataset: str) -> int:
    """The download's background grid for a backbone trained on ``dataset``."""
    return BACKGROUND_LEVELS_BY_DATASET.get(dataset, BACKGROUND_LEVELS)


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_leaves(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = np.asarray(value)
    return out


def _on_grid(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: _on_grid(v) if isinstance(v, Mapping) else (snap(v).weights if k == "kernel" else v)
        for k, v in tree.items()
    }


def compressed_backbone(backbone: Backbone, bundle: bytes, public_key: Any) -> Backbone:
    """``backbone`` with the bundle's decoded weights, kernels on their int8 grid.

    Raises:
      BundleError: the bundle is unverified, or lacks or reshapes a tensor of the backbone.
    """
    decoded = read_bundle(bundle, public_key=public_key).params

    def take(part: Mapping[str, Any]) -> dict[str, Any]:
        missing = sorted(set(_leaves(part)) - set(_leaves(decoded)))
        if missing:
            raise BundleError(f"the bundle lacks {len(missing)} backbone tensor(s): {missing[0]}.")
        return _on_grid({k: decoded[k] for k in part})

    return backbone._replace(
        front_params=take(backbone.front_params), last_params=take(backbone.last_params)
    )


class DownloadResult(NamedTuple):
    """What :func:`export_download` made.

    Attributes:
      bundle: the download's bytes (written to ``<out>.pfb`` when asked).
      files: the artifact's files, as the device rebuilds them.
      manifest: the artifact's manifest.
      backbone: the compressed backbone (kernels on their int8 grid, whitening and any sensor
        calibration folded in).
      float_backbone: the same backbone uncompressed, with the same folds (the reference).
      ota: the compression run (its weights bundle, history, recipe).
      whitening: the manifest's record of the whitener.
      sources: the calibration and background images the artifact was built with.
    """

    bundle: bytes
    files: dict[str, bytes]
    manifest: dict[str, Any]
    backbone: Backbone
    float_backbone: Backbone
    ota: OtaResult
    whitening: dict[str, Any] | None
    sources: Sources


def export_download(
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    private_key: Any,
    key: jax.Array,
    recipe: OtaRecipe | None = None,
    scopes: Sequence[str] = ("head",),
    background: int = 1000,
    background_levels: int | None = None,
    bundle_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    views: TestViews | None = None,
    ota: OtaResult | None = None,
    sensor_captures: Sequence[np.ndarray] | None = None,
    minutiae: bool = False,
) -> DownloadResult:
    """Saved model -> (whitened,) compressed backbone -> signed artifact in ``out`` (+ download).

    The backbone is whitened when :func:`export.artifact.pipeline.whitens_by_default` says so.

    Args:
      model_dir: a saved EmbedNet (``pretrain.save_model``).
      out: the artifact directory (written atomically).
      private_key: Ed25519 key signing artifact and bundle.
      key: PRNG key of the compression's retraining.
      recipe: the compression recipe (default: the one registered for the training dataset).
      scopes: training scopes; only a head-only artifact packs into a download (wider scopes
        ship front features), so with wider scopes ``bundle`` is empty.
      background: background people embedded (the device's threshold impostors).
      background_levels: their values' levels, ``q`` in -levels..levels per row times a
        power of two (default: :func:`background_levels_for` the training dataset).
      bundle_path: where to write the download bundle too.
      progress: progress bars.
      views: the test-time views the device embeds every capture as (see
        :func:`export.artifact.build_artifact`); default
        :func:`export.artifact.pipeline.views_by_default`.
      ota: a compression of this backbone by ``recipe`` made before (:func:`load_ota` of what
        :func:`save_ota` kept, e.g. the dev search's): shipped as is, not compressed again; its
        bundle must verify against ``private_key`` and decode onto this backbone.
      sensor_captures: unlabeled captures from the sensor the download is for (people other
        than its users): the direction they share is projected out of the embedding after the
        whitener and before compression (:func:`export.artifact.pipeline.calibrate_to_sensor`).
        Not with ``ota``: a compression made before the calibration would ship the uncalibrated
        backbone.
      minutiae: fingerprints: ship the background people's prints for the fusion of the
        embedding with the minutiae score (:mod:`devices.print_minutiae`), in the artifact and
        the download (about 56 KB for 200 people); off by default until the device's default
        fuses.

    Raises:
      ValueError: ``ota`` was made by another recipe.
      SensorCalibrationError: too few or unusable ``sensor_captures``, or with ``ota``.
    """
    if sensor_captures is not None:
        made_before = None if ota is None else "compression"
        sensor_captures = check_calibration(sensor_captures, made_before=made_before)
    import pretrain

    saved = pretrain.load_model(model_dir)
    recipe = recipe or recipe_for(saved)
    if ota is not None and ota.recipe != json.loads(json.dumps(recipe.to_dict())):
        raise ValueError(
            f"the saved compression was made by the recipe {ota.recipe}, not {recipe.to_dict()}."
        )
    if background_levels is None:
        background_levels = background_levels_for(training_dataset(saved) or "")
    if views is None:
        views = views_by_default(saved)
    backbone = split_backbone(saved)
    sources = data_sources(saved, background=background)
    whitening = None
    if whitens_by_default(saved, backbone):
        w, whitening = fit_whitening(backbone, sources)
        whitening["bundle"] = "the compressed backbone is the whitened one (fold, then compress)"
        backbone = fold_whitening(backbone, w)
    sensor = None
    if sensor_captures is not None:
        backbone, sensor = calibrate_to_sensor(backbone, saved, sensor_captures)
    if ota is None:
        start = {**backbone.front_params, **backbone.last_params}
        ota = compress_backbone(
            saved, private_key=private_key, recipe=recipe, key=key, start=start, progress=progress
        )
    compressed = compressed_backbone(backbone, ota.bundle, private_key.public_key())
    manifest, files, blob = artifact_from_bundle(
        compressed,
        ota.bundle,
        out,
        private_key=private_key,
        sources=sources,
        scopes=scopes,
        background_levels=background_levels,
        views=views,
        codebook_dtype="float16" if recipe.float16 else "float32",
        background_prints=background_prints(sources, progress=progress) if minutiae else None,
        source={
            "model_dir": shown_path(Path(model_dir)),
            "model": backbone.name,
            "calibration": f"{len(sources.calibration)} images: {sources.calibration_source}",
            "whitening": whitening,
            **({"sensor_calibration": sensor} if sensor else {}),
            "compression": {
                "method": "Deep Compression retrained on the embedding task "
                "(export.artifact.ota), kernels on their int8 grid (devices.bundle.grid)",
                "recipe": ota.recipe,
            },
        },
    )
    if blob and bundle_path is not None:
        atomic_write(bundle_path, blob)
    return DownloadResult(blob, files, manifest, compressed, backbone, ota, whitening, sources)


def artifact_from_bundle(
    compressed: Backbone,
    bundle: bytes,
    out: str | os.PathLike[str],
    *,
    private_key: Any,
    sources: Sources,
    source: dict[str, Any],
    scopes: Sequence[str] = ("head",),
    background_levels: int = BACKGROUND_LEVELS,
    views: TestViews = SINGLE,
    codebook_dtype: str = "float16",
    bundle_key: Any = None,
    background_prints: PrintSet | None = None,
) -> tuple[dict[str, Any], dict[str, bytes], bytes]:
    """The signed artifact in ``out`` of ``compressed`` (:func:`compressed_backbone` of
    ``bundle``) with ``sources``' calibration and background people, and its download.

    Args:
      scopes: training scopes; only a head-only artifact packs into a download.
      source: the manifest's record of where the backbone came from.
      bundle_key: the public key that signed ``bundle`` (default ``private_key``'s).
      background_prints: fingerprints: the background people's prints for the fusion
        (:func:`export.artifact.fusion.background_prints`), shipped in artifact and download.

    Returns:
      ``(manifest, files, download)``: the artifact's manifest and files, and the download's
      bytes (empty when ``scopes`` are wider than the head).
    """
    manifest = build_artifact(
        compressed,
        out,
        private_key=private_key,
        calibration=sources.calibration,
        background_images=sources.background,
        background_source=sources.background_source,
        scopes=scopes,
        background_levels=background_levels,
        views=views,
        source=source,
        background_prints=background_prints,
    )
    files = {p.name: p.read_bytes() for p in sorted(Path(out).iterdir()) if p.is_file()}
    blob = b""
    if set(files) - set(OPTIONAL_FILES) == set(DOWNLOAD_FILES):
        blob = pack_download(
            files,
            compressed,
            bundle,
            private_key=private_key,
            codebook_dtype=codebook_dtype,
            bundle_key=bundle_key,
        )
    return manifest, files, blob


def pack_download(
    files: Mapping[str, bytes],
    compressed: Backbone,
    bundle: bytes,
    *,
    private_key: Any,
    codebook_dtype: str = "float16",
    bundle_key: Any = None,
) -> bytes:
    """The download of a head-only artifact's ``files`` built from ``compressed``
    (:func:`compressed_backbone` of ``bundle``), signed by ``private_key``; ``bundle_key``: the
    public key that signed ``bundle`` (default ``private_key``'s)."""
    leaves = _leaves({**compressed.front_params, **compressed.last_params})
    signer = bundle_key if bundle_key is not None else private_key.public_key()
    decoded = _leaves(read_bundle(bundle, public_key=signer).params)
    kernels = {n: as_coded(decoded[n]) for n in leaves if n.endswith("kernel")}
    return build_download(
        files,
        kernels,
        model=compressed.name,
        private_key=private_key,
        codebook_dtype=codebook_dtype,
    )
