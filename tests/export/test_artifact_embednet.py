"""EmbedNet's export cut (``part``) and the calibration / background sources registry."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain
import pretrain.embedding
from devices.views import TestViews
from export.artifact.sources import data_sources, source_names
from export.artifact.split import DATASET_SPECS, SplitError, preprocess_of, split_backbone
from pretrain.data import ArrayDataset, Later
from pretrain.data.fingerprint import FingerprintGenerator, GeneratorConfig
from pretrain.models.embednet import one_view
from pretrain.train.artifacts import SavedModel

TINY = {"stem_width": 8, "widths": (16, 24, 32), "strides": (2, 1, 2), "embedding_dim": 16}


@pytest.mark.parametrize("options", [{}, {"standardize": True, "feature_norm": True}])
def test_front_then_last_is_the_whole_network_with_the_same_parameters(options) -> None:
    full = pretrain.build_model("embednet", **TINY, **options)
    x = jax.random.normal(jax.random.key(1), (3, 32, 32, 1))
    params = full.init(jax.random.key(0), x)["params"]
    front, last = full.clone(part="front"), full.clone(part="last")
    front_vars = front.init(jax.random.key(0), x)["params"]
    features = front.apply({"params": front_vars}, x)
    last_vars = last.init(jax.random.key(0), features)["params"]
    assert set(front_vars) == {"stem", "block1", "block2"} and set(last_vars) == {"block3", "embed"}
    same = jax.tree.map(np.shape, params) == jax.tree.map(np.shape, {**front_vars, **last_vars})
    assert same  # the saved tree splits without renaming
    pick = lambda names: {k: params[k] for k in names}  # noqa: E731
    feats = front.apply({"params": pick(front_vars)}, x)
    got = last.apply({"params": pick(last_vars)}, feats)
    np.testing.assert_allclose(got, full.apply({"params": params}, x), rtol=1e-5, atol=1e-6)
    assert got.shape == (3, 16)


def test_bad_parts_are_refused() -> None:
    x = jnp.zeros((1, 32, 32, 1))
    with pytest.raises(ValueError, match="part must be one of"):
        pretrain.build_model("embednet", **TINY, part="middle").init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="not both"):
        pretrain.build_model("embednet", **TINY, part="front", stop_after=1).init(
            jax.random.key(0), x
        )


def _saved(dataset: str, stages: list[dict], **options) -> SavedModel:
    model_options = {**TINY, **options}
    module = pretrain.build_model("embednet", **model_options)
    size = DATASET_SPECS[dataset].input_size
    params = module.init(jax.random.key(0), jnp.zeros((1, *size, 1)))["params"]
    info = {
        "staged_config": {
            "stages": {
                f"s{i}": {"dataset": dataset, "dataset_options": o} for i, o in enumerate(stages)
            }
        }
    }
    meta = {"model": "embednet", "model_options": model_options, "info": info}
    return SavedModel(module, params, meta)


def test_split_folds_standardisation_and_reads_the_staged_dataset() -> None:
    saved = _saved("orl_faces", [{}], standardize=True, feature_norm=True)
    backbone = split_backbone(saved)
    assert backbone.preprocess.modality == "face" and backbone.input_shape == (64, 64, 1)
    assert backbone.options["standardize"] is False
    x = jax.random.normal(jax.random.key(2), (2, 64, 64, 1))
    want = saved.module.apply({"params": saved.params}, x)
    np.testing.assert_allclose(backbone.embed()(x), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(SplitError, match="already a part"):
        split_backbone(_saved("orl_faces", [{}], stop_after=2))


@pytest.mark.parametrize(
    "options,views",
    [
        ({"flip_average": True}, TestViews(mirror=True)),
        ({"test_views": {"mirror": True, "shift_px": 3, "zoom": 1.08}}, TestViews(True, 3, 1.08)),
    ],
    ids=["flip_average", "test_views"],
)
def test_a_viewed_model_is_cut_single_view_and_exports_its_views(
    options: dict[str, Any], views: TestViews
) -> None:
    # test-time views run the whole model several times: the cut drops them, the manifest
    # carries them
    from export.artifact.pipeline import views_by_default

    saved = _saved("orl_faces", [{}], **options)
    backbone = split_backbone(saved)
    assert not set(options) & set(backbone.options)
    x = jax.random.normal(jax.random.key(3), (2, 64, 64, 1))
    single = one_view(saved.module)
    want = single.apply({"params": saved.params}, x)
    np.testing.assert_allclose(backbone.embed()(x), want, rtol=1e-4, atol=1e-5)
    assert views_by_default(saved) == views
    assert views_by_default(_saved("orl_faces", [{}])) == TestViews()


def test_face_preprocessing_follows_the_training_dataset_options() -> None:
    """A face model that records no ``info.preprocess`` gets the resize and crop it trained on,
    not the default 64x64 centre square."""
    saved = _saved("orl_faces", [{}, {"input_size": (78, 64), "crop": "none"}])
    spec = split_backbone(saved).preprocess
    assert (spec.input_size, spec.crop) == ((78, 64), "none")
    assert split_backbone(_saved("orl_faces", [{}])).preprocess == DATASET_SPECS["orl_faces"]


def test_a_fresh_print_model_is_used_with_the_window_it_trained_on() -> None:
    """A run's saved model records no ``info.preprocess``: its training crop decides (it fell
    back to the foreground window, so an anchor-trained candidate was scored on other windows)."""
    for crop in ("foreground", "core", "anchor"):
        saved = _saved("synthetic_fingerprints", [{"crop": "core"}, {"crop": crop}])
        assert preprocess_of(saved).crop == crop
    assert preprocess_of(_saved("synthetic_fingerprints", [{}])).crop == "foreground"


def test_fingerprint_background_people_are_fresh_identities(monkeypatch) -> None:
    calls, kept, drawn = [], [], []

    def fake(
        identities,
        impressions,
        *,
        seed,
        cache="",
        progress=True,
        spec=None,
        min_stored=8,
        generator=None,
    ):
        assert identities.step == 1  # synthetic_prints draws a contiguous range
        calls.append((identities, impressions, seed))
        kept.append((spec.crop, min_stored))
        drawn.append(generator)
        n = len(identities) * impressions
        # each image holds its identity and which generator drew it (1: the default)
        marks = np.repeat(
            [i + (generator == GeneratorConfig()) / 2 for i in identities], impressions
        )
        images = np.broadcast_to(marks[:, None, None, None], (n, 128, 128, 1))
        return ArrayDataset(images.astype(np.float32), np.zeros(n, np.int32), "x")

    monkeypatch.setattr(pretrain.embedding, "synthetic_prints", fake)
    stages = [
        {"identities": 400, "impressions": 4, "validate": False, "seed": 3},
        {"identities": 200, "impressions": 8, "seed": 3},
    ]
    sources = data_sources(_saved("synthetic_fingerprints", stages), calibration=10, background=7)
    (calib, per, seed), (people, shots, _) = calls  # the whitening people: drawn when asked
    white = sources.whitening_images()
    ((others, _, _),) = calls[2:]
    test = range(100, 300)  # default 100 validation, then 200 test identities
    assert seed == 3 and calib.start >= test.stop and per * len(calib) >= 10
    assert people.start >= 300 + 400  # after every identity any stage trained on
    assert not set(people) & set(test) and shots * len(people) >= 7
    assert sources.calibration.shape == (10, 128, 128, 1) and len(sources.background) == 7
    assert "disjoint from the held-out test identities 100-299" in sources.background_source
    # the whitener's people: as many again, fresh, none of the background's
    assert others.start >= people.stop and len(others) == len(people)
    assert isinstance(sources.whitening, Later) and white is not None and len(white) == 7
    assert f"{others.start}-{others.stop - 1}" in sources.whitening_source
    # the model's own window; fresh people generate only the impressions they give
    assert kept == [("foreground", 8), ("foreground", shots), ("foreground", shots)]
    kept.clear()
    calls.clear()
    core = [{**stage, "crop": "core"} for stage in stages]
    lazy = data_sources(_saved("synthetic_fingerprints", core), calibration=10, background=7)
    assert [crop for crop, _ in kept] == ["core"] * 2  # not the whitening people yet
    lazy.whitening_images()
    assert [crop for crop, _ in kept] == ["core"] * 3
    assert drawn == [GeneratorConfig()] * 6
    # a model trained last on another generator's prints is calibrated and given background
    # people drawn by that generator, and says so
    drawn.clear()
    bent = {"orientation_noise": 0.3, "impression_shape": [320, 320]}
    staged = [stages[0], {**stages[1], "generator": bent}]
    calls.clear()
    sources = data_sources(_saved("synthetic_fingerprints", staged), calibration=10, background=7)
    sources.whitening_images()
    bent_config = GeneratorConfig.from_dict(bent)
    # calibration by the model's generator; background and whitening by both
    assert drawn == [bent_config] + [bent_config, GeneratorConfig()] * 2
    assert "last stage's generator" in sources.calibration_source
    assert "alternately by it and by the default generator" in sources.background_source
    # the background's people alternate between the generators, person by person: each draws
    # a contiguous share of fresh identities
    marks = sources.background[:, 0, 0, 0]
    p = calls[1][0].start
    assert calls[2][0] == range(p + 2, p + 4)
    assert list(marks) == [p, p, p + 2.5, p + 2.5, p + 1, p + 1, p + 3.5]
    # the same people's raw prints, row for row (the fingerprint fusion's background prints)
    assert sources.background_raw is not None
    raw = sources.background_raw.get()
    assert len(raw) == 7 and raw[0].dtype == np.uint8
    by = {
        "bent": FingerprintGenerator(seed=3, config=bent_config),
        "default": FingerprintGenerator(seed=3, config=GeneratorConfig()),
    }
    for row, kind, identity, shot in [(2, "default", p + 2, 0), (5, "bent", p + 1, 1)]:
        np.testing.assert_array_equal(raw[row], by[kind].impression(identity, shot))


def test_face_sources_refuse_evaluation_people(data_root) -> None:
    sources = data_sources(_saved("orl_faces", [{"train_subjects": (1, 20)}]), background=50)
    assert sources.calibration.shape == (200, 64, 64, 1) and len(sources.background) == 50
    assert "s1-s20" in sources.background_source and sources.whitening is None
    with pytest.raises(ValueError, match="evaluation subjects"):
        data_sources(_saved("orl_faces", [{"train_subjects": (1, 30)}]))
    with pytest.raises(ValueError, match="no calibration/background source"):
        data_sources(SavedModel(None, {}, {"model": "x", "info": {}}))
    assert {"mnist", "orl_faces", "synthetic_fingerprints"} <= set(source_names())


def test_lfw_sources_are_the_background_role_and_training_images(monkeypatch) -> None:
    import pretrain.embedding.face_data as face_data

    train = ArrayDataset(
        np.arange(600, dtype=np.float32).reshape(600, 1, 1, 1) * np.ones((1, 4, 4, 1), np.float32),
        np.arange(600) // 3,
        "train",
    )
    back = ArrayDataset(-np.ones((30, 4, 4, 1), np.float32), np.arange(30), "back")
    asked = {}

    @functools.wraps(face_data.lfw_yale_splits)  # the source reads its defaults
    def splits(**options):
        asked["splits"] = options
        return face_data.Splits(train, train, train)

    def role_set(role, root, **options):
        asked["role"] = role
        return back

    monkeypatch.setattr(face_data, "lfw_yale_splits", splits)
    monkeypatch.setattr(face_data, "lfw_role_set", role_set)
    stages = [{"input_size": [4, 4], "min_images": 2}]
    sources = data_sources(_saved_lfw(stages), calibration=50, background=20)
    assert asked["role"] == "background" and asked["splits"]["min_images"] == 1
    assert sources.background.shape == (20, 4, 4, 1) and np.all(sources.background == -1)
    calib = {float(v) for v in sources.calibration[:, 0, 0, 0]}
    white = {float(v) for v in sources.whitening_images()[:, 0, 0, 0]}
    assert len(calib) == 50 and len(white) == 20 and not calib & white  # distinct training images
    assert "LFW background role" in sources.background_source
    with pytest.raises(ValueError, match="background role has 30 people"):
        data_sources(_saved_lfw(stages), background=31)


def _saved_lfw(stages: list[dict]) -> SavedModel:
    info = {
        "staged_config": {
            "stages": {
                f"s{i}": {"dataset": "lfw_yale_b", "dataset_options": o}
                for i, o in enumerate(stages)
            }
        }
    }
    return SavedModel(None, {}, {"model": "embednet", "model_options": TINY, "info": info})


def test_a_re_registered_print_backbone_is_used_with_its_own_crop() -> None:
    from devices.localiser import ANCHOR_SPEC
    from export.artifact.sources import stage_options
    from export.artifact.split import training_config

    stages = {
        "warm": {"dataset": "synthetic_fingerprints", "dataset_options": {"crop": "core"}},
        "main": {"dataset": "synthetic_fingerprints", "dataset_options": {"crop": "core"}},
    }
    info = {"staged_config": {"stages": stages}, "preprocess": ANCHOR_SPEC.to_dict()}
    saved = SavedModel(None, {}, {"model": "embednet", "info": info})
    assert training_config(saved)["dataset_options"]["crop"] == "anchor"
    assert training_config(saved, as_trained=True)["dataset_options"]["crop"] == "core"
    assert [o["crop"] for o in stage_options(saved)] == ["core", "anchor"]
    # trained and used alike: nothing changes
    info["preprocess"] = {**ANCHOR_SPEC.to_dict(), "crop": "core"}
    assert training_config(saved)["dataset_options"]["crop"] == "core"
