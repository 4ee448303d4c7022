"""Embedding training: tasks, augmentation, staged configs, the dataset cache, a two-stage run."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain.config import ConfigError, make_config
from pretrain.data import ArrayDataset, DataNotFoundError
from pretrain.embedding import augment_batch, cached, make_augment
from pretrain.embedding.cache import code_digest
from pretrain.embedding.tasks import MarginSoftmax, same_source
from pretrain.models import build_model
from pretrain.staged_config import load_run, make_staged
from pretrain.train import (
    EmbeddingEval,
    Splits,
    Trainer,
    build_task,
    fit_stages,
    load_model,
    load_splits,
    train_step_fn,
)

TINY = {"stem_width": 8, "widths": (16, 32), "strides": (2, 2), "embedding_dim": 16}
AUG = {"rotate": 10, "translate": 0.05, "noise": 0.1, "erase": 0.3}
CONFIGS = Path(__file__).parents[2] / "pretrain" / "configs"


def identities(count: int, per: int, *, seed: int, size: int = 32) -> ArrayDataset:
    """``count`` people, ``per`` noisy samples each of a smooth random pattern (their face)."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((count, size // 4, size // 4))
    faces = np.kron(coarse, np.ones((4, 4)))
    labels = np.repeat(np.arange(count, dtype=np.int32), per)
    images = faces[labels] + 0.3 * rng.standard_normal((count * per, size, size))
    return ArrayDataset(images[..., None].astype(np.float32), labels, f"people-{seed}")


@pytest.fixture(scope="module")
def splits() -> Splits:
    return Splits(identities(12, 8, seed=0), identities(4, 6, seed=1), identities(5, 6, seed=2))


def _config(task: str, **extra) -> dict:
    return {
        "model": "embednet",
        "model_options": TINY,
        "task": task,
        "batch_size": 16,
        "eval_batch_size": 32,
        "learning_rate": 0.01,
        "epochs": 2,
        "keep_checkpoints": 1,
        **extra,
    }


def test_augmentation_is_keyed_and_standardised() -> None:
    x = identities(2, 2, seed=3).images
    aug = make_augment({**AUG, "flip": True, "warp": 1.0, "gamma": 0.3, "blur": 0.5})
    # Jitted, as the train step runs it (eagerly every op compiles on its own).
    run = jax.jit(augment_batch, static_argnums=2)
    a = np.asarray(run(jax.random.key(0), x, aug))
    b = np.asarray(run(jax.random.key(0), x, aug))
    c = np.asarray(run(jax.random.key(1), x, aug))
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and np.abs(a - c).max() > 0.1
    np.testing.assert_allclose(a.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(a.std(axis=(1, 2, 3)), 1.0, rtol=1e-4)
    # No options: only the per-image standardisation.
    plain = np.asarray(run(jax.random.key(0), x, make_augment({})))
    ref = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / x.std(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(plain, ref, atol=1e-5)
    with pytest.raises(ValueError, match="unknown augment option"):
        make_augment({"rotation": 10})


def test_tasks_by_name_and_their_options() -> None:
    with pytest.raises(ValueError, match="Did you mean 'contrastive'"):
        build_task("contrastiv")
    with pytest.raises(ValueError, match=r"no option.*margn.*valid: kind, scale, margin"):
        build_task("margin_softmax", {"margn": 0.3})
    with pytest.raises(ValueError, match="needs augment options"):
        build_task("contrastive")
    task = build_task("margin_softmax", {"margin": 0.4, "margin_warmup": 100}, seed=3)
    assert isinstance(task, MarginSoftmax) and task.seed == 3
    assert [float(task.margin_at(s)) for s in (0, 50, 100, 500)] == pytest.approx(
        [0.0, 0.2, 0.4, 0.4]
    )


def test_same_source_finds_copies() -> None:
    x = identities(3, 1, seed=4).images
    batch = jnp.asarray(np.concatenate([x, x[:1]]))
    got = np.asarray(same_source(batch))
    expected = np.eye(4, dtype=bool)
    expected[0, 3] = expected[3, 0] = True
    np.testing.assert_array_equal(got, expected)


def test_contrastive_never_reads_labels(splits: Splits) -> None:
    config = make_config(_config("contrastive", task_options={"augment": AUG}))
    trainer = Trainer(config, splits.train.images)
    step = jax.jit(train_step_fn(trainer.module.apply, trainer.tx, trainer.task))
    x, y = splits.train.images[:16], splits.train.labels[:16]
    a, _ = step(trainer.init_state(jax.random.key(0)), x, y)
    b, _ = step(trainer.init_state(jax.random.key(0)), x, y[::-1].copy())
    for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(u, v)


def test_embedding_eval_is_the_verification_eer() -> None:
    labels = np.repeat(np.arange(3), 4)
    perfect = np.eye(3)[labels]
    out = [{"embeddings": perfect, "labels": labels, "mask": np.ones(12)}]
    assert EmbeddingEval().eval_result(out)[1:] == (0.0, 12)
    # Masked rows (batch padding) are left out.
    padded = [
        {
            "embeddings": np.vstack([perfect, np.eye(3)[:1]]),
            "labels": np.append(labels, 2),
            "mask": np.append(np.ones(12), 0),
        }
    ]
    assert EmbeddingEval().eval_result(padded)[1:] == (0.0, 12)


def test_two_stages_end_to_end_and_resume(tmp_path: Path, splits: Splits) -> None:
    shared = {
        "model": "embednet",
        "model_options": TINY,
        "batch_size": 16,
        "eval_batch_size": 32,
        "epochs": 2,
        "keep_checkpoints": 1,
    }
    stages = {
        "contrastive": {
            "task": "contrastive",
            "learning_rate": 0.01,
            "task_options": {"augment": AUG, "projection": (32, 16)},
        },
        "metric": {
            "task": "margin_softmax",
            "learning_rate": 0.01,
            "task_options": {"scale": 16.0, "margin": 0.2, "augment": AUG},
        },
    }
    run = make_staged({"shared": shared, "stages": stages})
    both = {"contrastive": splits, "metric": splits}
    result = fit_stages(run, tmp_path, progress=False, splits=both)
    assert list(result.stages) == ["contrastive", "metric"]
    assert [s["steps"] for s in result.stages.values()] == [2 * (96 // 16)] * 2
    assert all(s["error_kind"] == "eer" for s in result.stages.values())
    metric_info = json.loads((tmp_path / "metric" / "model" / "model.json").read_text())
    assert metric_info["info"]["config"]["init_from"] == str(tmp_path / "contrastive" / "model")
    first = json.loads((tmp_path / "contrastive" / "model" / "model.json").read_text())
    # which weights it started from, even once that folder is gone
    assert metric_info["info"]["init_from_params_sha256"] == first["params_sha256"]
    assert "init_from_params_sha256" not in first["info"]
    final = load_model(result.model_dir)
    assert set(final.params) == {"stem", "block1", "block2", "embed"}  # no task parameters
    out = final.module.apply({"params": final.params}, splits.test.images)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-5)
    # The learned embedding separates held-out people better than chance (EER 50%).
    assert result.stages["metric"]["test_error_pct"] < 40.0
    # Resuming a finished run trains nothing and gives the same model.
    again = fit_stages(run, tmp_path, resume=True, progress=False, splits=both)
    assert again.stages["metric"]["steps"] == result.stages["metric"]["steps"]
    np.testing.assert_array_equal(
        load_model(again.model_dir).params["embed"]["kernel"], final.params["embed"]["kernel"]
    )


def test_missing_datasets_are_said_before_training(
    tmp_path: Path, splits: Splits, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The evaluation suites read the real datasets once training ends: a run that would train
    # for hours and then find POCKETFIT_DATA unset says so before its first step.
    monkeypatch.delenv("POCKETFIT_DATA", raising=False)
    config = {"stages": {"one": _config("margin_softmax", epochs=1)}, "evaluation": "fingerprint"}
    with pytest.raises(DataNotFoundError, match="POCKETFIT_DATA is not set"):
        fit_stages(make_staged(config), tmp_path, progress=False, splits={"one": splits})
    assert not (tmp_path / "one").exists()
    missing = {**config, "evaluation_options": {"root": str(tmp_path / "nowhere")}}
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        fit_stages(make_staged(missing), tmp_path, progress=False, splits={"one": splits})
    # --no-evaluation: the same config trains without the datasets, and says it evaluated nothing.
    result = fit_stages(
        make_staged(config), tmp_path, progress=False, splits={"one": splits}, evaluate=False
    )
    assert result.evaluation is None
    assert not (tmp_path / "evaluation.json").exists()
    assert json.loads((result.model_dir / "model.json").read_text())["info"]["evaluation"] is None


@pytest.fixture(scope="module")
def one_stage(tmp_path_factory: pytest.TempPathFactory, splits: Splits) -> Path:
    """The saved model of one margin-softmax epoch (read, never changed, by the tests below)."""
    tmp = tmp_path_factory.mktemp("one_stage")
    run = make_staged({"stages": {"one": _config("margin_softmax", epochs=1)}})
    fit_stages(run, tmp, progress=False, splits={"one": splits})
    return tmp / "model"


def test_init_from_must_fit(one_stage: Path, splits: Splits) -> None:
    wider = make_config(
        _config(
            "margin_softmax",
            model_options={**TINY, "widths": (16, 48)},
            init_from=str(one_stage),
        )
    )
    with pytest.raises(ConfigError, match="do not fit"):
        Trainer(wider, splits.train.images, num_classes=12).init_state(jax.random.key(0))


def test_a_backbone_grown_by_a_ridge_branch_starts_as_the_saved_one(
    one_stage: Path, splits: Splits
) -> None:
    grown = {**TINY, "ridge_width": 8, "ridge_into": 2}
    new = ["ridge", "ridge_gate"]
    options = {"model_options": grown, "init_from": str(one_stage)}
    config = make_config(_config("margin_softmax", init_new=new, **options))
    state = Trainer(config, splits.train.images, num_classes=12).init_state(jax.random.key(0))
    params = jax.tree.map(np.asarray, state.params["model"])
    saved = load_model(one_stage)
    assert set(params) == set(saved.params) | set(new)
    module, x = build_model("embednet", **grown), splits.test.images
    before = saved.module.apply({"params": saved.params}, x)
    np.testing.assert_allclose(module.apply({"params": params}, x), before, atol=1e-6)
    opened = {**params, "ridge_gate": np.ones_like(params["ridge_gate"])}
    assert np.abs(module.apply({"params": opened}, x) - before).max() > 1e-3
    with pytest.raises(ConfigError, match="do not fit"):
        plain = make_config(_config("margin_softmax", **options))
        Trainer(plain, splits.train.images, num_classes=12).init_state(jax.random.key(0))
    with pytest.raises(ConfigError, match="does not have"):
        wrong = make_config(_config("margin_softmax", init_new=["ridge", "branch"], **options))
        Trainer(wrong, splits.train.images, num_classes=12).init_state(jax.random.key(0))
    with pytest.raises(ConfigError, match="set init_from"):
        make_config(_config("margin_softmax", init_new=new))
    with pytest.raises(ConfigError, match="init_new must be"):
        make_config(_config("margin_softmax", init_new="ridge", **options))


def test_the_ridge_branch_runs_from_the_stem_to_its_block() -> None:
    grown = {**TINY, "ridge_width": 8, "ridge_into": 2}
    key, x = jax.random.key(0), jnp.zeros((1, 32, 32, 1))
    params = build_model("embednet", **grown).init(key, x)["params"]
    shapes = jax.tree.map(np.shape, params["ridge"])
    assert shapes["block1"]["pointwise"]["kernel"] == (1, 1, 8, 8)  # at the stem's grid
    assert shapes["down2"]["pointwise"]["kernel"] == (1, 1, 16, 32)  # block 2's width
    assert "ridge" not in build_model("embednet", stop_after=1, **grown).init(key, x)["params"]
    with pytest.raises(ValueError, match="without the stem"):
        build_model("embednet", start_block=2, **grown).init(key, jnp.zeros((1, 8, 8, 16)))
    with pytest.raises(ValueError, match="power of two"):
        build_model("embednet", **{**grown, "strides": (3, 1)}).init(key, x)
    with pytest.raises(ValueError, match="ridge_into must be"):
        build_model("embednet", **{**grown, "ridge_into": 3}).init(key, x)


def test_imprinted_head_is_each_identity_mean_embedding(one_stage: Path, splits: Splits) -> None:
    saved = load_model(one_stage)
    options = {"task_options": {"head_init": "imprint"}, "init_from": str(one_stage)}
    config = make_config(_config("margin_softmax", **options))
    trainer = Trainer(config, splits.train.images, num_classes=12)
    kernel = np.asarray(
        trainer.init_state(jax.random.key(0), splits.train).params["classifier"]["kernel"]
    )
    emb = np.asarray(saved.module.apply({"params": saved.params}, splits.train.images))
    means = np.stack([emb[splits.train.labels == c].mean(0) for c in range(12)])
    want = (means / np.linalg.norm(means, axis=1, keepdims=True)).T
    # float32 embeddings summed in float64: equal to float32 rounding.
    np.testing.assert_allclose(kernel, want, atol=1e-5)
    # Without data (or with head_init="random") the classifier is the random one.
    fresh = np.asarray(trainer.init_state(jax.random.key(0)).params["classifier"]["kernel"])
    assert not np.allclose(fresh, want, atol=1e-2)
    with pytest.raises(ValueError, match="head_init must be one of"):
        build_task("margin_softmax", {"head_init": "mean"})


def test_wide_face_config_standardises_and_trains_two_stages() -> None:
    """embed_face_wide.py: the two stages of the EmbedNet that learns, on the 1.0M-parameter net."""
    path = CONFIGS / "embed_face_wide.py"
    run = load_run(path, ["metric.epochs=2"])
    assert run.names == ["contrastive", "metric"]
    options = run.stage("metric").model_options
    assert options["standardize"] and options["embed_norm"] and options["feature_norm"]
    assert run.stage("contrastive").model_options == options
    assert run.stage("metric").epochs == 2
    doc = path.read_text().split('"""')[1]
    assert "python -m pretrain --config pretrain/configs/embed_face_wide.py" in doc
    assert "Expected" in doc and "Time here" in doc


def test_wide15_face_config_changes_only_the_widths() -> None:
    """embed_face_wide15.py (a measured step, not committed): embed_face_wide.py but the widths."""
    wide = load_run(CONFIGS / "embed_face_wide.py")
    wide15 = load_run(CONFIGS / "embed_face_wide15.py")
    assert wide15.names == wide.names
    for name in wide.names:
        a, b = wide.stage(name).to_dict(), wide15.stage(name).to_dict()
        options = b.pop("model_options")
        assert options.pop("widths") == [72, 144, 144, 288, 288, 576, 768, 1024]
        assert options.pop("stem_width") == 48
        other = a.pop("model_options")
        assert {k: v for k, v in other.items() if k not in ("widths", "stem_width")} == options
        assert a == b
    doc = (CONFIGS / "embed_face_wide15.py").read_text().split('"""')[1]
    assert "Expected" in doc and "Time here" in doc


def test_staged_configs_and_overrides() -> None:
    for name in ("embed_face", "embed_fingerprint"):
        path = CONFIGS / f"{name}.py"
        run = load_run(path, ["metric.epochs=3", "seed=7", "metric.task_options.margin=0.3"])
        assert run.names == ["contrastive", "metric"]
        assert run.stage("metric").epochs == 3
        assert run.stage("metric").task_options["margin"] == 0.3
        assert {run.stage(n).seed for n in run.names} == {7}
        assert run.evaluation == name.removeprefix("embed_")
        doc = path.read_text().split('"""')[1]
        assert f"python -m pretrain --config pretrain/configs/{name}.py" in doc
        assert "Expected" in doc and "Time here" in doc
    with pytest.raises(ConfigError, match=r"unknown key 'bogus'.*a stage name"):
        load_run(CONFIGS / "embed_face.py", ["bogus=1"])
    with pytest.raises(ConfigError, match="stage configs have no key 'epoch'"):
        load_run(CONFIGS / "embed_face.py", ["metric.epoch=1"])
    with pytest.raises(ConfigError, match=r"unknown config key 'lr'.*learning_rate"):
        make_staged({"stages": {"a": {"lr": 1}}})


def test_dataset_options_are_checked() -> None:
    config = make_config({"dataset": "orl_faces", "dataset_options": {"subjects": (1, 5)}})
    with pytest.raises(ConfigError, match=r"no option.*subjects.*valid: train_subjects"):
        load_splits(config)


def test_cache_builds_once_and_rebuilds_what_is_damaged(tmp_path: Path) -> None:
    calls = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"x": np.arange(6.0).reshape(2, 3)}

    key = {"what": "test", "n": 2}
    first = cached(key, build, directory=tmp_path)
    second = cached(key, build, directory=tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["x"], second["x"])
    (npz,) = tmp_path.glob("*.npz")
    npz.write_bytes(npz.read_bytes()[:-7])  # truncated, e.g. a killed writer without rename
    np.testing.assert_array_equal(cached(key, build, directory=tmp_path)["x"], first["x"])
    assert len(calls) == 2
    cached({**key, "n": 3}, build, directory=tmp_path)  # another key is another entry
    assert len(calls) == 3 and len(list(tmp_path.glob("*.npz"))) == 2
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_prints_in_worker_processes_match_one_process(tmp_path: Path, monkeypatch) -> None:
    from pretrain.embedding import data

    monkeypatch.setattr(data, "CHUNK", 1)  # two identities make two chunks, one per worker
    one = data.synthetic_prints(range(0, 2), 2, seed=3, cache=str(tmp_path / "a"), workers=1)
    two = data.synthetic_prints(range(0, 2), 2, seed=3, cache=str(tmp_path / "b"), workers=2)
    np.testing.assert_array_equal(one.images, two.images)
    np.testing.assert_array_equal(one.labels, [0, 0, 1, 1])
    assert len(list((tmp_path / "b").glob("*.npz"))) == 2
    # From the cache, without generating: the same arrays.
    again = data.synthetic_prints(range(0, 2), 2, seed=3, cache=str(tmp_path / "b"), workers=2)
    np.testing.assert_array_equal(again.images, one.images)
    # Fresh people drawn once store only the impressions asked for; the key keeps them apart.
    few = data.synthetic_prints(
        range(0, 2), 2, seed=3, cache=str(tmp_path / "c"), workers=1, min_stored=2
    )
    np.testing.assert_array_equal(few.images, one.images)
    stored = [
        json.loads(m.read_text())["shapes"]["images"] for m in (tmp_path / "c").glob("*.json")
    ]
    assert stored == [[2, 128, 128, 1]] * 2  # one identity x 2 impressions per chunk
    monkeypatch.setenv("POCKETFIT_WORKERS", "zero")
    with pytest.raises(ConfigError, match="POCKETFIT_WORKERS"):
        data.default_workers()


def test_code_digest_follows_what_runs_not_its_prose(tmp_path: Path) -> None:
    source = tmp_path / "module.py"

    def digest(text: str) -> str:
        source.write_text(text)
        return code_digest([source])

    base = digest('"""A module."""\n\nSCALE = 2\n\n\ndef f(x):\n    return SCALE * x\n')
    # Another docstring, a comment, a constant's note, other spacing: the same code.
    prose = digest(
        '"""A module, described again."""\n\nSCALE = 2  # why two\n"""The scale."""\n\n'
        'def f( x ):\n    """Doubles."""\n    return SCALE*x\n'
    )
    assert prose == base
    assert digest('"""A module."""\n\nSCALE = 3\n\n\ndef f(x):\n    return SCALE * x\n') != base
    assert digest('"""A module."""\n\nSCALE = 2\n\n\ndef f(x):\n    return x * SCALE\n') != base


def test_generator_settings_reach_the_prints_and_their_cache_key(tmp_path: Path) -> None:
    from pretrain.data import GeneratorConfig
    from pretrain.embedding import data

    cache = str(tmp_path)
    wide = GeneratorConfig(shift_sd=46.0, shift_max=120.0)
    default = data.synthetic_prints(range(0, 2), 2, seed=3, cache=cache, workers=1)
    placed = data.synthetic_prints(range(0, 2), 2, seed=3, cache=cache, workers=1, generator=wide)
    assert len(list(tmp_path.glob("*.npz"))) == 2  # two generators, two entries
    assert not np.array_equal(default.images, placed.images)
    with pytest.raises(ConfigError, match="generator: unknown generator option"):
        data.synthetic_fingerprint_splits(identities=2, test_identities=2, generator={"sd": 1})


def test_a_larger_window_keeps_the_crops_scale_and_reaches_the_prints(tmp_path: Path) -> None:
    from devices.localiser import ANCHOR_VIEWS_SPEC
    from export.artifact.split import OPTION_SPECS
    from pretrain.embedding import data

    options = {"crop": "anchor_views", "window": 320}
    spec = data.print_spec(options)
    assert (spec.crop_size, spec.input_size) == ((320, 320), (160, 160))
    assert spec.second_anchor_below == ANCHOR_VIEWS_SPEC.second_anchor_below
    assert data.print_spec({"crop": "anchor_views"}) == ANCHOR_VIEWS_SPEC  # 0: the crop's own
    assert data.fingerprint_spec("anchor_views", 256) == ANCHOR_VIEWS_SPEC
    assert OPTION_SPECS["synthetic_fingerprints"](options) == spec  # the export cuts the same
    for bad in (32, 321):
        with pytest.raises(ConfigError, match="window must be"):
            data.print_spec({"crop": "anchor", "window": bad})
    splits = data.synthetic_fingerprint_splits(
        identities=2, test_identities=2, val_identities=0, impressions=1, held_out_impressions=1,
        cache=str(tmp_path), crop="foreground", window=192,
    )  # fmt: skip
    assert splits.test.images.shape[1:3] == (96, 96)


def test_a_fitted_flow_table_is_part_of_the_cache_key(tmp_path: Path, monkeypatch) -> None:
    from pretrain.data import GeneratorConfig
    from pretrain.embedding import data

    cache, fitted = str(tmp_path / "cache"), GeneratorConfig(flow="sfinge")
    data.synthetic_prints(range(0, 1), 1, seed=3, cache=cache, workers=1, generator=fitted)
    data.synthetic_prints(range(0, 1), 1, seed=3, cache=cache, workers=1, generator=fitted)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    # A refitted table (other bytes) must not reuse the prints drawn from the old one.
    other = tmp_path / "flow.npz"
    other.write_bytes(data._flow.TABLE.read_bytes() + b"refit")
    monkeypatch.setattr(data._flow, "TABLE", other)
    data._flow_table_sha256.cache_clear()
    try:
        data.synthetic_prints(range(0, 1), 1, seed=3, cache=cache, workers=1, generator=fitted)
    finally:
        data._flow_table_sha256.cache_clear()
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_the_held_out_windows_start_with_the_cached_prints(tmp_path: Path) -> None:
    from pretrain.embedding import data

    options = {
        "identities": 2,
        "val_identities": 2,
        "test_identities": 2,
        "held_out_impressions": 2,
        "crop": "anchor_views",
        "cache": str(tmp_path),
    }
    held = data.synthetic_test_set(**options)
    windows = data.synthetic_test_windows(**options)
    assert windows.shape == (len(held.images), 2, *held.images.shape[1:])
    np.testing.assert_array_equal(windows[:, 0], held.images)
    # The same cache entries as the one-window crop: the windows are the same.
    plain = data.synthetic_test_set(**{**options, "crop": "anchor"})
    np.testing.assert_array_equal(plain.images, held.images)
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_each_split_is_drawn_when_first_read_and_once(tmp_path: Path, monkeypatch) -> None:
    """The splits draw no identity until a split is read, then that split's alone, once: the
    OTA retraining (the training set only) never draws the held-out identities."""
    from pretrain.embedding import data

    options = {
        "identities": 3,
        "impressions": 2,
        "val_identities": 2,
        "test_identities": 2,
        "held_out_impressions": 2,
        "cache": str(tmp_path),
    }
    drawn: list[range] = []
    draw = data.synthetic_prints
    monkeypatch.setattr(
        data, "synthetic_prints", lambda ids, *a, **k: drawn.append(ids) or draw(ids, *a, **k)
    )
    ranges = data.print_ranges(options)
    values = {"dataset": "synthetic_fingerprints", "dataset_options": options, "val_size": 0}
    config = make_config(values)
    splits = load_splits(config)
    assert drawn == []
    train = splits.train
    assert drawn == [ranges.train] and splits.train is train  # drawn once
    assert len(train) == 3 * 2 and set(train.labels.tolist()) == {0, 1, 2}
    test = splits.test
    assert drawn == [ranges.train, ranges.test]
    np.testing.assert_array_equal(test.images, data.synthetic_test_set(**options).images)
    val = splits.val
    assert val is not None and drawn[-1] == ranges.val and len(val) == 2 * 2
    # A stage that leaves the validation identities unused never draws them; the development
    # set is still there for choices made after training.
    assert data.synthetic_fingerprint_splits(**{**options, "validate": False}).val is None
    np.testing.assert_array_equal(data.synthetic_val_set(**options).images, val.images)
