"""1:N identification with a flat head and with a gallery tree: the gallery, the probes, the choice.

Every identity of a labelled embedding set is enrolled (its template: the imprint of its first
``enroll`` embeddings, :func:`devices.cosine.imprint`); the identities named as probe people keep
their other embeddings as probes. The flat head scores a probe against every template
(:func:`personalize.flat_search`), the tree head descends a :class:`personalize.GalleryTree`
(:func:`personalize.tree_search`). :func:`choose_tree` picks the tree's shape and beam on one set
of probe people (the fewest MACs that keep ``min_kept_pct`` of the flat head's right answers there);
the same figures on another set of probe people report the choice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from devices.cosine import imprint, normalize
from personalize.tree import GalleryTree, flat_search, tree_search
from pretrain.tree.gallery import fit_gallery_tree


class Gallery(NamedTuple):
    """Enrolled templates and the probes of the probe people.

    Attributes:
      templates: ``(identities, d)`` float32 unit templates.
      ids: ``(identities,)`` label of each template.
      probes: ``(m, d)`` float32 unit probe embeddings.
      probe_ids: ``(m,)`` label of each probe.
    """

    templates: np.ndarray
    ids: np.ndarray
    probes: np.ndarray
    probe_ids: np.ndarray


class TreeShape(NamedTuple):
    """A gallery tree's shape (:func:`fit_gallery_tree`) and the beam its search keeps."""

    depth: int
    branching: int
    spill: int
    beam: int


def build_gallery(
    embeddings: np.ndarray, labels: np.ndarray, probe_people: Iterable[int], *, enroll: int
) -> Gallery:
    """Enrolls every label from its first ``enroll`` rows; probe people's other rows are probes.

    Raises:
      ValueError: a probe person has no row left to probe with.
    """
    labels = np.asarray(labels)
    probe_set = set(int(p) for p in probe_people)
    keep = np.zeros(len(labels), bool)
    probe = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        keep[rows[:enroll]] = True
        if int(label) in probe_set:
            if rows.size <= enroll:
                raise ValueError(
                    f"probe person {label} has {rows.size} embeddings: needs more than the "
                    f"{enroll} enrolled."
                )
            probe[rows[enroll:]] = True
    ids, templates = imprint(embeddings[keep], labels[keep])
    return Gallery(
        templates.astype(np.float32),
        ids,
        normalize(embeddings[probe]).astype(np.float32),
        labels[probe],
    )


def flat_figures(gallery: Gallery) -> dict[str, float]:
    """Top-1 (%) and MACs per probe of the flat head."""
    hits = [
        flat_search(gallery.templates, gallery.ids, p).identity == t
        for p, t in zip(gallery.probes, gallery.probe_ids, strict=True)
    ]
    return {"top1_pct": 100.0 * float(np.mean(hits)), "macs": float(gallery.templates.size)}


def tree_figures(tree: GalleryTree, gallery: Gallery, beam: int) -> dict[str, float]:
    """Per probe of a tree search: top-1 (%), agreement with the flat head's answer (%), the
    flat head's right answers it keeps (%), mean MACs, mean templates scored and mean wall time
    (ms, one pass: for ranking candidates, not a benchmark)."""
    start = time.perf_counter()
    matches = [tree_search(tree, p, beam) for p in gallery.probes]
    search_ms = 1e3 * (time.perf_counter() - start) / max(len(matches), 1)
    found = np.asarray([m.identity for m in matches])
    flat = np.asarray(
        [flat_search(gallery.templates, gallery.ids, p).identity for p in gallery.probes]
    )
    right, flat_right = found == gallery.probe_ids, flat == gallery.probe_ids
    return {
        "top1_pct": 100.0 * float(np.mean(right)),
        "agreement_pct": 100.0 * float(np.mean(found == flat)),
        "kept_pct": 100.0 * float(np.mean(right[flat_right])) if flat_right.any() else 100.0,
        "macs": float(np.mean([m.macs for m in matches])),
        "templates_scored": float(np.mean([m.templates_scored for m in matches])),
        "search_ms": search_ms,
    }


def choose_tree(
    gallery: Gallery,
    shapes: Sequence[tuple[int, int, int]],
    beams: Sequence[int],
    *,
    min_kept_pct: float,
    seed: int = 0,
) -> tuple[TreeShape, list[dict[str, Any]]]:
    """The cheapest tree shape and beam (mean MACs per search on ``gallery``'s probes, then mean
    search time) that keeps at least ``min_kept_pct`` of the flat head's right answers there;
    else the one that keeps most.

    MACs first because they do not move with the machine's load: a time measured on a shared
    machine once chose a tree that scores twice the templates for 0.02 ms of noise.

    The tree loses top-1 only on probes the flat head gets right; with a weak backbone most
    probes are wrong for both heads, and the top-1 of a few hundred probes moves by a third of a
    point per probe, so the rule looks at those right answers alone.

    Args:
      gallery: the choosing probes (development people) and every template.
      shapes: ``(depth, branching, spill)`` candidates.
      beams: beam candidates.
      min_kept_pct: the least share of the flat head's right answers the tree must keep (%).

    Returns:
      The chosen :class:`TreeShape` and one row per candidate (figures on these probes).
    """
    rows: list[dict[str, Any]] = []
    for depth, branching, spill in tqdm(shapes, desc="gallery trees", leave=False):
        tree = fit_gallery_tree(
            gallery.templates, gallery.ids, branching=branching, depth=depth, spill=spill, seed=seed
        )
        shape = {"depth": depth, "branching": branching, "spill": spill}
        rows.extend({**shape, "beam": b, **tree_figures(tree, gallery, b)} for b in beams)
    ok = [r for r in rows if r["kept_pct"] >= min_kept_pct]
    cheapest = min(ok, key=lambda r: (r["macs"], r["search_ms"])) if ok else None
    best = cheapest or max(rows, key=lambda r: r["kept_pct"])
    return TreeShape(best["depth"], best["branching"], best["spill"], best["beam"]), rows
