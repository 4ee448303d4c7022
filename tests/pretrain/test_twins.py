"""Flow-twin separation: genuine, twin and other cosines, and the genuine-vs-twin EER."""

from __future__ import annotations

import numpy as np
import pytest

from pretrain.evaluation import TwinSeparationError, twin_separation


def _fingers(flow: float, detail: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8 fingers (4 twin pairs) x 6 samples: each embedding is its pair's flow direction
    (weight ``flow``) plus its own finger's detail direction (weight ``detail``) plus noise."""
    rng = np.random.default_rng(seed)
    flows, details = rng.normal(size=(4, 64)), rng.normal(size=(8, 64))
    labels = np.repeat(np.arange(8), 6)
    x = flow * flows[labels // 2] + detail * details[labels] + 0.3 * rng.normal(size=(48, 64))
    return x, labels


def test_a_flow_reader_scores_twins_as_genuine_and_a_detail_reader_as_impostors() -> None:
    flow_only = twin_separation(*_fingers(flow=1.0, detail=0.0))
    detail = twin_separation(*_fingers(flow=0.0, detail=1.0))
    assert flow_only["twin_cosine_mean"] > 0.8 and 35 < flow_only["twin_eer_pct"] < 65
    assert abs(detail["twin_cosine_mean"]) < 0.2 and detail["twin_eer_pct"] == 0.0
    assert detail["genuine_cosine_mean"] > 0.8
    assert detail["genuine_pairs"] == 8 * 15 and detail["twin_pairs"] == 4 * 36


def test_twins_are_the_pairs_2k_and_2k_plus_1() -> None:
    x, labels = _fingers(flow=1.0, detail=0.0)
    # Relabelled so the flow partners are (1, 2), (3, 4), ...: no pair (2k, 2k + 1) shares a
    # flow any more, so the "twins" score as impostors.
    shifted = twin_separation(x, labels + 1)
    assert shifted["twin_cosine_mean"] < 0.6


def test_bad_input_is_refused_with_the_reason() -> None:
    x, labels = _fingers(flow=1.0, detail=1.0)
    with pytest.raises(TwinSeparationError, match="labels"):
        twin_separation(x, labels - 1)
    with pytest.raises(TwinSeparationError, match="twin pairs"):
        twin_separation(x[labels % 2 == 0], labels[labels % 2 == 0])
    with pytest.raises(TwinSeparationError, match="NaN"):
        twin_separation(np.where(np.arange(64) == 3, np.nan, x), labels)
    with pytest.raises(TwinSeparationError, match=r"\(n, d\)"):
        twin_separation(x[:, :, None], labels)
