"""``python -m export build``: a saved model directory -> a signed artifact directory, in one call.

Steps (one progress bar): read and cut the model, gather the calibration and background images
of its training dataset (:mod:`export.artifact.sources`), check the OTA bundle against the
backbone, whiten the embedding on people outside training and evaluation
(:mod:`export.artifact.whiten`, folded into the last layer), convert (int8 ``embed`` + float
training scopes), sign and write.

Example:
  >>> from export.artifact.pipeline import export_model
  >>> manifest = export_model("notebooks/results/models/embed_face", "runs/art/face",
  ...                         scopes=("head", "last_block"))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from devices.contract import MANIFEST
from devices.files import check_replaceable
from devices.views import FLIP, SINGLE, TestViews
from export.artifact.build import build_artifact
from export.artifact.fusion import background_prints
from export.artifact.scopes import check_scopes
from export.artifact.sensor import (
    SensorCalibrationError,
    check_calibration,
    check_captures,
    sensor_projection,
)
from export.artifact.sources import Sources, data_sources
from export.artifact.split import Backbone, preprocess_of, split_backbone, training_dataset
from export.artifact.whiten import EPS, UNWHITENED, can_whiten, fold_whitening, whitener
from export.bundle import BundleError, read_bundle, signing


def signing_key(path: str | os.PathLike[str], *, create: bool = False) -> Any:
    """The Ed25519 private key at ``path``; created there (mode 0600) only when ``create``.

    Raises:
      BundleError: no key at ``path`` and not ``create`` (the message says how to make one), or
        the key is unreadable or readable by others.
    """
    file = Path(path).expanduser()
    if not file.exists():
        if not create:
            raise BundleError(
                f"signing key {file} not found; create it with `python -m export keygen "
                f"--private {file} --public signing.pub`, or pass --new-key to build."
            )
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            signing.generate_key(file, Path(tmp) / signing.PUBLIC_KEY_NAME)
    return signing.load_private_key(file)


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when below it (no machine paths in manifests)."""
    relative = os.path.relpath(path.resolve())
    return str(path.resolve()) if relative.startswith("..") else relative


def _flat(tree: Any, prefix: str = "") -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "/"))
        else:
            out[name] = tuple(np.shape(value))
    return out


def check_bundle(data: bytes, backbone: Backbone, public_key: Any) -> dict[str, Any]:
    """Verifies a ``.pfb`` and checks it holds this backbone; returns the manifest's ``ota`` facts.

    Raises:
      BundleError: unreadable, not signed by ``public_key``, another model, or other shapes.
    """
    bundle = read_bundle(data, public_key=public_key)
    if bundle.model != backbone.name:
        raise BundleError(
            f"the bundle holds a {bundle.model!r}, the backbone is {backbone.name!r}."
        )
    want = _flat({**backbone.front_params, **backbone.last_params})
    have = _flat(bundle.params)
    wrong = sorted(k for k in want if have.get(k) != want[k])
    if wrong:
        raise BundleError(
            f"the bundle does not hold this backbone: {len(wrong)} tensor(s) missing or of "
            f"another shape, e.g. {wrong[0]} (backbone {want[wrong[0]]}, bundle "
            f"{have.get(wrong[0], 'missing')})."
        )
    float_bytes = 4 * sum(int(np.prod(s)) for s in want.values())
    return {
        "bytes": bundle.nbytes,
        "float_backbone_bytes": float_bytes,
        "ratio": float_bytes / bundle.nbytes,
        "key_id": bundle.key_id,
    }


FLIP_AVERAGED = {
    "lfw_yale_b": "LFW dev people (120, never trained on), the face artifact's int8 embed, the "
    "device's default flow (imprinting, mix 0.5 of head and nearest template), 5 random "
    "splits: 5-shot identification 45.58 -> 46.75% (+0.6 to +1.7 on every split), 3-shot "
    "37.91 -> 39.08%, 1-shot 22.47 -> 23.36% (bench_enroll_select.py --only imprint "
    "--episodes 5 [--one-view]: notebooks/results/enroll_selection_flip.json and "
    "enroll_selection_oneview.json at a02ad07); on the float model dev EER 21.97 -> 21.52% "
    "(pretrain/configs/embed_face_lfw.py); the wider backbone that replaced it "
    "(pretrain/configs/embed_face_wide.py) again on its float model: dev EER 16.20 -> 15.46%, "
    "5-shot 63.2 -> 66.4% (notebooks/results/embedding_face_variants.json)",
}
"""Training datasets whose artifacts embed each capture with its mirror by default (faces: a
face and its mirror are the same person; prints and digits are not symmetric), with the
development-set measurement that chose it."""


def views_by_default(saved: Any) -> TestViews:
    """The test-time views an export of ``saved`` embeds each capture as unless told: the
    saved model's own (``model_options.test_views``, which bench-embed writes from its config's
    evaluation options, chosen there on development people), else flip averaging when the model
    says it runs so (``model_options.flip_average``) or its training dataset is in
    :data:`FLIP_AVERAGED`, else the capture alone."""
    options = saved.info.get("model_options", {})
    if options.get("test_views"):
        return TestViews.from_dict(options["test_views"])
    if options.get("flip_average") or training_dataset(saved) in FLIP_AVERAGED:
        return FLIP
    return SINGLE


def whitens_by_default(saved: Any, backbone: Backbone) -> bool:
    """Whether an export whitens ``backbone`` unless told: when it can, except for the training
    datasets in :data:`export.artifact.whiten.UNWHITENED` (measured there)."""
    return can_whiten(backbone) and training_dataset(saved) not in UNWHITENED


def fit_whitening(
    backbone: Backbone, sources: Sources, eps: float = EPS
) -> tuple[np.ndarray, dict[str, Any]]:
    """The whitener of ``backbone``'s float embeddings of the dataset's whitening people (the
    background's images where it names none), and the manifest's record of it."""
    drawn = sources.whitening_images()
    if drawn is not None:
        images, where = drawn, sources.whitening_source
    else:
        images, where = sources.background, f"the background images: {sources.background_source}"
    record = {
        "kind": "ZCA whitening of the unit embeddings (second moments, no centring), folded "
        "into the last/embed kernel and bias",
        "fit_on": f"{len(images)} images, {where}",
        "eps": eps,
        "bundle": "an OTA .pfb holds the backbone before the fold",
    }
    return whitener(backbone.embeddings(images), eps), record


def calibrate_to_sensor(
    backbone: Backbone, saved: Any, captures: Sequence[np.ndarray]
) -> tuple[Backbone, dict[str, Any]]:
    """``backbone`` with the direction ``captures`` share projected out of its embedding
    (:mod:`export.artifact.sensor`), and the manifest's record. The captures are raw, as the
    device receives them: preprocessed by the model's spec (their first registration windows)
    and embedded in float by ``backbone`` (after any fold already in it).

    Raises:
      SensorCalibrationError: too few captures or ones that are not images.
      WhiteningError: a backbone without a normalised ``embed`` layer to fold into.
    """
    return fold_to_sensor(backbone, sensor_inputs(saved, captures))


def fold_to_sensor(backbone: Backbone, inputs: np.ndarray) -> tuple[Backbone, dict[str, Any]]:
    """:func:`calibrate_to_sensor` on captures already made model inputs (:func:`sensor_inputs`)."""
    p, record = sensor_projection(backbone.embeddings(inputs))
    return fold_whitening(backbone, p), record


def sensor_inputs(saved: Any, captures: Sequence[np.ndarray]) -> np.ndarray:
    """The model inputs of raw sensor ``captures``, through the device's own gate
    (:func:`personalize.check_image`): captures the device would refuse (too small for the model
    input, blank, saturated, not an image) would calibrate the artifact to images it never sees.

    Raises:
      SensorCalibrationError: too few captures, or the first the device refuses and why.
    """
    from personalize import QualityError, check_image

    images, spec = check_captures(captures), preprocess_of(saved)
    try:
        return np.stack([check_image(image, spec, i) for i, image in enumerate(images)])
    except QualityError as err:
        raise SensorCalibrationError(
            f"cannot preprocess the sensor captures: capture {err.index}: {err.reason}; the "
            "device refuses such images, so they cannot calibrate its artifact."
        ) from None


def export_model(
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    scopes: Sequence[str] = ("head",),
    bundle: str | os.PathLike[str] | None = None,
    bundle_key: Any = None,
    private_key: Any = None,
    int8: bool = True,
    classes: int = 8,
    calibration: int = 256,
    background: int = 200,
    whiten: bool | None = None,
    views: TestViews | None = None,
    sensor_captures: Sequence[np.ndarray] | None = None,
    progress: bool = True,
    minutiae: bool = False,
) -> dict[str, Any]:
    """Builds the signed artifact of the model saved in ``model_dir`` into ``out``.

    Args:
      model_dir: a directory written by ``pretrain.save_model`` (a model with a ``part`` option).
      out: the artifact directory (replaced atomically).
      scopes: training scopes (``head`` always; ``head_biases``, ``last_block`` for devices with
        room).
      bundle: the backbone's ``.pfb`` (the OTA form).
      bundle_key: public key the bundle must be signed with (path, PEM or key); default: the
        public half of ``private_key``.
      private_key: Ed25519 key; default ``~/.config/pocketfit/signing.key`` (created if missing).
      int8: full-integer ``embed`` (False: float32, for comparison).
      classes: head class slots.
      calibration: int8 calibration images from the pretraining data.
      background: background-people images embedded into ``background.npy``.
      whiten: fold a whitener fitted on float embeddings of the dataset's whitening people
        (:func:`fit_whitening`) into the embedding layer; default: when the backbone has
        one (EmbedNet), not for LeNets, not for the datasets whose development people it did
        not help (:func:`whitens_by_default`).
      views: the test-time views the device embeds every capture as
        (:func:`export.artifact.build_artifact`); default :func:`views_by_default`.
      sensor_captures: raw captures from the sensor the artifact is for, of people other than
        its users, unlabeled: the direction they share is projected out of the embedding
        (:mod:`export.artifact.sensor`, folded after the whitener). Not with ``bundle``: a
        bundle made before the calibration would install another backbone.
      progress: show a progress bar.
      minutiae: fingerprints: ship the background people's prints for the fusion of the
        embedding with the minutiae score (:mod:`devices.print_minutiae`; a Device fuses only
        with ``MatchConfig(minutiae=True)``); off by default until the device's default fuses
        (``notebooks/results/fingerprint_ablation.md``, "The device path").

    Returns:
      The manifest.

    Raises:
      FileNotFoundError: no model in ``model_dir``.
      ValueError: unknown scope, a model that cannot be cut, a dataset without sources.
      BundleError: a bundle that is unreadable, unsigned by the key, or of another model.
      WhiteningError: ``whiten=True`` (or ``sensor_captures``) for a backbone without a
        normalised embedding layer.
      SensorCalibrationError: too few or unusable ``sensor_captures``, or with ``bundle``.
      FolderError: ``out`` is a file or a folder other than an artifact (checked first).
    """
    scopes = check_scopes(scopes)  # before any slow step
    if sensor_captures is not None:
        made_before = None if bundle is None else "bundle"
        sensor_captures = check_calibration(sensor_captures, made_before=made_before)
    if classes < 2:
        raise ValueError(f"the head needs at least 2 class slots, got {classes}.")
    check_replaceable(Path(out).expanduser(), MANIFEST)  # a backbone or a user's folder: refused
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory.")
    steps = ["read model", "calibration + background data", "check bundle", "convert", "sign"]
    bar = tqdm(steps, desc="export build", unit="step", disable=not progress, leave=False)
    import pretrain

    try:
        bar.set_postfix_str(steps[0])
        saved = pretrain.load_model(model_dir)
        # the device's gate refuses bad captures before the slow steps; made inputs once
        inputs = None if sensor_captures is None else sensor_inputs(saved, sensor_captures)
        backbone = split_backbone(saved)
        bar.update()
        bar.set_postfix_str(steps[1])
        sources = data_sources(saved, calibration=calibration, background=background)
        whitening = None
        if whiten or (whiten is None and whitens_by_default(saved, backbone)):
            w, whitening = fit_whitening(backbone, sources)
            backbone = fold_whitening(backbone, w)
        sensor = None
        if inputs is not None:
            backbone, sensor = fold_to_sensor(backbone, inputs)
        bar.update()
        bar.set_postfix_str(steps[2])
        key = private_key if private_key is not None else signing_key(signing.DEFAULT_PRIVATE_KEY)
        blob, ota = None, None
        if bundle is not None:
            path = Path(bundle)
            if not path.is_file():
                raise BundleError(f"{path}: bundle not found.")
            blob = path.read_bytes()
            ota = check_bundle(blob, backbone, bundle_key or key.public_key())
        bar.update()
        bar.set_postfix_str(steps[3])
        manifest = build_artifact(
            backbone,
            out,
            private_key=key,
            calibration=sources.calibration,
            background_images=sources.background,
            background_source=sources.background_source,
            scopes=scopes,
            classes=classes,
            int8=int8,
            bundle=blob,
            views=views_by_default(saved) if views is None else views,
            background_prints=background_prints(sources, progress=progress) if minutiae else None,
            source={
                "model_dir": shown_path(model_dir),
                "model": backbone.name,
                "calibration": f"{len(sources.calibration)} images: {sources.calibration_source}",
                "whitening": whitening,
                **({"sensor_calibration": sensor} if sensor else {}),
                **({"bundle_key_id": ota["key_id"]} if ota else {}),
            },
        )
        bar.update(2)
    finally:
        bar.close()
    return manifest
