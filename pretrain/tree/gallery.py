"""A tree over an enrolled gallery: hierarchical spherical k-means on the templates (numpy).

Each node's members are split by spherical k-means (cosine assignment, unit mean centroids,
k-means++ seeding) into ``branching`` children, ``depth`` times; with ``spill`` > 1 each template
is also stored in its next most similar leaves (a spill tree: boundary templates are found from
either side). The leaves' templates are stored leaf by leaf so that :func:`personalize.tree_search` reads a leaf as one slice. The tree is fitted
on the enrolled templates only (no probe is seen), as a phone would refit it after enrolling.

References:
  D. Nister, H. Stewenius, "Scalable recognition with a vocabulary tree", CVPR 2006
  (hierarchical k-means, search down the tree).
  T. Liu, A. Moore, A. Gray, K. Yang, "An investigation of practical approximate nearest
  neighbor algorithms", NIPS 2004 (spill trees).
  I. Dhillon, D. Modha, "Concept decompositions for large sparse text data using clustering",
  Machine Learning 2001 (spherical k-means).
"""

from __future__ import annotations

import numpy as np

from devices.cosine import normalize
from personalize.tree import GalleryTree


def _seeds(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on cosine distance (1 - cos); returns ``k`` row indices."""
    chosen = [int(rng.integers(len(x)))]
    dist = 1.0 - x @ x[chosen[0]]
    for _ in range(1, k):
        p = np.maximum(dist, 0.0)
        total = p.sum()
        nxt = int(rng.choice(len(x), p=p / total)) if total > 0 else int(rng.integers(len(x)))
        chosen.append(nxt)
        dist = np.minimum(dist, 1.0 - x @ x[nxt])
    return np.asarray(chosen)


def spherical_kmeans(
    x: np.ndarray, k: int, *, rng: np.random.Generator, iterations: int = 10
) -> np.ndarray:
    """Cluster of each unit row of ``x`` (``k`` clusters, none empty when ``len(x) >= k``)."""
    k = min(k, len(x))
    centroids = x[_seeds(x, k, rng)]
    assign = np.zeros(len(x), np.int64)
    for _ in range(iterations):
        assign = np.argmax(x @ centroids.T, axis=1)
        counts = np.bincount(assign, minlength=k)
        for empty in np.flatnonzero(counts == 0):  # reseed on the worst-served row
            worst = int(np.argmin(np.max(x @ centroids.T, axis=1)))
            assign[worst] = empty
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, x)
        centroids = normalize(sums).astype(x.dtype)
    return assign


def fit_gallery_tree(
    templates: np.ndarray,
    ids: np.ndarray,
    *,
    branching: int,
    depth: int = 1,
    spill: int = 1,
    seed: int = 0,
    iterations: int = 10,
) -> GalleryTree:
    """A :class:`personalize.GalleryTree` over ``templates`` (rows normalised here).

    Args:
      templates: ``(n, d)`` enrolled templates.
      ids: ``(n,)`` identity of each template.
      branching: children per node (k of each k-means split).
      depth: levels of centroids above the templates.
      spill: leaves each template is stored in (its ``spill`` most similar leaf centroids): a
        template near a boundary is found from either side, for ``spill`` times the storage.
      seed: seeds the k-means draws.
      iterations: Lloyd iterations per split.
    """
    if branching < 2 or depth < 1 or spill < 1:
        raise ValueError(
            f"a gallery tree needs branching >= 2, depth >= 1 and spill >= 1, got {branching}, "
            f"{depth} and {spill}."
        )
    x = normalize(templates).astype(np.float32)
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(x))]
    centroids: list[np.ndarray] = []
    children: list[np.ndarray] = []
    for _ in range(depth):
        nodes: list[np.ndarray] = []
        offsets = [0]
        for members in groups:
            assign = spherical_kmeans(x[members], branching, rng=rng, iterations=iterations)
            nodes.extend(members[assign == c] for c in range(int(assign.max()) + 1))
            offsets.append(len(nodes))
        if children:  # the previous level's nodes point into this one
            children[-1] = np.asarray(offsets, np.int64)
        centroids.append(np.stack([normalize(x[m].sum(0)) for m in nodes]).astype(np.float32))
        children.append(np.zeros(0, np.int64))
        groups = nodes
    if spill > 1:
        near = np.argsort(-(x @ centroids[-1].T), axis=1)[:, :spill]
        groups = [np.flatnonzero((near == leaf).any(axis=1)) for leaf in range(len(groups))]
    order = np.concatenate(groups)
    children[-1] = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
    return GalleryTree(tuple(centroids), tuple(children), x[order], np.asarray(ids)[order])
