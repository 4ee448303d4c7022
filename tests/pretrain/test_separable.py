"""Channel pruning through EmbedNet's separable blocks: the masks remove a channel from its
producer, the next depthwise filter and the next pointwise input row, and the narrow EmbedNet
equals the masked one.

Tolerances: masks are exact; the narrow network against the masked one differs only by float32
summation order (1e-5 of the embedding scale: unit vectors).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain
import pretrain.compression as pc
from pretrain.data import ArrayDataset
from pretrain.models.embednet import EmbedNet, fold_standardization

INPUT = (1, 32, 32, 1)


@pytest.fixture(scope="module")
def tiny() -> tuple:
    module = EmbedNet(
        stem_width=6,
        widths=(8, 8, 12),
        strides=(2, 1, 2),
        embedding_dim=5,
        feature_norm=True,
        standardize=True,
    )
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros(INPUT))["params"]
    # random weights without compiling the initialisers; nonzero biases: a removed channel's
    # constant output must vanish
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.3, s.shape), s.dtype), shapes)
    return fold_standardization(module, params)


def test_chain_is_every_producer_but_the_last_block() -> None:
    assert pc.separable_chain(3) == ("stem", "block1/pointwise", "block2/pointwise")


def test_masks_remove_the_channel_from_producer_depthwise_and_next_pointwise(tiny: tuple) -> None:
    _, params = tiny
    keep = np.array([True, False, True, True, False, True, True, True])
    structure = pc.Structure({"block1/pointwise": keep}, {}, {})
    masks = pc.separable_masks(params, structure, pc.separable_chain(3))
    assert not masks["block1/pointwise/kernel"][..., ~keep].any()
    assert masks["block1/pointwise/kernel"][..., keep].all()
    assert not masks["block2/depthwise/kernel"][..., ~keep].any()
    assert not masks["block2/pointwise/kernel"][:, :, ~keep, :].any()
    assert masks["block2/pointwise/kernel"][:, :, keep, :].all()
    assert set(masks) == {
        "block1/pointwise/kernel",
        "block2/depthwise/kernel",
        "block2/pointwise/kernel",
    }


def test_narrow_embednet_equals_the_masked_one(tiny: tuple) -> None:
    module, params = tiny
    chain = pc.separable_chain(3)
    structure = pc.l1_separable(params, {"stem": 4, "block1/pointwise": 5, "block2/pointwise": 3})
    c = pc.separable_pruning(structure, chain)
    masked = c.apply(params, c.init(params))[0]
    narrow, small = pc.shrink_separable(module, params, structure, chain)
    assert narrow.stem_width == 4 and tuple(narrow.widths) == (5, 3, 12)
    assert small["block2"]["pointwise"]["kernel"].shape == (1, 1, 5, 3)
    assert small["block3"]["depthwise"]["kernel"].shape == (3, 3, 1, 3)
    x = jax.random.normal(jax.random.key(1), (4, *INPUT[1:]))
    native = module.clone(impl="native")  # one convolution per layer: quick to compile
    want = np.asarray(native.apply({"params": masked}, x))
    got = np.asarray(narrow.clone(impl="native").apply({"params": small}, x))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    full = np.asarray(native.apply({"params": params}, x))
    assert np.max(np.abs(full - want)) > 1e-3  # the pruning did change the function


@pytest.mark.parametrize("side", [32, 33])
def test_stem_cut_to_a_window_equals_the_stem_with_its_other_taps_zeroed(
    tiny: tuple, side: int
) -> None:
    module, params = tiny
    top, left = pc.stem_window((side, side + 2), 3, 2)
    assert (top, left) == ((0, 0) if side % 2 == 0 else (1, 1))
    small_module, small = pc.shrink_stem(module, params, (side, side + 2), 2)
    assert small_module.stem_kernel == 2 and small["stem"]["kernel"].shape == (2, 2, 1, 6)
    kernel = np.asarray(params["stem"]["kernel"])
    zeroed = np.zeros_like(kernel)
    zeroed[top : top + 2, left : left + 2] = kernel[top : top + 2, left : left + 2]
    masked = {**params, "stem": {**params["stem"], "kernel": jnp.asarray(zeroed)}}
    x = jax.random.normal(jax.random.key(2), (3, side, side + 2, 1))
    native = module.clone(impl="native")
    want = np.asarray(native.apply({"params": masked}, x))
    got = np.asarray(small_module.clone(impl="native").apply({"params": small}, x))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert np.max(np.abs(np.asarray(native.apply({"params": params}, x)) - want)) > 1e-3
    # the channels are then chosen on the cut stem as on any other
    structure = pc.l1_separable(small, {"stem": 4})
    narrow, _ = pc.shrink_separable(small_module, small, structure, pc.separable_chain(3))
    assert narrow.stem_width == 4 and narrow.stem_kernel == 2
    assert pc.shrink_stem(module, params, (side, side), 3) == (module, params)
    with pytest.raises(ValueError, match=r"1\.\.3 taps"):
        pc.stem_window((side, side), 3, 4)


def test_l1_keeps_the_largest_filters_and_the_last_block_is_refused(tiny: tuple) -> None:
    module, params = tiny
    kernel = np.asarray(params["stem"]["kernel"])
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(0)
    keep = pc.l1_separable(params, {"stem": 2}).channels["stem"]
    assert sorted(np.flatnonzero(keep)) == sorted(np.argsort(-norms)[:2])
    bad = pc.Structure({"block3/pointwise": np.ones(12, bool)}, {}, {})
    with pytest.raises(ValueError, match="removes channels of"):
        pc.separable_masks(params, bad, pc.separable_chain(3))
    with pytest.raises(ValueError, match="fold weight standardisation"):
        pc.shrink_separable(module.clone(standardize=True), params, bad, pc.separable_chain(3))


def test_channels_kept_halves_every_producer(tiny: tuple) -> None:
    module, _ = tiny
    assert pc.channels_kept(module, 0.5) == {
        "stem": 3,
        "block1/pointwise": 4,
        "block2/pointwise": 4,
    }


def test_channels_kept_per_producer(tiny: tuple) -> None:
    module, _ = tiny
    assert pc.channels_kept(module, (0.5, 0.25, 1.0)) == {
        "stem": 3,
        "block1/pointwise": 2,
        "block2/pointwise": 8,
    }
    with pytest.raises(ValueError, match="2 fractions for 3 producers"):
        pc.channels_kept(module, (0.5, 0.5))


def test_recipe_and_backbone_are_checked() -> None:
    with pytest.raises(ValueError, match="keep must be fractions"):
        pc.SeparableRecipe(keep=0.0)
    with pytest.raises(ValueError, match="keep must be fractions"):
        pc.SeparableRecipe(keep=(0.5, 1.5))
    with pytest.raises(ValueError, match="keep must be fractions"):
        pc.SeparableRecipe(keep=())
    with pytest.raises(ValueError, match="keep must be fractions"):
        pc.SeparableRecipe(keep=("0.5",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identities 0 or >= 2"):
        pc.SeparableRecipe(identities=1)
    with pytest.raises(ValueError, match="distill must be >= 0"):
        pc.SeparableRecipe(distill=-1.0)
    with pytest.raises(ValueError, match="stem_kernel must be"):
        pc.SeparableRecipe(stem_kernel=4)
    assert pc.FACE_SEPARABLE.distill > 0 and pc.FACE_SEPARABLE.identities == 0
    saved = pretrain.SavedModel(pretrain.build_model("lenet5"), {}, {})
    with pytest.raises(ValueError, match="needs an EmbedNet backbone"):
        pc.folded(saved)


def test_the_folded_backbone_runs_one_view(tiny: tuple) -> None:
    # a saved face model records its test-time views; pruning and fine-tuning see one view
    module, params = tiny
    views = {"mirror": True, "shift_px": 2, "zoom": 1.1}
    saved = pretrain.SavedModel(module.clone(flip_average=True, test_views=views), params, {})
    folded, _ = pc.folded(saved)
    assert folded.test_views is None and not folded.flip_average


def test_the_narrow_network_fine_tunes_on_one_view(tiny: tuple) -> None:
    # the saved model's options carry its test-time views; the fine-tuning model must not, or
    # every training image runs through each view and the loss scores their average
    module, params = tiny
    views = {"mirror": True, "shift_px": 2, "zoom": 1.1}
    options = {"stem_width": 6, "widths": (8, 8, 12), "strides": (2, 1, 2), "embedding_dim": 5}
    info = {"model_options": {**options, "flip_average": True, "test_views": views}}
    saved = pretrain.SavedModel(module.clone(test_views=views), params, info)
    narrow, _ = pc.shrink_separable(
        module,
        params,
        pc.l1_separable(params, pc.channels_kept(module, 0.5)),
        pc.separable_chain(3),
    )
    config = pc.finetune_config(saved, pc.FACE_SEPARABLE, narrow)
    model = pretrain.build_model("embednet", **config.model_options)
    assert model._views().count == 1
    assert config.model_options["stem_width"] == 3 and config.model_options["widths"] == (4, 4, 12)


def test_a_given_structure_skips_the_selection(tiny: tuple, tmp_path) -> None:
    module, params = tiny
    saved = pretrain.SavedModel(module, params, {"model": "embednet"})
    rng = np.random.default_rng(0)
    images = rng.normal(size=(12, 32, 32, 1)).astype(np.float32)
    dev = ArrayDataset(images, np.repeat(np.arange(4), 3))
    recipe = pc.SeparableRecipe(epochs=0, stem_kernel=3)
    given = pc.l1_separable(params, pc.channels_kept(module, 0.5))
    before = rng.bit_generator.state
    result = pc.separable_compression(
        saved, recipe, dev, rng=rng, workdir=tmp_path, structure=given, progress=False
    )
    assert rng.bit_generator.state == before  # no particle drawn
    assert result.structure is given and "filters" not in result.log
    assert result.log["structure_given"]
    assert result.module.stem_width == 3 and tuple(result.module.widths) == (4, 4, 12)


def test_a_resumed_run_reads_its_particle_filters_choice_back(tiny: tuple, tmp_path) -> None:
    module, params = tiny
    saved = pretrain.SavedModel(module, params, {"model": "embednet"})
    images = np.random.default_rng(0).normal(size=(12, 32, 32, 1)).astype(np.float32)
    dev = ArrayDataset(images, np.repeat(np.arange(4), 3))
    filters = pc.FilterSettings(particles=2, rounds=1, temperature=0.01, moves=1, examples=0)
    recipe = pc.SeparableRecipe(epochs=0, stem_kernel=3, filters=filters)

    def run(rng: np.random.Generator, resume: bool, r: Any = recipe) -> Any:
        return pc.separable_compression(
            saved, r, dev, rng=rng, workdir=tmp_path, resume=resume, progress=False
        )

    first = run(np.random.default_rng(1), resume=False)
    assert (tmp_path / "selection.npz").is_file() and "filters" in first.log
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    again = run(rng, resume=True)
    assert rng.bit_generator.state == before  # no particle drawn: read back
    assert again.log["selection_read_back"].endswith("selection.npz")
    for layer, mask in first.structure.channels.items():
        np.testing.assert_array_equal(again.structure.channels[layer], mask)
    # another budget is chosen again, not read back
    other = run(np.random.default_rng(1), resume=True, r=dataclasses.replace(recipe, keep=0.75))
    assert "selection_read_back" not in other.log and "filters" in other.log
    # so is the same budget on other weights
    moved = jax.tree.map(lambda a: a * 1.01, params)
    saved = pretrain.SavedModel(module, moved, {"model": "embednet"})
    elsewhere = run(np.random.default_rng(1), resume=True)
    assert "selection_read_back" not in elsewhere.log


def test_whole_structures_are_scored_with_placeholders_and_the_margin_keeps_l1(
    tiny: tuple,
) -> None:
    # with a structure scorer every particle is scored at the whole budget (producers not
    # chosen yet at their L1 choice), and a margin keeps the first particle (L1's) unless beaten
    module, params = tiny
    keep = pc.channels_kept(module, 0.5)
    l1 = pc.l1_separable(params, keep)
    seen: list[pc.Structure] = []

    def scorer(structure: pc.Structure) -> float:
        seen.append(structure)
        return 0.5 - 0.01 * len(seen)  # later particles a little better: within the margin

    settings = pc.FilterSettings(particles=3, rounds=2, temperature=0.01, moves=1, examples=0)

    def select(margin: Any) -> tuple[pc.Structure, dict]:
        seen.clear()
        return pc.select_separable(
            params,
            keep,
            lambda p: 0.0,
            chain=pc.separable_chain(len(module.widths)),
            settings=settings,
            rng=np.random.default_rng(0),
            structure_error=scorer,
            margin=margin,
            progress=False,
        )

    structure, log = select(lambda first: 0.5)
    assert len(seen) == 6 * len(keep)
    assert all(set(s.channels) == set(keep) for s in seen)  # always the whole budget
    first = seen[0].channels
    np.testing.assert_array_equal(first["stem"], l1.channels["stem"])
    for layer in keep:
        np.testing.assert_array_equal(structure.channels[layer], l1.channels[layer])
        assert log[layer]["error"] == log[layer]["first_error"]
    # without the margin the best-scored particle wins
    structure, _ = select(None)
    last = seen[-1].channels
    np.testing.assert_array_equal(structure.channels["block2/pointwise"], last["block2/pointwise"])


def test_retrained_dev_eer_trains_under_the_masks_and_repeats(tiny: tuple, monkeypatch) -> None:
    import pretrain.compression.separable_pipeline as sp

    module, params = tiny
    options = {"stem_width": 6, "widths": (8, 8, 12), "strides": (2, 1, 2), "embedding_dim": 5}
    saved = pretrain.SavedModel(module, params, {"model": "embednet", "model_options": options})
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(8), 4)
    train = ArrayDataset(rng.normal(size=(32, 32, 32, 1)).astype(np.float32), labels, "train")
    dev = ArrayDataset(rng.normal(size=(12, 32, 32, 1)).astype(np.float32), labels[:12], "dev")
    splits = pretrain.train.Splits(train, None, None)
    recipe = pc.SeparableRecipe(stem_kernel=3, overrides=("scale.batch_size=8",))
    chain = pc.separable_chain(len(module.widths))
    l1 = pc.l1_separable(params, pc.channels_kept(module, 0.5))
    scored: list = []
    real = sp.dev_eer

    def recording(m, d):
        eer = real(m, d)
        return lambda p: scored.append(jax.tree.map(np.asarray, p)) or eer(p)

    monkeypatch.setattr(sp, "dev_eer", recording)
    score = pc.retrained_dev_eer(
        saved, recipe, module, params, dev, splits, chain=chain, steps=3, key=jax.random.key(0)
    )
    first = score(l1)
    assert 0.0 <= first <= 1.0 and score(l1) == first  # same start, same batches
    c = pc.separable_pruning(l1, chain)
    pruned = pc.named_leaves(jax.tree.map(np.asarray, c.apply(params, c.init(params))[0]))
    trained = pc.named_leaves(scored[0])
    for name, value in trained.items():
        np.testing.assert_array_equal(value == 0, (value == 0) | (pruned[name] == 0))
    assert any(not np.allclose(trained[n], pruned[n]) for n in pruned)  # it trained
    zeros = {n: int(np.sum(v == 0)) for n, v in pruned.items()}
    assert all(int(np.sum(trained[n] == 0)) >= zeros[n] for n in zeros)  # the masks held
    np.testing.assert_array_equal(pc.named_leaves(scored[1])["stem/kernel"], trained["stem/kernel"])
