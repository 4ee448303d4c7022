"""The device's SGD loop: its stopping rules, driven by a stand-in train step (numpy only)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest

from personalize.head import (
    MatchConfig,
    SgdConfig,
    Validation,
    holdout_margin,
    match_scores,
    run_sgd,
)


def _step(losses: Iterable[float]) -> tuple[Callable[..., Any], list[dict[str, Any]]]:
    """A train signature that returns ``losses`` in turn and records what it was fed."""
    feed = iter(losses)
    calls: list[dict[str, Any]] = []

    def step(**kw: Any) -> dict[str, np.ndarray]:
        calls.append({k: np.array(v) for k, v in kw.items()})
        return {"loss": np.float32(next(feed))}

    return step, calls


def _run(losses: Iterable[float], **config: Any) -> Any:
    step, calls = _step(losses)
    rng = np.random.default_rng(0)
    positives, negatives = rng.normal(size=(5, 8)), rng.normal(size=(60, 8))
    labels = rng.integers(1, 4, size=60)
    result = run_sgd(step, "embeddings", positives, negatives, labels, SgdConfig(**config))
    return result, calls


def test_a_head_that_already_separates_stops_at_step_two() -> None:
    result, calls = _run([0.004] * 100)
    assert (result.steps, result.stop_reason, result.stopped_early) == (2, "converged", True)
    assert len(calls) == 2


def test_a_flat_loss_above_the_floor_stops_after_patience() -> None:
    result, _ = _run([0.5] * 100, patience=8)
    assert (result.steps, result.stop_reason) == (9, "plateau")


def test_converged_zero_keeps_the_patience_rule_only() -> None:
    result, _ = _run([0.004] * 100, converged=0.0, patience=8)
    assert (result.steps, result.stop_reason) == (9, "plateau")


def test_a_falling_loss_runs_until_it_crosses_the_floor() -> None:
    losses = [0.5 * 0.7**i for i in range(100)]  # smoothed loss < 0.01 from step 13
    result, _ = _run(losses)
    assert result.stop_reason == "converged" and 10 < result.steps < 20
    ema = losses[0]
    for i, loss in enumerate(losses[1 : result.steps], start=2):
        ema = 0.7 * ema + 0.3 * loss
        assert (ema < 0.01) == (i == result.steps)


def test_max_steps_is_a_hard_limit() -> None:
    losses = [1.0 / (i + 1) for i in range(100)]
    result, _ = _run(losses, max_steps=5)
    assert (result.steps, result.stop_reason, result.stopped_early) == (5, "max_steps", False)


def test_each_step_trains_on_every_sample_and_fresh_negatives() -> None:
    _, calls = _run([0.5] * 100, patience=3, negatives=20)
    assert all(c["embeddings"].shape == (25, 8) for c in calls)
    assert all(
        np.array_equal(c["labels"][:5], np.zeros(5)) and np.all(c["labels"][5:] >= 1) for c in calls
    )
    assert not np.array_equal(calls[0]["embeddings"][5:], calls[1]["embeddings"][5:])


def test_divergence_is_an_error() -> None:
    with pytest.raises(FloatingPointError, match="diverged at step 2"):
        _run([0.5, float("nan")])


@pytest.mark.parametrize("converged", [-0.1, 1.0])
def test_bad_floor_refused(converged: float) -> None:
    with pytest.raises(ValueError, match="converged"):
        SgdConfig(converged=converged)


def test_the_best_weights_by_the_held_out_criterion_are_kept() -> None:
    step, _ = _step([0.5] * 100)
    scores = iter([0.1, 0.3, 0.7, 0.2, 0.7, 0.1])  # before step 1, then after steps 1..5
    taken: list[int] = []

    def snapshot() -> int:
        taken.append(len(taken))
        return len(taken) - 1

    validation = Validation(lambda: next(scores), snapshot)
    rng = np.random.default_rng(0)
    result = run_sgd(
        step,
        "embeddings",
        rng.normal(size=(3, 8)),
        rng.normal(size=(40, 8)),
        rng.integers(1, 4, size=40),
        SgdConfig(max_steps=5, converged=0.0, patience=10),
        validation=validation,
    )
    # the first 0.7 (step 2) wins over the later tie; the snapshot taken then is returned
    assert (result.steps, result.best_step, result.best_score) == (5, 2, 0.7)
    assert result.best_state == 2


def test_without_validation_nothing_is_kept() -> None:
    result, _ = _run([0.5] * 100, max_steps=3)
    assert result.best_step == -1 and result.best_state is None


def test_holdout_margin_is_the_worst_owner_score_over_the_hardest_negatives() -> None:
    negatives = np.concatenate([np.full(198, 0.1), [0.98, 0.99]])  # top 1%: the last two
    assert holdout_margin(np.array([0.9, 0.95]), negatives) == pytest.approx(0.9 - 0.985)


def test_match_rules_over_templates() -> None:
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(3, 8))
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    probes = np.concatenate([templates[1:2] * 2.0, rng.normal(size=(4, 8))])
    head = rng.uniform(-1, 1, size=5)
    nearest = match_scores(MatchConfig("nearest"), head, probes, templates)
    assert nearest[0] == pytest.approx(1.0)  # a probe on a template matches it exactly
    cos = (probes / np.linalg.norm(probes, axis=1, keepdims=True)) @ templates.T
    np.testing.assert_allclose(nearest, cos.max(axis=1), rtol=1e-6)
    mix = match_scores(MatchConfig("mix", mix=0.25), head, probes, templates)
    np.testing.assert_allclose(mix, 0.25 * head + 0.75 * nearest, rtol=1e-6)
    mean = templates.mean(0) / np.linalg.norm(templates.mean(0))
    unit = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    got = match_scores(MatchConfig("mean"), head, probes, templates)
    np.testing.assert_allclose(got, unit @ mean, rtol=1e-5)
    # no templates (a migrated record): the head decides, whatever the rule
    np.testing.assert_array_equal(match_scores(MatchConfig("nearest"), head, probes, None), head)
    with pytest.raises(ValueError, match="rule must be one of"):
        MatchConfig("median")
