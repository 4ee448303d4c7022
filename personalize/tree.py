"""Trees on the device: a routed classifier that runs one branch, and 1:N search down a gallery tree.

:class:`RoutedClassifier` runs a conditional network's LiteRT file (signatures in
:mod:`devices.routed`): ``trunk`` on the image, the argmax of the router's logits, then that one
``branch_<i>``; the other branches' weights stay in the file, their signatures are not invoked.

:class:`GalleryTree` is a tree over enrolled templates (unit rows, cosine scores): each level's
nodes have a unit centroid and a contiguous range of children in the next level; the last level's
children are template rows, stored leaf by leaf so that a leaf is one slice. :func:`tree_search`
descends with a beam (the ``beam`` best nodes per level by cosine to their centroid) and scores
only the templates of the leaves it reaches; :func:`flat_search` scores every template. With a beam
as wide as the widest level the two return the same identity. Both count the multiply-accumulates
they execute. numpy + LiteRT only.
"""

from __future__ import annotations

import collections
from typing import Any, NamedTuple

import numpy as np

from devices.contract import FEATURES, IMAGES, SCORES, ArtifactError
from devices.routed import ROUTE, TRUNK, branch_signature
from personalize.artifact import open_model


class RoutedClassifier:
    """Classifies images with a routed model: the trunk, then only the chosen branch.

    Args:
      model: the LiteRT flatbuffer (``export.tree.routed_tflite``).
      num_threads: interpreter threads.

    Attributes:
      invocations: how many times each signature has run (the device's own count).
    """

    def __init__(self, model: bytes, *, num_threads: int = 1) -> None:
        interpreter = open_model(model, num_threads, where="routed model")
        names = set(interpreter.get_signature_list())
        count = sum(1 for n in names if n.startswith("branch_"))
        wanted = {TRUNK, *(branch_signature(i) for i in range(count))}
        if count == 0 or not wanted <= names:
            raise ArtifactError(
                f"routed model: needs signatures {TRUNK!r} and branch_0..branch_{{B-1}}, has "
                f"{sorted(names)}; export it with export.tree.routed_tflite."
            )
        self._trunk = interpreter.get_signature_runner(TRUNK)
        self._branches = [
            interpreter.get_signature_runner(branch_signature(i)) for i in range(count)
        ]
        self.invocations: collections.Counter[str] = collections.Counter()

    @property
    def branches(self) -> int:
        return len(self._branches)

    def route(self, images: np.ndarray) -> tuple[np.ndarray, int]:
        """The trunk's features of one image and the branch its router chooses."""
        x = np.asarray(images, np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.shape[0] != 1:
            raise ValueError(f"route takes one image (batch 1), got a batch of {x.shape[0]}.")
        out = self._trunk(**{IMAGES: x})
        self.invocations[TRUNK] += 1
        return out[FEATURES], int(np.argmax(out[ROUTE][0]))

    def scores(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """Class scores of one image ``(h, w, c)`` (or ``(1, h, w, c)``) and the branch that ran."""
        features, branch = self.route(image)
        name = branch_signature(branch)
        out = self._branches[branch](**{FEATURES: features})
        self.invocations[name] += 1
        return out[SCORES][0], branch

    def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and branches of ``images`` ``(n, h, w, c)``, one image per call as on a phone."""
        labels, branches = np.empty(len(images), np.int64), np.empty(len(images), np.int64)
        for i, image in enumerate(images):
            s, branches[i] = self.scores(image)
            labels[i] = int(np.argmax(s))
        return labels, branches


class GalleryTree(NamedTuple):
    """A tree over gallery templates (see the module docstring).

    Attributes:
      centroids: per level, ``(nodes, d)`` float32 unit centroids (level 0: the root's children).
      children: per level, ``(nodes + 1,)`` int64 offsets: node j's children are rows
        ``children[l][j]:children[l][j + 1]`` of level l + 1 (of ``templates`` for the last level).
      templates: ``(n, d)`` float32 unit templates, leaf by leaf.
      ids: ``(n,)`` the identity of each template row.
    """

    centroids: tuple[np.ndarray, ...]
    children: tuple[np.ndarray, ...]
    templates: np.ndarray
    ids: np.ndarray

    @property
    def widest(self) -> int:
        """Nodes in the widest level (a beam this wide visits every leaf)."""
        return max(len(c) for c in self.centroids)


class Match(NamedTuple):
    """The best template of a search and what the search cost."""

    identity: Any
    score: float
    macs: int
    templates_scored: int


def flat_search(templates: np.ndarray, ids: np.ndarray, probe: np.ndarray) -> Match:
    """Cosine against every template (unit rows, unit probe): the flat 1:N head."""
    scores = templates @ probe
    best = int(np.argmax(scores))
    return Match(ids[best], float(scores[best]), templates.size, len(templates))


def tree_search(tree: GalleryTree, probe: np.ndarray, beam: int) -> Match:
    """Descends ``tree`` keeping the ``beam`` best nodes per level; scores their leaves' templates.

    Each level is one product with the kept nodes' children (their rows gathered: centroids are
    few); the leaves' templates are scored in place, one product per leaf slice, and the best is
    taken over all of them at once. Gathering the leaves' rows into one block for a single product
    copies as many bytes as the product reads, and was measured slower than the slices.

    Args:
      tree: the gallery tree.
      probe: a unit embedding ``(d,)``, float32.
      beam: nodes kept per level (>= 1).
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}.")
    dim = probe.shape[0]
    last = len(tree.centroids) - 1
    rows: np.ndarray | None = None  # the rows of this level to score (None: all of level 0)
    macs = 0
    for level, (centroids, children) in enumerate(zip(tree.centroids, tree.children, strict=True)):
        scores = centroids @ probe if rows is None else centroids[rows] @ probe
        macs += scores.size * dim
        kept = _top(scores, beam)
        nodes = kept if rows is None else rows[kept]
        starts, stops = children[nodes], children[nodes + 1]
        if level < last:
            rows = _ranges(starts, stops)
    spans = list(zip(starts.tolist(), stops.tolist(), strict=True))
    scores = np.concatenate([tree.templates[a:b] @ probe for a, b in spans])
    if scores.size == 0:
        raise ValueError("tree_search: the leaves reached hold no template; refit the tree.")
    best = int(scores.argmax())
    row, offset = -1, best
    for a, b in spans:  # a few leaves: plain Python beats numpy's per-call cost here
        if offset < b - a:
            row = a + offset
            break
        offset -= b - a
    return Match(tree.ids[row], float(scores[best]), macs + scores.size * dim, scores.size)


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenated ``arange(start, stop)`` of every pair, in one vectorised step."""
    lengths = stops - starts
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(int(lengths.sum()))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores (all of them when there are fewer)."""
    if k >= scores.size:
        return np.arange(scores.size)
    return np.argpartition(scores, scores.size - k)[scores.size - k :]
