"""A trained backbone cut in two: a frozen front (int8 on the device) and a last block the wider
device scopes may train.

Every backbone model supports ``part="front" | "last" | "all"`` with the same parameter names, so
the cut needs no model surgery: the front's parameter groups are those ``part="front"``
initialises, the last block's those ``part="last"`` does.

Models trained with a reparametrisation export its folded form: EmbedNet's weight standardisation
(``fold_standardization``), MobileFaceNet's and its residual gains (``fold_mobilefacenet``) are
folded into plain kernels before the cut. Where a model offers two
implementations of one function (EmbedNet's ``impl``), the frozen front and the ``embed``
signature use ``"native"`` (grouped convolution -> DEPTHWISE_CONV_2D, int8) and the training
signatures ``"fast"``, whose gradients convert to builtins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from devices.preprocess import FACE_SPEC, FINGERPRINT_SPEC, PreprocessSpec
from pretrain import SavedModel, build_model
from pretrain.models.embednet import VIEW_OPTIONS, EmbedNet, fold_standardization
from pretrain.models.mobilefacenet import MobileFaceNet, fold_mobilefacenet

# Preprocessing of models whose saved info does not carry a spec, by training dataset.
DATASET_SPECS = {
    "mnist": PreprocessSpec(modality="digit", input_size=(28, 28), normalise="unit"),
    "orl_faces": FACE_SPEC,
    "synthetic_fingerprints": FINGERPRINT_SPEC,
}


def _face_spec(options: dict[str, Any]) -> PreprocessSpec:
    from pretrain.embedding import face_options, face_spec

    return face_spec(**face_options(options))  # its dataset options may resize or crop


def _print_spec(options: dict[str, Any]) -> PreprocessSpec:
    from pretrain.embedding import print_spec

    return print_spec(options)  # the window it trained on


# The spec of a model that records none, from its training dataset options, by dataset (the
# DATASET_SPECS entry is what options that say nothing give).
OPTION_SPECS: dict[str, Callable[[dict[str, Any]], PreprocessSpec]] = {
    "orl_faces": _face_spec,
    "synthetic_fingerprints": _print_spec,
}

# Training-time reparametrisations folded into plain kernels before the cut, by model class, and
# the options that switch them (off in the exported model).
FOLDS: dict[type, Callable[[Any, Any], tuple[Any, Any]]] = {
    EmbedNet: fold_standardization,
    MobileFaceNet: fold_mobilefacenet,
}
REPARAMETRISATIONS = ("standardize", "skip_init", "gdc_norm", "embed_norm")


class SplitError(ValueError):
    """A model that cannot be exported as a backbone; the message says why."""


class Backbone(NamedTuple):
    """A saved model prepared for export.

    Attributes:
      name: registered model name.
      options: its model options (without ``part``/``impl``).
      front_params: parameter groups of the frozen front.
      last_params: parameter groups of the last block (trainable in wider scopes).
      preprocess: the exact input preprocessing.
      features_shape: the front's output shape for one example.
      embedding_dim: size of the embedding the last block produces.
    """

    name: str
    options: dict[str, Any]
    front_params: dict[str, Any]
    last_params: dict[str, Any]
    preprocess: PreprocessSpec
    features_shape: tuple[int, ...]
    embedding_dim: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.preprocess.shape

    @property
    def float_bytes(self) -> int:
        """Bytes of every weight (front and last block) as float32: the size compression beats."""
        leaves = jax.tree.leaves((self.front_params, self.last_params))
        return 4 * sum(int(np.size(v)) for v in leaves)

    def module(self, part: str, *, fast: bool = False) -> Any:
        """The model restricted to ``part``; ``fast=True`` picks an implementation whose
        gradients convert to TFLite builtins where the model has a choice (EmbedNet)."""
        options = dict(self.options, part=part)
        fields = {f.name for f in dataclasses.fields(build_model(self.name).__class__)}
        if "impl" in fields:
            options["impl"] = "fast" if fast else "native"
        return build_model(self.name, **options)

    def front(self) -> Callable[[jax.Array], jax.Array]:
        """``images -> features`` with the front's weights as constants."""
        module, params = self.module("front"), self.front_params
        return lambda x: module.apply({"params": params}, x)

    def last(self, *, fast: bool = False) -> Callable[[dict[str, Any], jax.Array], jax.Array]:
        """``(last_params, features) -> embeddings``."""
        module = self.module("last", fast=fast)
        return lambda p, f: module.apply({"params": p}, f)

    def embeddings(self, images: np.ndarray, batch: int = 100) -> np.ndarray:
        """Float embeddings of ``images`` on the host (:meth:`embed`, jitted, in batches)."""
        embed = jax.jit(self.embed())
        return np.concatenate(
            [np.asarray(embed(images[i : i + batch])) for i in range(0, len(images), batch)]
        )

    def embed(self) -> Callable[[jax.Array], jax.Array]:
        """``images -> embeddings`` through front and last block, weights constant."""
        front, last, params = self.front(), self.last(), self.last_params
        return lambda x: last(params, front(x))


def training_dataset(saved: SavedModel) -> str | None:
    """The dataset a saved model was (last) trained on: a single run's ``config.dataset`` or
    the last stage's of a staged run; None when the info records neither."""
    info = saved.info.get("info", {})
    if "config" in info:
        return info["config"].get("dataset")
    stages = info.get("staged_config", {}).get("stages", {})
    return list(stages.values())[-1].get("dataset") if stages else None


def training_config(saved: SavedModel, *, as_trained: bool = False) -> dict[str, Any]:
    """The config (as saved) of the run or the last stage that trained ``saved``; {} if none.

    A synthetic-print backbone re-registered after training (its ``preprocess`` names another
    crop than its training data did, e.g. the learned anchor's) is used with that crop: the
    dataset options say so, so that every set made from them (development people, OTA
    retraining, background, evaluation) is cut as the device cuts its captures. ``as_trained``
    keeps the crop it was trained and evaluated with (bench-embed's scoring of it).
    """
    info = saved.info.get("info", {})
    if "config" in info:
        config = dict(info["config"])
    else:
        stages = info.get("staged_config", {}).get("stages", {})
        config = dict(list(stages.values())[-1]) if stages else {}
    crop = None if as_trained else info.get("preprocess", {}).get("crop")
    options = config.get("dataset_options") or {}
    if config.get("dataset") == "synthetic_fingerprints" and crop and options.get("crop") != crop:
        config["dataset_options"] = {**options, "crop": crop}
    return config


def preprocess_of(saved: SavedModel) -> PreprocessSpec:
    """The preprocessing ``saved`` is used with: its ``info.preprocess``, else its dataset's."""
    info = saved.info.get("info", {})
    if "preprocess" in info:
        return PreprocessSpec.from_dict(info["preprocess"])
    dataset = training_dataset(saved)
    if dataset in OPTION_SPECS:  # the dataset options it trained on shape its inputs
        return OPTION_SPECS[dataset](training_config(saved).get("dataset_options") or {})
    if dataset in DATASET_SPECS:
        return DATASET_SPECS[dataset]
    raise SplitError(
        f"model {saved.info['model']!r} records no preprocessing (info.preprocess) and its "
        f"dataset {dataset!r} has no default; known: {', '.join(DATASET_SPECS)}."
    )


TEST_TIME = ("part", "impl", *VIEW_OPTIONS)
"""Saved model options a cut drops: the export cut, the implementation, test-time views."""


def folded_options(module: Any, folded: Any) -> dict[str, Any]:
    """The reparametrisation options a fold changed (``REPARAMETRISATIONS``), at the folded
    module's values: what a saved model's options become once its parameters are folded."""
    return {
        option: getattr(folded, option)
        for option in REPARAMETRISATIONS
        if getattr(module, option, None) != getattr(folded, option, None)
    }


def split_backbone(saved: SavedModel) -> Backbone:
    """Cuts a saved model into front and last block.

    Raises:
      SplitError: the model has no ``part`` option or its parts do not cover its parameters.
    """
    name = saved.info["model"]
    # flip_average / test_views are how the whole model is run at test time, not a part's: the
    # artifact carries them in its manifest (export.artifact.pipeline.views_by_default)
    options = {k: v for k, v in saved.info["model_options"].items() if k not in TEST_TIME}
    fields = {f.name for f in dataclasses.fields(build_model(name).__class__)}
    if "part" not in fields:
        raise SplitError(f"model {name!r} cannot be cut into front and last block (no 'part').")
    if options.get("start_block") or options.get("stop_after"):
        raise SplitError(f"model {name!r} is already a part of a network (start_block/stop_after).")
    params = saved.params
    module = build_model(name, **options)
    fold = FOLDS.get(type(module))
    if fold is not None:
        folded, params = fold(module, params)
        options.update(folded_options(module, folded))
    elif options.get("standardize"):
        raise SplitError(f"model {name!r}: no known way to fold its weight standardisation.")
    spec = preprocess_of(saved)
    probe = Backbone(name, options, {}, {}, spec, (), 0)
    example = jax.ShapeDtypeStruct((1, *spec.shape), jnp.float32)
    key = jax.random.key(0)
    front_vars = jax.eval_shape(probe.module("front").init, key, example)["params"]
    features = jax.eval_shape(probe.module("front").apply, {"params": front_vars}, example)
    last_vars = jax.eval_shape(probe.module("last").init, key, features)["params"]
    embedding = jax.eval_shape(probe.module("last").apply, {"params": last_vars}, features)
    # Parameters neither part uses (a LeNet's classifier layer) are not part of the backbone.
    used = set(front_vars) | set(last_vars)
    missing = used - set(params)
    if missing:
        raise SplitError(f"model {name!r}: saved parameters lack {sorted(missing)}.")
    as_np = lambda tree: jax.tree.map(np.asarray, tree)  # noqa: E731
    return Backbone(
        name=name,
        options=options,
        front_params=as_np({k: params[k] for k in front_vars}),
        last_params=as_np({k: params[k] for k in last_vars}),
        preprocess=spec,
        features_shape=tuple(int(d) for d in features.shape[1:]),
        embedding_dim=int(embedding.shape[-1]),
    )
