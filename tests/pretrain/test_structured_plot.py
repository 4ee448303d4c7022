"""The structured-pruning latency figure draws what the results hold and says what they lack."""

from __future__ import annotations

from pathlib import Path

from matplotlib.patches import Rectangle

from pretrain.evaluation.structured_plot import plot_structured


def _row(times: list[float]) -> dict:
    cuts = ("block1", "block2", "block4", "block6", "whole")
    return {"latency_by_depth_us": dict(zip(cuts, times, strict=True))}


def test_bars_are_the_stretches_between_cuts_and_the_scan_is_drawn(tmp_path: Path) -> None:
    structured = {
        "models": {
            "face": {
                "reference": _row([20, 30, 40, 45, 60]),
                "particle_filter": _row([12, 16, 15.5, 22, 33]),  # a noisy cut: no negative bar
            }
        }
    }
    scan = {
        "models": {
            "face": {
                "keep": {
                    "1.0": {"flops_ratio": 1, "speedup": 1},
                    "0.5": {"flops_ratio": 0.33, "speedup": 1.8},
                },
                "shaped": {"0.3/0.5": {"flops_ratio": 0.29, "speedup": 2.4}},
            }
        }
    }
    fig = plot_structured(structured, scan, tmp_path / "latency.png")
    assert (tmp_path / "latency.png").stat().st_size > 0
    left, right = fig.axes
    widths = [p.get_width() for p in left.patches if isinstance(p, Rectangle)]
    assert len(widths) == 10 and min(widths) >= 0
    # the last drawn bar ends at the whole network's time (bars drawn bottom-up: reference last)
    assert sum(widths[5:]) == 60 and sum(widths[:5]) == 33
    assert [t.get_text() for t in left.get_yticklabels()] == ["face PF", "face unpruned"]
    assert len(right.lines) == 2  # the scan and the 2x target
    assert len(right.collections) == 1  # the shaped budget, a marker


def test_missing_results_give_an_empty_panel_not_an_error() -> None:
    fig = plot_structured({}, None)
    assert fig.axes[0].get_title() == "no depth profiles in structured.json"
