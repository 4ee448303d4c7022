"""The faces-at-scale evaluation (issue 14): all 40 ORL people unseen, and the LFW dev people.

``faces`` (a registered suite) embeds, at the model's input size and through the same framing
the phone uses:

* ORL, all 40 people (pretraining on LFW + Extended Yale B never reads ORL): identification over
  random enrollment splits and on the fixed split (images 1-5 enroll, 6-10 probe), EER and FRR
  at FAR over all pairs (:func:`pretrain.evaluation.face_report`);
* the LFW development people the same way (the figures every choice is made on);
* the HOG and LBP baselines on both sets, in the same call.

:func:`checkpoint_model_params` reads a running job's newest checkpoint (the best-on-dev
parameters so far) from a copy, so a trend can be measured without stopping the job.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import numpy as np
import orbax.checkpoint as ocp

from pretrain.config import TrainConfig
from pretrain.data import ArrayDataset, load_orl
from pretrain.embedding.face_data import INPUT_SIZE, face_input_spec, lfw_dev_set
from pretrain.embedding.suites import embed, register_suite, within_identity_order
from pretrain.evaluation import BASELINES
from pretrain.evaluation.repeated import SPLITS, face_report


def orl_faces(input_size: Sequence[int] = INPUT_SIZE, root: str = "") -> ArrayDataset:
    """All 400 ORL faces (labels 0..39 = s1..s40) as model inputs of ``input_size``."""
    faces = load_orl(root or None, face_input_spec(input_size))
    return ArrayDataset(faces.images, faces.labels, "orl[s1-s40]")


def score_set(
    features: np.ndarray,
    data: ArrayDataset,
    *,
    splits: int = SPLITS,
    seed: int = 0,
    baselines: bool = True,
) -> dict[str, Any]:
    """:func:`face_report` of ``features`` and, with ``baselines``, of HOG and LBP features."""
    order = within_identity_order(data.labels)
    report = face_report(features, data.labels, order=order, splits=splits, seed=seed)
    report["set"] = data.name
    if baselines:
        report["baselines"] = {
            name: face_report(fn(data.images), data.labels, order=order, splits=splits, seed=seed)
            for name, fn in BASELINES.items()
        }
    return report


def _input_size(config: TrainConfig | None) -> tuple[int, int]:
    size = (config.dataset_options if config is not None else {}).get("input_size", INPUT_SIZE)
    return int(size[0]), int(size[1])


@register_suite("faces")
def faces_suite(
    module: nn.Module,
    params: Any,
    *,
    config: TrainConfig | None = None,
    root: str = "",
    splits: int = SPLITS,
    seed: int = 0,
    baselines: bool = True,
    dev: bool = True,
    flip_average: bool = False,
    test_views: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """ORL s1-s40 and the LFW dev people: ``{"orl": report, "dev": report}`` (see the module).

    ``test_views`` (a :class:`devices.views.TestViews` dict) or ``flip_average`` (the mirror
    view alone) score the model as it will run (EmbedNet's options of those names) when training
    ran it without; a staged config sets them in ``evaluation_options``.
    """
    if test_views:
        module = module.clone(test_views=dict(test_views))
    elif flip_average:
        module = module.clone(flip_average=True)
    size = _input_size(config)
    orl = orl_faces(size, root)
    out = {
        "orl": score_set(
            embed(module, params, orl.images), orl, splits=splits, seed=seed, baselines=baselines
        )
    }
    if dev:
        options = dict(config.dataset_options) if config is not None else {}
        roles = {
            k: options[k] for k in ("dev_people", "background_people", "role_seed") if k in options
        }
        people = lfw_dev_set(root, size, **roles)
        features = embed(module, params, people.images)
        out["dev"] = score_set(features, people, splits=splits, seed=seed, baselines=baselines)
    return out


def checkpoint_model_params(stage_dir: str | Path) -> tuple[Any, int]:
    """The best-on-validation model parameters in the newest checkpoint of a (running) stage.

    The checkpoint is copied first, so the job writing ``stage_dir`` is not disturbed.

    Returns:
      ``(params, epoch)``.

    Raises:
      FileNotFoundError: ``stage_dir/checkpoints`` holds no finished checkpoint.
    """
    folder = Path(stage_dir) / "checkpoints"
    epochs = sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit())
    if not epochs:
        raise FileNotFoundError(f"{folder}: no finished checkpoint yet.")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "checkpoints"
        shutil.copytree(folder / str(epochs[-1]), copy / str(epochs[-1]))
        with ocp.CheckpointManager(copy) as manager:
            args = ocp.args.Composite(state=ocp.args.StandardRestore())
            state = manager.restore(epochs[-1], args=args).state
    return state["best_params"]["model"], epochs[-1]
