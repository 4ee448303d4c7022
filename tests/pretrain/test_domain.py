"""The domain offset on embeddings built with a known shared direction."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.evaluation import DomainOffsetError, domain_offset, offsets_by_group


def _people(shared: float, *, n: int = 40, per: int = 4, d: int = 64, seed: int = 0) -> tuple:
    """``n`` people x ``per`` samples: a random identity direction each plus ``shared`` times
    one direction common to all."""
    rng = np.random.default_rng(seed)
    ids = rng.normal(size=(n, d)) / np.sqrt(d)
    common = np.zeros(d)
    common[0] = 1.0
    x = np.repeat(ids, per, axis=0) + 0.1 * rng.normal(size=(n * per, d)) / np.sqrt(d)
    x = x / np.linalg.norm(x, axis=1, keepdims=True) + shared * common
    return x, np.repeat(np.arange(n), per)


def test_spread_people_have_no_offset() -> None:
    x, y = _people(0.0)
    got = domain_offset(x, y)
    assert got["mean_unit_norm"] < 0.2
    assert abs(got["impostor_cosine_mean"]) < 0.05
    assert got["samples"] == 160 and got["identities"] == 40


def test_a_shared_direction_shows_in_both_numbers() -> None:
    x, y = _people(1.5)
    got = domain_offset(x, y)
    # unit rows of (identity + 1.5 e0): the shared part's share of each is 1.5 / sqrt(1 + 2.25)
    assert got["mean_unit_norm"] == pytest.approx(1.5 / np.sqrt(3.25), abs=0.05)
    assert got["impostor_cosine_mean"] == pytest.approx(2.25 / 3.25, abs=0.05)
    assert got["impostor_cosine_p99"] > got["impostor_cosine_mean"]


def test_windows_read_the_first_and_chunks_change_nothing() -> None:
    x, y = _people(0.8, n=300, per=4)  # 1,200 rows: more than one chunk
    windows = np.stack([x, np.roll(x, 1, axis=0)], axis=1)
    assert domain_offset(windows, y) == domain_offset(x, y)
    e = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = e @ e.T
    assert domain_offset(x, y)["impostor_cosine_mean"] == pytest.approx(
        float(cos[y[:, None] != y[None, :]].mean()), rel=1e-9
    )


def test_offsets_by_group_keep_the_groups_apart() -> None:
    a, ya = _people(0.0, seed=1)
    b, yb = _people(1.5, seed=2)
    got = offsets_by_group(
        np.concatenate([a, b]), np.concatenate([ya, yb + 100]), np.repeat(["a", "b"], 160)
    )
    assert list(got) == ["a", "b"]
    assert got["a"]["mean_unit_norm"] < 0.2 < 0.7 < got["b"]["mean_unit_norm"]


@pytest.mark.parametrize(
    ("features", "labels", "match"),
    [
        (np.ones((4, 3)), np.zeros(4), "two identities"),
        (np.ones((4, 3)), np.zeros(3), "labels"),
        (np.full((4, 3), np.nan), np.arange(4), "NaN"),
        (np.ones(4), np.arange(4), "features"),
    ],
)
def test_bad_input_is_refused_with_a_reason(features, labels, match) -> None:
    with pytest.raises(DomainOffsetError, match=match):
        domain_offset(features, labels)
