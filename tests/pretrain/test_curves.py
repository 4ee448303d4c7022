"""Learning curves: descriptors, the linear classifier, subsets, summaries and crossing points."""

from __future__ import annotations

import numpy as np
import pytest

import pretrain
from pretrain.data import ArrayDataset
from pretrain.evaluation import (
    DESCRIPTORS,
    CurveError,
    DescriptorError,
    DescriptorSpec,
    LinearError,
    choose_linear,
    crossing_point,
    dense_sift_features,
    draw_subset,
    fit_linear,
    gist_bank,
    gist_features,
    k_shot_split,
    summarize,
)
from pretrain.evaluation.curve_runs import CellStore, _config_digest, patience_table, repeat_to
from pretrain.evaluation.linear import _loss_and_grad

SHAPES = {"sift": (4, 28, 28), "lbp": (4, 28, 28), "hog": (4, 28, 28), "gist": (4, 28, 28)}
DIMS = {"sift": 9 * 128, "lbp": 16 * 10, "hog": 6 * 6 * 36, "gist": 512}
OPTIONS = {"sift": {"cell": 4, "stride": 6}, "lbp": {"grid": 4}, "hog": {"cell": 4}, "gist": {}}


@pytest.mark.parametrize("name", sorted(DESCRIPTORS))
def test_descriptor_shapes_and_determinism(name: str) -> None:
    images = np.random.default_rng(0).random(SHAPES[name]).astype(np.float32)
    spec = DescriptorSpec(name, OPTIONS[name])
    a, b = spec(images), spec(images[..., None])
    assert a.shape == (len(images), DIMS[name]) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a))
    # each image's features depend on that image only (batching changes nothing)
    np.testing.assert_allclose(spec(images[1:2])[0], a[1], rtol=1e-5, atol=1e-6)


def test_descriptors_refuse_bad_images() -> None:
    with pytest.raises(DescriptorError, match="grayscale"):
        dense_sift_features(np.zeros((2, 28, 28, 3)))
    with pytest.raises(DescriptorError, match="smaller cell"):
        dense_sift_features(np.zeros((2, 12, 12)), cell=4)
    with pytest.raises(DescriptorError, match="grid"):
        gist_features(np.zeros((2, 3, 3)))


def test_sift_sees_the_edge_orientation() -> None:
    """A vertical step (gradient along +x) puts the energy in orientation bin 0."""
    image = np.zeros((1, 16, 16), np.float32)
    image[:, :, 8:] = 1.0
    d = dense_sift_features(image, cell=4, stride=8).reshape(-1, 16, 8)
    per_bin = d.sum(axis=(0, 1))
    assert per_bin.argmax() == 0 and per_bin[0] > 5 * np.delete(per_bin, 0).max()


def test_gist_peaks_at_the_grating_band() -> None:
    """A grating of 0.125 cycles/px varying along x answers most in scale 1, orientation 0."""
    x = np.arange(32)
    image = np.tile(np.cos(2 * np.pi * 0.125 * x), (32, 1))[None].astype(np.float32)
    energy = gist_features(image).reshape(4, 8, 16).mean(axis=2)
    assert np.unravel_index(energy.argmax(), energy.shape) == (1, 0)
    bank = gist_bank((32, 32))
    assert bank.shape == (32, 32, 32) and bank.max() <= 1.0 + 1e-6


def _blobs(n: int, *, seed: int, classes: int = 3, d: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = np.eye(classes, d) * 4
    return centres[labels] + rng.normal(size=(n, d)), labels


def test_linear_gradient_matches_finite_differences() -> None:
    x, y = _blobs(20, seed=0)
    onehot = np.eye(3)[y]
    theta = np.random.default_rng(1).normal(size=5 * 3 + 3) * 0.1
    _, grad = _loss_and_grad(theta, x, onehot, 0.1)
    eps = 1e-6
    numeric = np.array(
        [
            (
                _loss_and_grad(theta + eps * e, x, onehot, 0.1)[0]
                - _loss_and_grad(theta - eps * e, x, onehot, 0.1)[0]
            )
            / (2 * eps)
            for e in np.eye(len(theta))
        ]
    )
    # float64 inputs: central differences agree to ~eps**2 (fit_linear itself runs in float32)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_linear_fits_separable_data_and_is_deterministic() -> None:
    x, y = _blobs(90, seed=0)
    xt, yt = _blobs(90, seed=1)
    a = fit_linear(x, y, l2=1e-3)
    b = fit_linear(x, y, l2=1e-3)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.error(x, y) == 0.0 and a.error(xt, yt) < 0.05
    # a penalty this strong shrinks the weights
    assert np.abs(fit_linear(x, y, l2=10.0).weights).max() < np.abs(a.weights).max()


def test_choose_linear_keeps_the_lowest_validation_error() -> None:
    x, y = _blobs(60, seed=0)
    xv, yv = _blobs(60, seed=2)
    chosen = choose_linear((x, y), (xv, yv), grid=(1e-3, 1e2))
    assert set(chosen.val_errors) == {1e-3, 1e2}
    assert chosen.val_errors[chosen.model.l2] == min(chosen.val_errors.values())


def test_linear_refuses_bad_input() -> None:
    x, y = _blobs(10, seed=0)
    with pytest.raises(LinearError, match="labels"):
        fit_linear(x, y[:5], l2=1.0)
    with pytest.raises(LinearError, match="2 classes"):
        fit_linear(x, np.zeros(10, np.int64), l2=1.0)
    with pytest.raises(LinearError, match="l2"):
        fit_linear(x, y, l2=0.0)


def test_subsets_are_disjoint_seeded_and_sized() -> None:
    a = draw_subset(1000, 100, seed=0)
    assert len(a.train) == 80 and len(a.val) == 20 and not set(a.train) & set(a.val)
    b = draw_subset(1000, 100, seed=1)
    assert not np.array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.train, draw_subset(1000, 100, seed=0).train)
    assert len(draw_subset(60000, 60000, seed=0).val) == 5000
    with pytest.raises(CurveError):
        draw_subset(100, 200, seed=0)


def test_k_shot_split_takes_k_per_identity() -> None:
    labels = np.repeat(np.arange(4), 10)
    train, test = k_shot_split(labels, 3, seed=0)
    assert np.all(np.bincount(labels[train]) == 3) and np.all(np.bincount(labels[test]) == 7)
    with pytest.raises(CurveError, match="k must be"):
        k_shot_split(labels, 10, seed=0)


def test_summary_and_crossing_point() -> None:
    rows = summarize({300: [2.0, 4.0], 100: [5.0]})
    assert [r["train_size"] for r in rows] == [100, 300]
    assert rows[1]["error_pct_mean"] == 3.0 and rows[1]["error_pct_std"] == pytest.approx(
        np.sqrt(2)
    )

    def curve(means: list[float], std: float) -> list[dict[str, float]]:
        return [
            {"train_size": s, "error_pct_mean": m, "error_pct_std": std}
            for s, m in zip((10, 100, 1000, 10000), means, strict=True)
        ]

    # means cross at 1000; within one std the CNN is already below at 100 (8.2 - 0.5 < 8 + 0.5)
    curves = {"cnn": curve([20, 8.2, 3, 1], 0.5), "hog": curve([10, 8, 5, 4], 0.5)}
    c = crossing_point(curves, "cnn")
    assert c["size"] == 1000 and c["interval"] == [100, 1000]
    never = {"cnn": curve([20, 9, 6, 5], 0.5), "hog": curve([10, 8, 5, 4], 0.5)}
    assert crossing_point(never, "cnn")["size"] is None
    with pytest.raises(CurveError):
        crossing_point({"hog": curves["hog"]}, "cnn")


def test_cell_store_runs_each_cell_once(tmp_path) -> None:
    store = CellStore(tmp_path)
    calls = []

    def work() -> dict[str, float]:
        calls.append(1)
        return {"error_pct": 1.5}

    store.run("mnist", "hog", 100, 0, work)
    store.run("mnist", "hog", 100, 0, work)
    store.run("mnist", "hog", 100, 1, lambda: {"error_pct": 2.5})
    assert len(calls) == 1
    assert store.curves("mnist")["hog"][0]["error_pct_mean"] == 2.0


def test_cell_store_recomputes_a_cell_stored_under_another_key(tmp_path) -> None:
    store = CellStore(tmp_path)
    store.run("mnist", "cnn", 100, 0, lambda: {"error_pct": 9.0}, "old-recipe")
    assert (
        store.run("mnist", "cnn", 100, 0, lambda: {"error_pct": 3.0}, "old-recipe")["error_pct"]
        == 9.0
    )
    cell = store.run("mnist", "cnn", 100, 0, lambda: {"error_pct": 3.0}, "new-recipe")
    assert cell == {"error_pct": 3.0, "key": "new-recipe"}
    assert store.get("mnist", "cnn", 100, 0, "old-recipe") is None


def test_config_digest_ignores_the_seed_only() -> None:
    config = pretrain.TrainConfig(model="lenet5", dataset="mnist")
    same = pretrain.TrainConfig(model="lenet5", dataset="mnist", seed=7)
    longer = pretrain.TrainConfig(model="lenet5", dataset="mnist", epochs=config.epochs + 1)
    assert _config_digest(config) == _config_digest(same)
    assert _config_digest(config) != _config_digest(longer)
    assert _config_digest(config) != _config_digest(config, min_epoch_examples=1)


def test_patience_table_stops_after_p_epochs_without_a_new_best() -> None:
    val = [5.0, 4.0, 4.0, 4.5, 3.0, 3.5, 3.5, 3.5, 3.5]
    table = patience_table(val, [2, 3, 10])
    assert table["2"] == {"stop_epoch": 4, "best_epoch": 2, "val_error_pct": 4.0}
    assert table["3"] == {"stop_epoch": 8, "best_epoch": 5, "val_error_pct": 3.0}
    # never stopped by patience: the run's own length
    assert table["10"] == {"stop_epoch": 9, "best_epoch": 5, "val_error_pct": 3.0}


def test_patience_table_compares_like_fit_against_a_float32_best() -> None:
    # 7% is stored as float32 0.0700000003 > 0.07: a tie counts as a new best, as in fit
    assert float(np.float32(0.07)) > 0.07 and float(np.float32(0.04)) < 0.04
    table = patience_table([8.0, 7.0, 7.0, 7.0, 7.0], [2])
    assert table["2"] == {"stop_epoch": 5, "best_epoch": 5, "val_error_pct": 7.0}


def test_repeat_to_repeats_whole_sets() -> None:
    data = ArrayDataset(np.zeros((3, 2, 2, 1), np.float32), np.arange(3, dtype=np.int32))
    assert len(repeat_to(data, 10)) == 12 and len(repeat_to(data, 2)) == 3


def test_size_labels_shorten_from_ten_thousand() -> None:
    from pretrain.evaluation.curve_plot import _size_label

    assert [_size_label(s) for s in (100, 3000, 10000, 60000, 12345)] == [
        "100",
        "3,000",
        "10k",
        "60k",
        "12,345",
    ]
