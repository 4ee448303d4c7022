"""devices.views: the test-time views the server and the device build, and their average."""

from __future__ import annotations

import numpy as np
import pytest

from devices.cosine import normalize
from devices.views import (
    FLIP,
    SINGLE,
    TestViews,
    ViewsError,
    average_views,
    embed_views,
    make_views,
    views_of_input,
)

VIEWS = TestViews(mirror=True, shift_px=3, zoom=1.08)


def _batch(n: int = 4, shape: tuple[int, ...] = (20, 16, 1)) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, *shape)).astype(np.float32)


@pytest.mark.parametrize("shape", [(20, 16), (20, 16, 1), (20, 16, 3)])
def test_views_are_view_major_and_exact_where_they_move_pixels(shape: tuple[int, ...]) -> None:
    x = _batch(3, shape)
    v = make_views(x, VIEWS)
    assert v.shape == (12 * 3, *shape) and v.dtype == x.dtype and VIEWS.count == 12
    parts = v.reshape(12, 3, *shape)
    np.testing.assert_array_equal(parts[0], x)  # the capture itself first
    np.testing.assert_array_equal(parts[1][:, 3:], x[:, :-3])  # down by 3
    np.testing.assert_array_equal(parts[1][:, :3], np.repeat(x[:, :1], 3, axis=1))  # border
    np.testing.assert_array_equal(parts[4][:, :, :-3], x[:, :, 3:])  # left by 3
    np.testing.assert_array_equal(parts[6], x[:, :, ::-1])  # the mirror of the capture
    np.testing.assert_array_equal(parts[11], parts[5][:, :, ::-1])  # the mirrored zoom


def test_the_zoom_magnifies_about_the_centre() -> None:
    ramp = np.tile(np.arange(21, dtype=np.float32), (1, 21, 1))  # x = column index
    zoomed = make_views(ramp, TestViews(zoom=1.25))[1]
    # a linear ramp magnified by 1.25 about column 10: 10 + (x - 10) / 1.25, exactly linear
    np.testing.assert_allclose(zoomed[0], 10 + (np.arange(21) - 10) / 1.25, rtol=1e-6)
    flat = make_views(np.full((1, 9, 9), 7, np.float32), TestViews(zoom=1.5))[1]
    np.testing.assert_array_equal(flat, 7)


def flip_average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Test-time flip averaging written out: the normalised sum of both unit embeddings."""
    return normalize(normalize(a) + normalize(b)).astype(np.float32)


def test_the_average_is_flip_averaging_for_the_mirror_alone() -> None:
    e = np.random.default_rng(1).normal(size=(10, 8))
    np.testing.assert_array_equal(average_views(e, 2), flip_average(e[:5], e[5:]))
    np.testing.assert_array_equal(average_views(e, 1), flip_average(e, e))
    with pytest.raises(ViewsError, match="not 3 views"):
        average_views(e, 3)


def test_embed_views_in_chunks_equals_one_batch() -> None:
    x = _batch(7)
    w = np.random.default_rng(2).normal(size=(20 * 16, 5))
    embed = lambda b: b.reshape(len(b), -1) @ w  # noqa: E731
    whole = average_views(embed(make_views(x, VIEWS)), VIEWS.count)
    np.testing.assert_allclose(embed_views(embed, x, VIEWS, chunk=3), whole, rtol=1e-6)
    np.testing.assert_array_equal(embed_views(embed, x, SINGLE), embed(x).astype(np.float32))


def test_manifests_old_and_new_and_bad_descriptions() -> None:
    assert views_of_input({"views": VIEWS.to_dict()}) == VIEWS
    assert views_of_input({"flip_average": True}) == FLIP
    assert views_of_input({}) == SINGLE and SINGLE.count == 1 and FLIP.count == 2
    assert TestViews.from_dict(VIEWS.to_dict()) == VIEWS
    with pytest.raises(ViewsError, match="unknown field"):
        TestViews.from_dict({"mirror": True, "rotate": 5})
    with pytest.raises(ViewsError, match="mirror must be true or false"):
        TestViews.from_dict({"mirror": "false"})
    with pytest.raises(ViewsError, match="shift_px"):
        TestViews(shift_px=-1)
    with pytest.raises(ViewsError, match="zoom"):
        TestViews(zoom=0.5)
    with pytest.raises(ViewsError, match="too small"):
        make_views(np.zeros((1, 6, 6), np.float32), VIEWS)
    with pytest.raises(ViewsError, match="batch"):
        make_views(np.zeros((6, 6), np.float32), VIEWS)
