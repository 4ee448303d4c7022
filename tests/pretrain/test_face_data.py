"""Faces at scale: LFW roles are fixed and disjoint, the loaders frame faces as ORL's, the suite
and the config hold together (real-data tests skip without LFW / Yale B)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from devices.preprocess import LFW_FRAME, YALE_B_FRAME
from pretrain.config import ConfigError, make_config
from pretrain.data.face_sets import LFW, YALE_B, image_counts, read_framed
from pretrain.embedding import (
    checkpoint_model_params,
    embed,
    faces_suite,
    lfw_role_set,
    lfw_roles,
    lfw_yale_splits,
    orl_faces,
    roles_for,
    score_set,
)
from pretrain.models import build_model
from pretrain.train.checkpoint import Checkpointer

COUNTS = {f"p{i:03d}": 1 + i % 9 for i in range(300)}


def test_roles_are_disjoint_cover_everyone_and_follow_the_rules() -> None:
    roles = lfw_roles(COUNTS, dev_people=20, background_people=30, seed=3)
    sets = [set(roles.train), set(roles.dev), set(roles.background)]
    assert sum(len(s) for s in sets) == len(COUNTS) == len(set.union(*sets))
    assert all(6 <= COUNTS[p] <= 40 for p in roles.dev) and len(roles.dev) == 20
    assert all(COUNTS[p] == 1 for p in roles.background) and len(roles.background) == 30
    assert roles == lfw_roles(
        dict(reversed(list(COUNTS.items()))), dev_people=20, background_people=30, seed=3
    )
    assert roles.dev != lfw_roles(COUNTS, dev_people=20, background_people=30, seed=4).dev
    record = roles.record()
    assert record["counts"] == {"train": 250, "dev": 20, "background": 30}


def test_roles_refuse_more_people_than_qualify() -> None:
    with pytest.raises(ConfigError, match=r"dev_people must be in 0\.\.\d+"):
        lfw_roles(COUNTS, dev_people=10_000)


@pytest.fixture(scope="module")
def faces_root(data_root: Path) -> Path:
    for name in (LFW, YALE_B):
        if not (data_root / name).is_dir():
            pytest.skip(f"{name} not found under {data_root}.")
    return data_root


def test_real_roles_match_the_dataset_readme(faces_root: Path) -> None:
    counts = image_counts(LFW, faces_root)
    assert len(counts) == 5749 and sum(counts.values()) == 13233
    roles = roles_for(str(faces_root))
    assert len(roles.dev) == 120 and len(roles.background) == 1000
    assert len(roles.train) == 5749 - 1120


def test_framed_readers_give_orl_framing(faces_root: Path) -> None:
    people = sorted(image_counts(YALE_B, faces_root))[:1]
    yale = read_framed(YALE_B, faces_root, people=people, progress=False)
    assert {im.shape for im in yale.images} == {(YALE_B_FRAME.height, YALE_B_FRAME.width)}
    lfw = read_framed(LFW, faces_root, people=["Aaron_Eckhart"], progress=False)
    assert lfw.images[0].shape == (LFW_FRAME.height, LFW_FRAME.width)
    # The face, not the black alignment border, fills the frame's middle.
    middle = lfw.images[0][60:100, 40:90]
    assert 40 < float(np.mean(middle)) < 220


def test_splits_hold_dev_people_out_of_training(faces_root: Path, tmp_path: Path) -> None:
    splits = lfw_yale_splits(min_images=40, root=str(faces_root), cache=str(tmp_path))
    assert splits.val is not None and splits.val.images.shape[1:] == (96, 80, 1)
    assert int(splits.val.labels.max()) + 1 == 120
    counts = np.bincount(splits.train.labels)
    assert counts.min() >= 40  # every Yale B person (59-64 images) and LFW's largest
    dev = {tuple(x) for x in splits.val.images[:, 40, 30:50, 0].round(4)}
    train = {tuple(x) for x in splits.train.images[:, 40, 30:50, 0].round(4)}
    assert not dev & train


TINY = {"stem_width": 8, "widths": (16, 32), "strides": (2, 2), "embedding_dim": 16}


@pytest.mark.data
def test_faces_suite_scores_all_orl_people_and_the_dev_people(
    faces_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POCKETFIT_CACHE", str(tmp_path))
    config = make_config(
        {
            "model": "embednet",
            "model_options": TINY,
            "dataset": "lfw_yale_b",
            "val_size": 0,
            "dataset_options": {"input_size": (40, 32)},
        }
    )
    module = build_model("embednet", **TINY)
    params = module.init(jax.random.key(0), jnp.zeros((1, 40, 32, 1)))["params"]
    report = faces_suite(
        module, params, config=config, root=str(faces_root), splits=2, baselines=False
    )
    orl, dev = report["orl"], report["dev"]
    assert orl["identities"] == 40 and orl["samples"] == 400
    assert orl["genuine_pairs"] == 40 * 45 and orl["identification_splits"] == 2
    assert dev["identities"] == 120 and set(dev["identification_pct_fixed"]) == {"1", "3", "5"}
    # A random network is far from perfect on 40 people, and far above chance (2.5%).
    assert 5.0 < orl["identification_pct"]["5"] < 95.0
    # flip_average scores the model as the device runs it: the image and its mirror.
    flipped = faces_suite(
        module,
        params,
        config=config,
        root=str(faces_root),
        splits=2,
        baselines=False,
        dev=False,
        flip_average=True,
    )["orl"]
    faces = orl_faces((40, 32), str(faces_root))
    want = score_set(
        embed(module.clone(flip_average=True), params, faces.images),
        faces,
        splits=2,
        baselines=False,
    )
    assert flipped["eer_pct"] == want["eer_pct"] != orl["eer_pct"]


def test_checkpoint_reader_returns_the_best_model_params(tmp_path: Path) -> None:
    module = build_model("embednet", **TINY)
    params = module.init(jax.random.key(0), jnp.zeros((1, 40, 32, 1)))["params"]
    newer = jax.tree.map(lambda p: p + 1.0, params)
    state = {"best_params": {"model": params, "classifier": jnp.zeros(3)}, "train": newer}
    ckpt = Checkpointer(tmp_path / "stage" / "checkpoints")
    ckpt.save(1, state, {"config": {}})
    ckpt.save(2, {**state, "best_params": {"model": newer, "classifier": jnp.zeros(3)}}, {})
    ckpt.close()
    restored, epoch = checkpoint_model_params(tmp_path / "stage")
    assert epoch == 2
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(newer), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FileNotFoundError, match="no finished checkpoint"):
        checkpoint_model_params(tmp_path / "empty")


def test_background_people_have_one_image_each(faces_root: Path, tmp_path: Path) -> None:
    background = lfw_role_set("background", str(faces_root), (40, 32), cache=str(tmp_path))
    assert len(background) == 1000 and np.bincount(background.labels).max() == 1
    with pytest.raises(ConfigError, match="role must be one of train, dev, background"):
        lfw_role_set("evaluation", str(faces_root))
