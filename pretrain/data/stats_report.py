"""Statistics of a named image source, side-by-side tables and plots.

Sources: ``synthetic`` (the generator), ``fvc/<set>`` (a folder under ``$POCKETFIT_DATA/fvc``) and
``orl`` (faces: only intensity statistics apply).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pretrain.data.errors import DataError
from pretrain.data.faces import read_orl
from pretrain.data.fingerprint import FingerprintGenerator, GeneratorConfig
from pretrain.data.fvc import read_fvc
from pretrain.data.stats import HIST_BINS, measure, summarise
from pretrain.data.stats_pairs import MISREGISTERED_PX, REGISTRATIONS, pair_stats

SYNTHETIC_IDENTITIES = 10  # like an FVC "B" set: 10 fingers x 8 impressions
SYNTHETIC_IMPRESSIONS = 8
ROWS = (
    ("period_px", "ridge period (px)"),
    ("coherence", "orientation coherence"),
    ("foreground_px", "foreground (px)"),
    ("foreground_fraction", "foreground fraction"),
    ("mean", "mean intensity"),
    ("std", "intensity std"),
    ("core_strength", "registered core: strength (/1000)"),
    ("core_edge_px", "registered core: depth in the print (px)"),
    ("loop_axis_deg", "one core: where the loop opens (deg, 90 down)"),
    ("steep_below_core", "one core: steep ridges below it (share)"),
    ("delta_distance_px", "one core: its nearest delta's distance (px)"),
    ("delta_angle_deg", "one core: that delta below the horizontal (deg)"),
)
PAIR_ROWS = (
    ("pair_shift_px", "genuine pairs: placement shift (px)"),
    ("pair_rotation_deg", "genuine pairs: rotation (deg)"),
    ("pair_residual_px", "genuine pairs: residual after registration (px)"),
    ("pair_overlap_fraction", "genuine pairs: registered overlap"),
    ("anchor_gap_px", "genuine pairs: anchors apart on the finger (px)"),
)


def _faces_summary(images: list[np.ndarray]) -> dict[str, Any]:
    values = np.concatenate([im.ravel() for im in images])
    hist = np.bincount(values // (256 // HIST_BINS), minlength=HIST_BINS) / values.size
    means = [float(im.mean()) for im in images]
    stds = [float(im.std()) for im in images]
    return {
        "images": len(images),
        "size_hw": list(images[0].shape),
        "mean": {"median": float(np.median(means))},
        "std": {"median": float(np.median(stds))},
        "histogram": hist.round(5).tolist(),
    }


def source_stats(
    source: str,
    *,
    root: str | os.PathLike[str] | None = None,
    identities: int = SYNTHETIC_IDENTITIES,
    impressions: int = SYNTHETIC_IMPRESSIONS,
    seed: int = 0,
    limit: int = 0,
    pairs: bool = False,
    progress: bool = False,
    generator: GeneratorConfig | None = None,
    registration: str = "anchor",
) -> dict[str, Any]:
    """Summary statistics of ``source`` (see :func:`pretrain.data.stats.summarise`), with
    ``pairs`` also its genuine-pair statistics (:func:`pretrain.data.stats_pairs.pair_stats`).

    Args:
      source: ``synthetic``, ``fvc/<set>`` or ``orl``.
      root: override for ``$POCKETFIT_DATA``.
      identities: synthetic identities to generate.
      impressions: synthetic impressions per identity.
      seed: synthetic generator seed.
      limit: use at most this many images of a real source (0 = all).
      pairs: measure genuine pairs too (prints only; about a minute a source).
      progress: progress bar while generating.
      generator: the synthetic generator's settings (None: the defaults).
      registration: the pairs' registration, ``anchor`` (the device's) or ``core``.

    Raises:
      DataError: unknown source; DataNotFoundError: the data are missing.
    """
    if registration not in REGISTRATIONS:
        raise DataError(
            f"registration must be one of {sorted(REGISTRATIONS)}, got {registration!r}."
        )
    if limit < 0:
        raise DataError(f"limit must be >= 1 images (or 0 for all), got {limit}.")
    spec = REGISTRATIONS[registration]
    if source == "synthetic":
        config = generator or GeneratorConfig()
        gen = FingerprintGenerator(seed=seed, config=config, cache_size=1)
        images, owners = gen.impressions(range(identities), impressions, progress=progress)
        classes = [gen.master(int(i)).fp_class for i in owners]
        out = summarise([measure(im) for im in images], classes)
        out["seed"] = seed
        if config != GeneratorConfig():
            out["generator"] = dataclasses.asdict(config)
        if pairs:
            out.update(pair_stats(list(images), owners.tolist(), spec=spec))
        return out
    if source == "orl":
        faces = read_orl(root)
        return _faces_summary(list(faces.images[: limit or None]))
    if source.startswith("fvc/") and len(source) > 4:
        prints = read_fvc(source[4:], root)
        kept = list(prints.images[: limit or None])
        out = summarise([measure(im) for im in kept])
        if pairs:
            out.update(pair_stats(kept, list(prints.labels[: len(kept)]), spec=spec))
        return out
    raise DataError(
        f"unknown source {source!r}; choose synthetic, fvc/<set> (e.g. fvc/2000_DB1_B) or orl."
    )


def format_table(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain text table: one column per source, median [p10-p90] per statistic, class mix."""
    names = list(stats)
    rows: list[list[str]] = [["statistic", *names]]
    for key, label in ROWS + PAIR_ROWS:
        if not any(key in stats[name] for name in names):
            continue
        cells = []
        for name in names:
            value = stats[name].get(key)
            if not isinstance(value, Mapping) or "p10" not in value:
                cells.append("-" if value is None else f"{value['median']:.4g}")
                continue
            cells.append(f"{value['median']:.4g} [{value['p10']:.3g}-{value['p90']:.3g}]")
        rows.append([label, *cells])
    fractions = (
        (
            "misregistered_fraction",
            f"genuine pairs: residual > {MISREGISTERED_PX} px",
            lambda v: f"{100 * v['misregistered_fraction']:.0f}%",
        ),
        (
            "anchors_apart_fraction",
            f"genuine pairs: anchors > {MISREGISTERED_PX} px apart (2nd peak agrees)",
            lambda v: (
                f"{100 * v['anchors_apart_fraction']:.0f}% "
                f"({100 * v['second_peak_agrees_fraction']:.0f}%)"
            ),
        ),
    )
    for key, label, cell in fractions:
        if any(key in stats[name] for name in names):
            rows.append([label] + [cell(stats[n]) if key in stats[n] else "-" for n in names])
    classes: Mapping[str, float] = next(
        (s["class_mix_estimated"] for s in stats.values() if "class_mix_estimated" in s), {}
    )
    for cls in classes:
        rows.append(
            [f"class {cls} (est.)"]
            + [
                f"{100 * s['class_mix_estimated'][cls]:.0f}%" if "class_mix_estimated" in s else "-"
                for s in stats.values()
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_stats(stats: Mapping[str, Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Saves a figure: period, coherence and foreground per source, and intensity histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prints = {k: v for k, v in stats.items() if "period_px" in v}
    paired = {k: v for k, v in prints.items() if "misregistered_fraction" in v}
    fig, axes = plt.subplots(1, 5 if paired else 4, figsize=(20 if paired else 16, 3.6))
    for ax, (key, label) in zip(axes[:3], ROWS[:2] + ROWS[3:4], strict=True):
        names = list(prints)
        med = [prints[n][key]["median"] for n in names]
        low = [prints[n][key]["median"] - prints[n][key]["p10"] for n in names]
        high = [prints[n][key]["p90"] - prints[n][key]["median"] for n in names]
        ax.bar(range(len(names)), med, yerr=[low, high], capsize=3, color="0.6")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{label}: median, p10-p90", fontsize=9)
    edges = np.arange(0, 257, 256 // HIST_BINS)
    for name, value in stats.items():
        axes[3].plot((edges[:-1] + edges[1:]) / 2, value["histogram"], label=name)
    axes[3].set_title("intensity histogram", fontsize=9)
    axes[3].legend(fontsize=7)
    if paired:
        names = list(paired)
        axes[4].bar(range(len(names)), [100 * paired[n]["misregistered_fraction"] for n in names])
        axes[4].set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        axes[4].set_title(f"genuine pairs registered > {MISREGISTERED_PX} px apart (%)", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
