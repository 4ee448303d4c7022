"""The structured-pruning latency figure: where an int8 embedding network's time goes, and what
fewer channels buy.

Left, one horizontal bar per network of each embedding row (unpruned, particle filters, L1), cut
into the stretches of blocks that ``latency_by_depth_us`` times (stem + block 1, block 2, blocks
3-4, 5-6, the rest with the embedding head). Right, the channel-budget scan: int8 speedup over
the unpruned network against the fraction of its MACs, with the 2x target. Uses matplotlib's
Figure directly (no pyplot state), as :mod:`pretrain.evaluation.curve_plot`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

# (cut key, label of the stretch that ends there), in depth order
STRETCHES = (
    ("block1", "stem + block 1"),
    ("block2", "block 2"),
    ("block4", "blocks 3-4"),
    ("block6", "blocks 5-6"),
    ("whole", "blocks 7-8 + head"),
)
NETWORKS = (("reference", "unpruned"), ("particle_filter", "PF"), ("l1_baseline", "L1"))
ROWS = ("fingerprint", "face")


def _bars(models: Mapping[str, Any]) -> list[tuple[str, list[float]]]:
    """``(label, stretch times in us)`` per network that has a depth profile."""
    out = []
    for row in ROWS:
        for key, name in NETWORKS:
            depth = models.get(row, {}).get(key, {}).get("latency_by_depth_us")
            if not depth:
                continue
            # A later cut can time a little under an earlier one (noise): the running maximum
            # keeps every stretch >= 0 and the bar's end at the whole network's time.
            cuts = list(itertools.accumulate((depth[c] for c, _ in STRETCHES if c in depth), max))
            widths = [b - a for a, b in zip([0.0, *cuts[:-1]], cuts, strict=True)]
            out.append((f"{row} {name}", widths))
    return out


def plot_structured(
    structured: Mapping[str, Any],
    keep_scan: Mapping[str, Any] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Draws ``structured["models"]``'s depth profiles and ``keep_scan["models"]``'s budgets
    (either may lack the rows: its panel then says so); saves a PNG at ``path`` when given."""
    fig = Figure(figsize=(12, 4.5))
    left, right = fig.subplots(1, 2)
    bars = _bars(structured.get("models", {}))
    colours = ["tab:red", "tab:orange", "tab:olive", "tab:green", "tab:blue"]
    for i, (_, widths) in enumerate(reversed(bars)):
        start = 0.0
        for j, w in enumerate(widths):
            name = STRETCHES[j][1] if i == 0 else None
            left.barh(i, w, left=start, color=colours[j], label=name)
            start += w
        left.text(start + 1, i, f"{start:.0f} us", va="center", fontsize=8)
    left.set_yticks(range(len(bars)), [label for label, _ in reversed(bars)])
    left.set_xlabel("int8 embed invoke time (us, one thread)")
    left.set_title("where the time goes" if bars else "no depth profiles in structured.json")
    if bars:
        left.legend(fontsize=8, loc="lower right")
    scans = (keep_scan or {}).get("models", {})
    for row in ROWS:
        budgets = scans.get(row, {}).get("keep")
        if not budgets:
            continue
        points = sorted((v["flops_ratio"], v["speedup"], k) for k, v in budgets.items())
        right.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=row)
        for x, y, k in points:
            right.annotate(k, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
        shaped = scans[row].get("shaped") or {}
        if shaped:  # latency-shaped budgets: early/late fractions, markers only
            colour = right.get_lines()[-1].get_color()
            for k, v in shaped.items():
                right.scatter(v["flops_ratio"], v["speedup"], marker="x", color=colour)
                right.annotate(
                    k,
                    (v["flops_ratio"], v["speedup"]),
                    textcoords="offset points",
                    xytext=(3, -9),
                    fontsize=6,
                    color=colour,
                )
    right.axhline(2.0, color="gray", linestyle="--", linewidth=1, label="target 2x")
    right.set_xlabel("MACs kept (fraction of the unpruned network's)")
    right.set_ylabel("int8 speedup over unpruned")
    right.set_title("channel budget (labels: fraction kept; x: early/late shaped)")
    right.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
