"""A chosen structure round-trips through disk and is refused when another recipe made it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pretrain.compression.structure_io import load_structure, save_structure
from pretrain.compression.structured import Structure


def test_a_structure_round_trips_and_another_recipe_reads_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    structure = Structure(
        {"stem": rng.random(8) > 0.5, "block2/pointwise": rng.random(16) > 0.5},
        {"conv1": rng.random((3, 8)) > 0.5},
        {},
    )
    made_by = {"recipe": {"keep": 0.4, "stem_kernel": 2}, "l1": False}
    log = [{"round": 1, "error": np.float64(0.25)}]
    path = tmp_path / "run" / "selection.npz"
    assert load_structure(path, made_by) is None  # nothing saved yet
    save_structure(path, structure, made_by, log)
    got = load_structure(path, made_by)
    assert got is not None
    back, back_log = got
    for field in Structure._fields:
        assert set(getattr(back, field)) == set(getattr(structure, field))
        for layer, mask in getattr(structure, field).items():
            np.testing.assert_array_equal(getattr(back, field)[layer], mask)
    assert back_log == [{"round": 1, "error": 0.25}]
    assert load_structure(path, {**made_by, "recipe": {"keep": 0.5, "stem_kernel": 2}}) is None
    assert load_structure(path, {**made_by, "l1": True}) is None
