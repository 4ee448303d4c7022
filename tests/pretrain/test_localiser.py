"""The localiser's teacher and trainer: anchors where the generator drew them, a short training
that learns something, and an integer network that follows its float one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from devices.localiser import Localiser
from pretrain.data.fingerprint import FingerprintGenerator, GeneratorConfig, master_coordinates
from pretrain.data.fingerprint.anchors import (
    impression_anchor,
    master_anchor,
)
from pretrain.data.fingerprint.synthetic import impression_placement
from pretrain.localiser import (
    SENSOR_SHAPES,
    LocaliserConfig,
    anchor_data,
    errors_px,
    float_predictions,
    integer_predictions,
    padded_to,
    quantise,
    target_cells,
    train_localiser,
)

WIDE = GeneratorConfig(shift_sd=46.0, shift_max=120.0)  # anchors often outside the print


def test_anchor_maps_back_to_the_master_point() -> None:
    gen = FingerprintGenerator(seed=0, config=WIDE, cache_size=1)
    shape = WIDE.impression_shape
    checked = 0
    for identity in range(6):
        master = gen.master(identity)
        x, y = master_anchor(master)
        for k in range(4):
            where = impression_placement(identity, k, seed=0, config=WIDE)
            row, col = impression_anchor(master, where, shape)
            if 0 <= row < shape[0] - 1 and 0 <= col < shape[1] - 1:
                rows, cols = master_coordinates(where, shape, master.centre)
                r, c = round(row), round(col)
                # inside the print, the anchor's pixel maps to the master point (skin
                # distortion moves it by a few px at most)
                assert np.hypot(rows[r, c] - y, cols[r, c] - x) < 12
                checked += 1
    assert checked >= 8


def test_an_arch_has_an_anchor_too() -> None:
    gen = FingerprintGenerator(seed=0, cache_size=1)
    arch = next(gen.master(i) for i in range(200) if gen.master(i).fp_class == "arch")
    x, y = master_anchor(arch)
    h, w = arch.ridges.shape
    assert 0 < x < w and 0 < y < h


def test_targets_are_blocks_of_the_padded_grid() -> None:
    cells = target_cells(np.array([[4.0, 4.0], [-60.0, 500.0]]), (56, 56))
    np.testing.assert_array_equal(cells[0], [8, 8])  # block 0 is cell PAD
    np.testing.assert_array_equal(cells[1], [0, 55])  # clipped to the grid


@pytest.fixture(scope="module")
def data():
    config = GeneratorConfig(impression_shape=(160, 160), shift_sd=8.0, shift_max=16.0)
    train = anchor_data(range(300, 316), 4, seed=0, generator=config)
    val = anchor_data(range(316, 320), 4, seed=0, generator=config)
    return train, val


def test_training_learns_and_quantising_keeps_it(data) -> None:
    train, val = data
    config = LocaliserConfig(channels=4, epochs=3, batch_size=16, learning_rate=1e-2)
    params, history = train_localiser(train, val, config, width=160)
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    localiser = quantise(params, val[0])
    integer = integer_predictions(localiser, val[0])
    assert integer.shape == (len(val[0]), 2)
    # the integer network points where the float one does, give or take a block mostly
    floated = float_predictions(params, val[0])
    assert np.median(errors_px(integer, floated)) <= 8


def test_cli_trains_writes_and_evaluates_sizes(tmp_path: Path, capsys) -> None:
    from pretrain.__main__ import main

    config = tmp_path / "gen.py"
    config.write_text("GENERATOR = {'impression_shape': [128, 128], 'shift_sd': 8.0}\n")
    out, table = tmp_path / "loc.npz", tmp_path / "loc.json"
    common = ["--generator-config", str(config), "--out", str(out), "--json", str(table)]
    small = ["--identities", "2", "--val-identities", "1", "--no-progress"]
    assert main(["localiser", *common, *small, "--epochs", "1", "--workdir", str(tmp_path)]) == 0
    figures = json.loads(table.read_text())
    assert Localiser.from_bytes(out.read_bytes()).dilations == (1, 2, 4, 8, 1)
    assert figures["train_identities"] == [[300, 302]] and figures["val_identities"] == [302, 303]
    # the trained size and each sensor size, with a median error in pixels
    sizes = figures["val_by_impression_size"]
    assert list(sizes) == ["128x128", *(f"{h}x{w}" for h, w in SENSOR_SHAPES)]
    assert all(0 <= s["median_px"] < 1000 for s in sizes.values())
    table.write_text(json.dumps({"kept": 1}))
    assert main(["localiser", *common, *small, "--evaluate"]) == 0
    again = json.loads(table.read_text())
    assert again["kept"] == 1 and again["val_by_impression_size"] == sizes  # same weights


def test_cli_trains_on_two_generators_of_different_sizes(tmp_path: Path) -> None:
    from pretrain.__main__ import main

    small, large = tmp_path / "small.py", tmp_path / "large.py"
    small.write_text("GENERATOR = {'impression_shape': [128, 128], 'shift_sd': 8.0}\n")
    large.write_text(
        "GENERATOR = {'impression_shape': [192, 160], 'shift_sd': 8.0, 'finger_scale': 1.1}\n"
    )
    out, table = tmp_path / "loc.npz", tmp_path / "loc.json"
    args = ["localiser", "--generator-config", str(small), "--generator-config", str(large)]
    files = ["--out", str(out), "--json", str(table), "--workdir", str(tmp_path)]
    rest = ["--val-identities", "1", "--epochs", "1", "--no-progress"]
    assert main([*args, *files, "--identities", "2", "--identities", "1", *rest]) == 0
    figures = json.loads(table.read_text())
    # each generator its own training identities; the held-out ones after all of them, from both
    assert figures["train_identities"] == [[300, 302], [300, 301]]
    assert figures["val_identities"] == [302, 303]
    assert [g["impression_shape"] for g in figures["generators"]] == [[128, 128], [192, 160]]
    assert len(figures["val_integer_by_generator"]) == 2
    assert "128x128" in figures["val_by_impression_size"]  # the first generator's sizes
    bad = [*args, *files, "--identities", "2", "--identities", "1", "--identities", "1", *rest]
    assert main(bad) == 2


def test_padding_keeps_a_small_print_where_it_was() -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    padded = padded_to(x, (6, 7))
    assert padded.shape == (2, 3, 6, 7)
    np.testing.assert_array_equal(padded[:, :, :4, :5], x)
    assert not padded[:, :, 4:].any() and not padded[:, :, :, 5:].any()


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from pretrain.__main__ import main

    config = tmp_path / "gen.py"
    config.write_text("X = 1\n")
    assert main(["localiser", "--generator-config", str(config)]) == 2
    assert "defines no GENERATOR" in capsys.readouterr().err
    config.write_text("GENERATOR = {}\n")
    args = ["localiser", "--generator-config", str(config), "--out", str(tmp_path / "none.npz")]
    assert main([*args, "--evaluate", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read the localiser") and "Traceback" not in err
    train = ["localiser", "--generator-config", str(config), "--workdir", str(tmp_path)]
    for flag in ("--epochs", "--identities", "--val-identities"):
        with pytest.raises(SystemExit) as exit_:
            main([*train, flag, "0"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and f"argument {flag}: must be >= 1, got 0" in err
    assert main([*train, "--identities", "1"]) == 2  # 16 prints: no batch of 32
    err = capsys.readouterr().err
    assert err.startswith("error: 1 training identities give 16 prints") and err.count("\n") == 1
    assert not list(tmp_path.glob("*.npz"))  # refused before any print was drawn
    with pytest.raises(ValueError, match="epochs and batch_size must be >= 1"):
        LocaliserConfig(epochs=0)
    with pytest.raises(SystemExit):
        main(["localiser", "-h"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: devices/localiser.npz" in help_text
    assert "default: notebooks/results/localiser.json" in help_text
