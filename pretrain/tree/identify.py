"""1:N identification with a flat head and with a gallery tree: the gallery, the probes, the choice.

Every identity of a labelled embedding set is enrolled (its template: the imprint of its first
``enroll`` embeddings, :func:`devices.cosine.imprint`); the identities named as probe people keep
their other embeddings as probes. The flat head scores a probe against every template
(:func:`personalize.flat_search`), the tree head descends a :class:`personalize.GalleryTree`
(:func:`personalize.tree_search`). :func:`choose_tree` picks the tree's shape and beam on one set
of probe people (the cheapest whose top-1 is within ``max_drop_pts`` of the flat head's there);
the same figures on another set of probe people report the choice.
"""

from __future__ import annotations

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
    """A gallery tree's shape and the beam its search keeps."""

    depth: int
    branching: int
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
    """Top-1 (%), mean MACs and mean templates scored per probe of a tree search."""
    found = [tree_search(tree, p, beam) for p in gallery.probes]
    hits = [m.identity == t for m, t in zip(found, gallery.probe_ids, strict=True)]
    return {
        "top1_pct": 100.0 * float(np.mean(hits)),
        "macs": float(np.mean([m.macs for m in found])),
        "templates_scored": float(np.mean([m.templates_scored for m in found])),
    }


def choose_tree(
    gallery: Gallery,
    shapes: Sequence[tuple[int, int]],
    beams: Sequence[int],
    *,
    max_drop_pts: float,
    seed: int = 0,
) -> tuple[TreeShape, list[dict[str, Any]]]:
    """The cheapest (mean MACs) tree shape and beam whose top-1 on ``gallery``'s probes is at
    most ``max_drop_pts`` below the flat head's; falls back to the most accurate.

    Args:
      gallery: the choosing probes (development people) and every template.
      shapes: ``(depth, branching)`` candidates.
      beams: beam candidates.
      max_drop_pts: the top-1 the tree may lose against the flat head, in points.

    Returns:
      The chosen :class:`TreeShape` and one row per candidate (figures on these probes).
    """
    flat = flat_figures(gallery)
    rows = []
    for depth, branching in tqdm(shapes, desc="gallery trees", leave=False):
        tree = fit_gallery_tree(
            gallery.templates, gallery.ids, branching=branching, depth=depth, seed=seed
        )
        for beam in beams:
            rows.append(
                {
                    "depth": depth,
                    "branching": branching,
                    "beam": beam,
                    **tree_figures(tree, gallery, beam),
                }
            )
    ok = [r for r in rows if r["top1_pct"] >= flat["top1_pct"] - max_drop_pts]
    best = min(ok, key=lambda r: r["macs"]) if ok else max(rows, key=lambda r: r["top1_pct"])
    return TreeShape(best["depth"], best["branching"], best["beam"]), rows
