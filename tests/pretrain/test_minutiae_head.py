"""Minutiae maps of generator prints and the minutiae head trained beside the identity loss."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from devices.localiser import ANCHOR_SPEC
from devices.preprocess import FINGERPRINT_SPEC
from pretrain.config import ConfigError
from pretrain.data import ArrayDataset
from pretrain.data.minutiae_maps import UNREAD, draw_map, minutiae_maps
from pretrain.embedding import augment_batch, make_augment
from pretrain.embedding.augment import TARGET_FILL
from pretrain.embedding.minutiae_head import pooled_target
from pretrain.embedding.tasks import MarginSoftmax
from pretrain.models import build_model
from pretrain.staged_config import make_staged
from pretrain.train import Splits, fit_stages, load_model

TINY = {"stem_width": 8, "widths": (16, 32), "strides": (2, 2), "embedding_dim": 16}


def test_maps_mark_the_generator_minutiae_on_the_readable_window() -> None:
    maps = minutiae_maps(range(300, 301), 2, seed=0, spec=ANCHOR_SPEC)
    assert maps.shape == (2, 128, 128, 1) and maps.dtype == np.float32
    seen = maps >= 0
    assert np.all(maps[~seen] == UNREAD) and np.all(maps[seen] <= 1.0)
    assert 0.1 < seen.mean() < 0.95  # a print, not the whole window
    for one in maps[..., 0]:
        peaks = (one > 0.95).sum()
        assert 1 <= peaks <= 60, peaks  # a few minutiae, each a bump a few px across
    with pytest.raises(ValueError, match="crop"):
        minutiae_maps(range(300, 301), 1, seed=0, spec=FINGERPRINT_SPEC)


def test_the_map_moves_with_its_image_and_only_the_image_is_standardised() -> None:
    dots = draw_map(np.array([[40.0, 50.0], [90.0, 70.0]]), (128, 128))
    rng = np.random.default_rng(0)
    image = dots + 0.01 * rng.standard_normal(dots.shape)
    batch = np.stack([image, dots], axis=-1)[None].astype(np.float32)
    aug = make_augment({"rotate": 30.0, "translate": 0.1, "erase": 1.0, "erase_area": 0.2})
    key = jax.random.key(3)
    both = np.asarray(augment_batch(key, batch, aug))
    alone = np.asarray(augment_batch(key, batch[..., :1], aug))
    np.testing.assert_allclose(both[..., 0], alone[..., 0], rtol=1e-5, atol=1e-5)
    moved, target = both[0, ..., 0], both[0, ..., 1]
    assert TARGET_FILL == UNREAD
    shown = target > 0.5
    assert shown.any() and (target == TARGET_FILL).any()  # the erasure and the frame
    # The dots of the moved image are where the moved map says.
    assert moved[shown].mean() > moved[target >= 0].mean() + 1.0


def test_pooled_target_is_the_cell_maximum_and_ignores_unread_cells() -> None:
    maps = np.full((1, 8, 8), UNREAD, np.float32)
    maps[0, :4, :4] = 0.0
    maps[0, 1, 2] = 0.8
    maps[0, 4:, :4] = 0.0
    cells = np.asarray(pooled_target(maps, (2, 2)))
    np.testing.assert_allclose(cells[0], [[0.8, UNREAD], [0.0, UNREAD]])


def people_with_dots(count: int, per: int, seed: int, dots: bool) -> ArrayDataset:
    """Smooth random patterns per person plus bright dots whose map rides along (if ``dots``)."""
    rng = np.random.default_rng(seed)
    coarse = np.kron(rng.standard_normal((count, 8, 8)), np.ones((4, 4)))
    labels = np.repeat(np.arange(count, dtype=np.int32), per)
    maps = np.stack([draw_map(rng.uniform(2, 30, (3, 2)), (32, 32), 1.0) for _ in labels])
    images = coarse[labels] + 0.3 * rng.standard_normal((len(labels), 32, 32)) + 3 * maps
    channels = [images, maps] if dots else [images]
    return ArrayDataset(np.stack(channels, -1).astype(np.float32), labels, f"dots-{seed}")


def test_the_head_trains_beside_the_identity_loss_and_is_not_saved(tmp_path: Path) -> None:
    splits = Splits(
        people_with_dots(12, 8, 0, True),
        people_with_dots(4, 6, 1, False),
        people_with_dots(5, 6, 2, False),
    )
    stage = {
        "model": "embednet",
        "model_options": TINY,
        "task": "margin_softmax",
        "batch_size": 16,
        "eval_batch_size": 32,
        "learning_rate": 0.05,
        "epochs": 2,
        "keep_checkpoints": 1,
        "task_options": {"augment": {"rotate": 10.0}, "minutiae_weight": 1.0, "minutiae_block": 1},
    }
    run = make_staged({"shared": {}, "stages": {"metric": stage}})
    result = fit_stages(run, tmp_path, progress=False, splits={"metric": splits})
    assert set(load_model(result.model_dir).params) == {"stem", "block1", "block2", "embed"}
    lines = (tmp_path / "metric" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["train_minutiae_loss"] for line in lines]
    assert len(losses) == 2 and all(0 < v < 1 for v in losses), losses


@pytest.mark.parametrize("hidden", [0, 16])
def test_the_minutiae_loss_falls_where_the_dots_can_be_seen(hidden: int) -> None:
    people = people_with_dots(12, 8, 0, True)
    x, labels = jnp.asarray(people.images), jnp.asarray(people.labels)
    task = MarginSoftmax(
        scale=16.0, margin=0.2, minutiae_weight=1.0, minutiae_block=1, minutiae_hidden=hidden
    )
    module = build_model("embednet", **TINY)
    params = jax.jit(lambda k: task.init(module, k, x[:1], num_classes=12))(jax.random.key(0))
    assert ("conv" in params["minutiae"]) == bool(hidden)
    opt = optax.sgd(0.05, momentum=0.9)

    @jax.jit
    def step(params, state):
        grads, metrics = jax.grad(lambda p: task.loss(module.apply, p, x, labels, 0), has_aux=True)(
            params
        )
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, metrics["minutiae_loss"]

    state = opt.init(params)
    side = []
    for _ in range(300):
        params, state, loss = step(params, state)
        side.append(float(loss))
    assert side[-1] < 0.85 * side[0], (side[0], side[-1])


def test_the_head_can_read_the_ridge_branch_before_its_gate() -> None:
    people = people_with_dots(12, 8, 0, True)
    x, labels = jnp.asarray(people.images), jnp.asarray(people.labels)
    task = MarginSoftmax(scale=16.0, margin=0.2, minutiae_weight=1.0, minutiae_layer="ridge")
    module = build_model("embednet", **TINY, ridge_width=8, ridge_into=2)
    params = jax.jit(lambda k: task.init(module, k, x[:1], num_classes=12))(jax.random.key(0))
    assert params["minutiae"]["kernel"].shape == (32, 1)  # the branch's output: block 2's width
    grads = jax.jit(jax.grad(lambda p: task.loss(module.apply, p, x, labels, 0)[0]))(params)
    # The gate starts shut, so only the head's loss reaches the branch's first block.
    reach = grads["model"]["ridge"]["block1"]["pointwise"]["kernel"]
    assert float(jnp.abs(reach).max()) > 0
    plain = MarginSoftmax(scale=16.0, margin=0.2)
    params.pop("minutiae")
    grads = jax.jit(jax.grad(lambda p: plain.loss(module.apply, p, x[..., :1], labels, 0)[0]))(
        params
    )
    assert float(jnp.abs(grads["model"]["ridge"]["block1"]["pointwise"]["kernel"]).max()) == 0


def test_a_minutiae_head_needs_the_maps() -> None:
    task = MarginSoftmax(minutiae_weight=1.0, minutiae_block=1)
    with pytest.raises(ValueError, match="second channel"):
        module = build_model("embednet", **TINY)
        x = np.zeros((2, 32, 32, 1), np.float32)
        params = task.init(module, jax.random.key(0), x, num_classes=2)
        task.loss(module.apply, params, x, np.array([0, 1]), 0)
    with pytest.raises(ValueError, match="minutiae_weight"):
        MarginSoftmax(minutiae_weight=-1.0)


def test_splits_carry_the_maps_as_a_second_training_channel(tmp_path: Path) -> None:
    from pretrain.embedding import data

    options = {
        "identities": 2,
        "val_identities": 0,
        "test_identities": 2,
        "held_out_impressions": 2,
        "impressions": 2,
        "crop": "anchor",
        "cache": str(tmp_path),
        "minutiae_maps": True,
    }
    splits = data.synthetic_fingerprint_splits(**options)
    assert splits.train.images.shape[1:] == (128, 128, 2)
    assert splits.test.images.shape[1:] == (128, 128, 1)
    plain = data.synthetic_fingerprint_splits(**{**options, "minutiae_maps": False})
    np.testing.assert_array_equal(splits.train.images[..., :1], plain.train.images)
    assert np.all(splits.train.images[..., 1] <= 1.0)
    with pytest.raises(ConfigError, match="registered crop"):
        data.synthetic_fingerprint_splits(**{**options, "crop": "foreground"})
