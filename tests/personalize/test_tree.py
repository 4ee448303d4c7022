"""The gallery tree's search: a beam covering everything is the flat search; MACs as counted."""

from __future__ import annotations

import numpy as np
import pytest

from devices.cosine import normalize
from personalize import flat_search, tree_search
from pretrain.tree import build_gallery, fit_gallery_tree


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return normalize(rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize(
    ("depth", "branching", "spill"), [(1, 7, 1), (2, 4, 1), (3, 3, 1), (1, 7, 2)]
)
def test_full_beam_equals_flat_search(depth: int, branching: int, spill: int) -> None:
    rng = np.random.default_rng(depth)
    templates, ids = unit(rng, 300, 16), np.arange(300) * 3
    tree = fit_gallery_tree(templates, ids, branching=branching, depth=depth, spill=spill, seed=0)
    assert sorted(tree.ids.tolist()) == sorted(ids.tolist() * spill)
    for probe in unit(rng, 20, 16):
        flat = flat_search(templates, ids, probe)
        full = tree_search(tree, probe, beam=tree.widest)
        assert full.identity == flat.identity
        assert full.score == pytest.approx(flat.score, rel=1e-6)
        assert full.templates_scored == 300 * spill
        assert flat.macs == 300 * 16


def test_tree_macs_count_centroids_and_visited_leaves() -> None:
    rng = np.random.default_rng(0)
    templates = unit(rng, 200, 8)
    tree = fit_gallery_tree(templates, np.arange(200), branching=10, depth=1, seed=0)
    probe = unit(rng, 1, 8)[0]
    match = tree_search(tree, probe, beam=2)
    sizes = np.diff(tree.children[0])
    best = np.argsort(-(tree.centroids[0] @ probe))[:2]
    assert match.templates_scored == int(sizes[best].sum())
    assert match.macs == (10 + match.templates_scored) * 8
    with pytest.raises(ValueError, match="beam"):
        tree_search(tree, probe, beam=0)


def test_gallery_enrolls_everyone_and_probes_the_probe_people() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(6), [3, 1, 4, 2, 5, 1])
    gallery = build_gallery(unit(rng, labels.size, 4), labels, [0, 4], enroll=2)
    assert gallery.ids.tolist() == list(range(6))
    assert sorted(gallery.probe_ids.tolist()) == [0, 4, 4, 4]
    with pytest.raises(ValueError, match="probe person 1"):
        build_gallery(unit(rng, labels.size, 4), labels, [1], enroll=2)


def descend(tree, probe: np.ndarray, beam: int) -> tuple[int, int]:
    """A reference beam descent, one node at a time: (best template row, templates scored)."""
    nodes = list(range(len(tree.centroids[0])))
    for level, centroids in enumerate(tree.centroids):
        nodes = sorted(nodes, key=lambda n: -float(centroids[n] @ probe))[:beam]
        children = tree.children[level]
        nodes = [c for n in nodes for c in range(children[n], children[n + 1])]
    rows = np.asarray(nodes)
    return int(rows[np.argmax(tree.templates[rows] @ probe)]), len(rows)


@pytest.mark.parametrize(("depth", "branching", "beam"), [(2, 4, 1), (2, 4, 3), (3, 3, 2)])
def test_narrow_beam_finds_what_a_node_by_node_descent_finds(
    depth: int, branching: int, beam: int
) -> None:
    rng = np.random.default_rng(depth + beam)
    templates = unit(rng, 300, 16)
    tree = fit_gallery_tree(templates, np.arange(300) + 1000, branching=branching, depth=depth)
    for probe in unit(rng, 20, 16):
        row, scored = descend(tree, probe, beam)
        match = tree_search(tree, probe, beam)
        assert match.identity == tree.ids[row]
        assert match.templates_scored == scored
