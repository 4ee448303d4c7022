"""Test-time views: each capture embedded as a few shifted, zoomed and mirrored copies whose
unit embeddings are averaged (numpy only; the server and the device run this module).

A :class:`TestViews` is a small JSON-serialisable description that travels in the artifact's
manifest (``input.views``): the capture itself, its mirror (``mirror``), four copies shifted by
``shift_px`` pixels (up, down, left, right; the border row or column repeated into the gap) and a
``zoom`` copy (magnified about the centre, bilinear, the same size). :func:`make_views` builds them,
:func:`average_views` folds the embeddings back: the normalised sum of the unit embedding of every
view (with ``mirror`` alone this is test-time flip averaging). Every step is an integer gather or
a fixed sequence of IEEE-754 elementwise operations, so the views of the same input are the same
bytes on any machine.

Chosen on the LFW development people (pretrain/configs/embed_face_wide.py): flip averaging alone
15.46% EER, with four 3-pixel shifts and a 1.08 zoom 14.61%.

References:
  Parkhi, Vedaldi, Zisserman, "Deep face recognition", BMVC 2015 (embeddings averaged over
  crops and flips at test time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from devices.cosine import normalize


class ViewsError(ValueError):
    """A views description or a batch that cannot be viewed; the message says which."""


@dataclasses.dataclass(frozen=True)
class TestViews:
    """Which copies of each capture are embedded and averaged.

    Attributes:
      mirror: every view also mirrored (the width axis reversed).
      shift_px: four copies shifted by this many pixels along each axis (0: none).
      zoom: one copy magnified by this factor about the centre (1.0: none).
    """

    __test__ = False  # a "Test" class name pytest must not collect

    mirror: bool = False
    shift_px: int = 0
    zoom: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.shift_px, bool) or not isinstance(self.shift_px, int):
            raise ViewsError(f"views: shift_px must be an int, got {self.shift_px!r}.")
        if not 0 <= self.shift_px <= 16:
            raise ViewsError(f"views: shift_px must be in [0, 16] pixels, got {self.shift_px}.")
        if not 1.0 <= float(self.zoom) <= 2.0:
            raise ViewsError(f"views: zoom must be in [1, 2], got {self.zoom}.")

    def geometry(self) -> list[tuple[int, int, float, bool]]:
        """``(dy, dx, zoom, mirrored)`` of every view, the capture itself first."""
        s = self.shift_px
        base: list[tuple[int, int, float]] = [(0, 0, 1.0)]
        if s:
            base += [(s, 0, 1.0), (-s, 0, 1.0), (0, s, 1.0), (0, -s, 1.0)]
        if self.zoom != 1.0:
            base.append((0, 0, float(self.zoom)))
        out = [(dy, dx, z, False) for dy, dx, z in base]
        if self.mirror:
            out += [(dy, dx, z, True) for dy, dx, z in base]
        return out

    def for_enrollment(self) -> TestViews:
        """The views an enrollment sample is embedded as: the capture and, when these views
        mirror, its mirror; captures verified later get every view.

        Why: the device's 5-shot enrollment must stay at least twice as fast as the official
        TFLite recipe's (issue 17; 2.07 ms against 5.11 ms with two views a sample, and each int8
        face ``embed`` ~0.12 ms, so 12 views a sample would take ~8 ms), and the samples' mean
        already averages over poses. On the LFW dev people (float backbone, class-mean
        templates, 10 splits; ``notebooks/bench/bench_face_views.py``, its ``enrollment``
        section): templates from the mirror pair, probes with every view 5-shot 69.7%, template
        EER 7.46%, FRR at FAR 1e-3 51.4%; templates with every view too 70.5%, 7.29%, 49.9%
        (first measured 2026-12-04 with other splits: templates and probes mirror-only 67.8%,
        7.80%, 54.5%).
        """
        return TestViews(mirror=self.mirror)

    @property
    def count(self) -> int:
        """How many embeddings each capture costs."""
        return len(self.geometry())

    def to_dict(self) -> dict[str, Any]:
        return {"mirror": self.mirror, "shift_px": self.shift_px, "zoom": float(self.zoom)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TestViews:
        unknown = set(d) - {"mirror", "shift_px", "zoom"}
        if unknown:
            raise ViewsError(f"views: unknown field(s) {sorted(unknown)}.")
        if not isinstance(d.get("mirror", False), bool):
            raise ViewsError(f"views: mirror must be true or false, got {d['mirror']!r}.")
        return cls(
            mirror=d.get("mirror", False),
            shift_px=d.get("shift_px", 0),
            zoom=float(d.get("zoom", 1.0)),
        )


SINGLE = TestViews()
"""The capture alone (one embedding per capture)."""
FLIP = TestViews(mirror=True)
"""Test-time flip averaging: the capture and its mirror."""


def views_of_input(section: Mapping[str, Any]) -> TestViews:
    """The views an artifact manifest's ``input`` section asks for: ``views`` when present,
    else flip averaging when ``flip_average`` (artifacts exported before ``views``), else one."""
    if "views" in section:
        return TestViews.from_dict(section["views"])
    return FLIP if section.get("flip_average") else SINGLE


def shift_index(n: int, d: int) -> np.ndarray:
    """Source index of every pixel of an ``n``-pixel axis moved by ``d`` (the border repeated)."""
    return np.clip(np.arange(n) - d, 0, n - 1)


def zoom_taps(n: int, zoom: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps of a ``zoom`` magnification about the centre of an ``n``-pixel axis."""
    centre = (n - 1) / 2.0
    source = centre + (np.arange(n, dtype=np.float64) - centre) / zoom
    low = np.clip(np.floor(source).astype(np.int64), 0, n - 1)
    high = np.clip(low + 1, 0, n - 1)
    frac = (source - np.floor(source)).astype(np.float32)
    return low, high, frac


def _zoomed(images: Any, zoom: float) -> Any:
    """``images`` magnified by ``zoom`` about their centre, bilinear, the same size (float32)."""
    x = images.astype(np.float32)
    h, w = x.shape[1:3]
    lo, hi, f = zoom_taps(h, zoom)
    f = f.reshape((1, h) + (1,) * (x.ndim - 2))
    x = x[:, lo] * (np.float32(1) - f) + x[:, hi] * f
    lo, hi, f = zoom_taps(w, zoom)
    f = f.reshape((1, 1, w) + (1,) * (x.ndim - 3))
    return x[:, :, lo] * (np.float32(1) - f) + x[:, :, hi] * f


def view_of(images: Any, dy: int, dx: int, zoom: float, mirrored: bool) -> Any:
    """One view (a row of :meth:`TestViews.geometry`) of a ``(n, h, w[, c])`` batch, in its
    dtype: zoomed, then moved by ``(dy, dx)`` pixels with the border repeated into the gap (a
    gather), then mirrored. Plain indexing and elementwise arithmetic only, so a numpy array
    and a JAX array (``pretrain.models.EmbedNet``'s ``test_views``) get the same view."""
    v = images if zoom == 1.0 else _zoomed(images, zoom).astype(images.dtype)
    if dy or dx:
        h, w = v.shape[1:3]
        v = v[:, shift_index(h, dy)][:, :, shift_index(w, dx)]
    return v[:, :, ::-1] if mirrored else v


def make_views(images: np.ndarray, views: TestViews) -> np.ndarray:
    """Every view of a ``(n, h, w[, c])`` batch, view-major: ``(views.count * n, h, w[, c])``
    (rows ``k*n .. (k+1)*n`` are view ``k`` of :meth:`TestViews.geometry`), in ``images``' dtype.

    Raises:
      ViewsError: a batch that is not ``(n, h, w[, c])`` or smaller than the shift.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ViewsError(f"views: need a (n, h, w[, c]) batch, got shape {images.shape}.")
    if min(images.shape[1:3]) <= 2 * views.shift_px:
        raise ViewsError(
            f"views: {images.shape[1]}x{images.shape[2]} images are too small to shift by "
            f"{views.shift_px} px."
        )
    out = [view_of(images, *g) for g in views.geometry()]
    return np.ascontiguousarray(np.concatenate(out))


def average_views(embeddings: np.ndarray, count: int) -> np.ndarray:
    """The view average of view-major ``(count * n, d)`` embeddings (:func:`make_views`'
    order): the normalised sum of each capture's unit view embeddings, ``(n, d)`` float32.

    Raises:
      ViewsError: a row count that is not a multiple of ``count``.
    """
    embeddings = np.asarray(embeddings)
    if count < 1 or len(embeddings) % count:
        raise ViewsError(f"views: {len(embeddings)} embeddings are not {count} views of a batch.")
    n = len(embeddings) // count
    unit = normalize(embeddings)
    total = unit[:n]
    for k in range(1, count):
        total = total + unit[k * n : (k + 1) * n]
    return normalize(total).astype(np.float32)


def embed_views(
    embed: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    views: TestViews,
    *,
    chunk: int = 64,
) -> np.ndarray:
    """``embed``'s view averages of ``images``, ``chunk`` captures at a time (so the views of a
    large set never sit in memory at once); ``(n, d)`` float32, plain ``embed`` for one view.

    Args:
      embed: a batch of model inputs -> ``(batch, d)`` embeddings.
      images: ``(n, h, w[, c])`` model inputs.
      views: the views to average.
      chunk: captures per call (each call embeds ``views.count * chunk`` inputs).
    """
    images = np.asarray(images)
    if views.count == 1:
        return np.asarray(embed(images), np.float32)
    parts = [
        average_views(embed(make_views(images[i : i + chunk], views)), views.count)
        for i in range(0, len(images), chunk)
    ]
    return np.concatenate(parts)
