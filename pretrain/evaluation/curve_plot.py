"""The learning-curve figure: one panel per task, test error against training size (log x; log y
unless some mean error is 0),
mean over seeds with one-std error bars. Uses matplotlib's Figure directly (no pyplot state):
headless in a bench, shown inline when a notebook displays the returned figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

# Learned features in black, hand-made descriptors in colour.
STYLES: dict[str, dict[str, Any]] = {
    "cnn": {"color": "black", "marker": "o", "linewidth": 2.0},
    "sift": {"color": "tab:blue", "marker": "s"},
    "lbp": {"color": "tab:orange", "marker": "^"},
    "hog": {"color": "tab:green", "marker": "v"},
    "gist": {"color": "tab:red", "marker": "D"},
}
X_LABELS = {"mnist": "training images", "faces": "training images per person (ORL, 40 people)"}


def _size_label(size: int) -> str:
    """``1,000``; ``30k`` from 10,000 on (neighbouring ticks on a log axis stay apart)."""
    return f"{size // 1000}k" if size >= 10_000 and size % 1000 == 0 else f"{size:,}"


def plot_curves(
    results: Mapping[str, Any],
    path: str | Path | None = None,
    *,
    tasks: Sequence[str] = ("mnist", "faces"),
) -> Figure:
    """Draws ``results[task][method]`` rows (``train_size``, ``error_pct_mean``,
    ``error_pct_std``) for each task present; saves a PNG at ``path`` when given."""
    present = [t for t in tasks if results.get(t)]
    panels = max(len(present), 1)
    fig = Figure(figsize=(5.5 * panels, 4.2))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for ax, task in zip(axes, present, strict=False):
        for method, rows in results[task].items():
            if not rows:
                continue
            x = [r["train_size"] for r in rows]
            y = [r["error_pct_mean"] for r in rows]
            err = [r["error_pct_std"] for r in rows]
            variant = {"color": "gray", "marker": "o", "linestyle": "--"}
            style = STYLES.get(method, variant if method.startswith("cnn") else {})
            ax.errorbar(x, y, yerr=err, label=method, capsize=3, markersize=4, **style)
        ax.set_xscale("log")
        means = [r["error_pct_mean"] for rows in results[task].values() for r in rows]
        log_y = min(means, default=0.0) > 0  # a zero error has no place on a log axis
        ax.set_yscale("log" if log_y else "linear")
        sizes = sorted({r["train_size"] for rows in results[task].values() for r in rows})
        ax.set_xticks(sizes, [_size_label(s) for s in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        if log_y:
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(X_LABELS.get(task, "training size"))
        ax.set_ylabel("test error (%)")
        ax.set_title(task)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
