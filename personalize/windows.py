"""A capture's further windows on the device: a fingerprint's second registration hypothesis.

An artifact whose preprocessing sets ``second_anchor_below``
(:func:`devices.preprocess.preprocess_views`) gives a print whose localiser heatmap is flat a
second window, at the heatmap's second peak. The device embeds every window of a capture. The
``embed`` outputs of the first window stay in the embedded dict as always, one row per capture, so
enrollment, the threshold's background and the continual buffers see first windows only. Those
of the further windows ride along under :data:`PREFIX` ``+ name``, with a window axis ``(n, w,
...)``; a print with fewer windows repeats its first. A capture scores its best window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PREFIX = "window_"

Embedded = dict[str, np.ndarray]


def with_windows(first: Embedded, further: Embedded, count: int) -> Embedded:
    """``first`` (one row per capture) plus ``further``'s outputs of ``count`` more windows per
    capture, ``(n * count, ...)`` capture-major, under :data:`PREFIX` with a window axis."""
    n = len(next(iter(first.values())))
    out = dict(first)
    for name, rows in further.items():
        out[PREFIX + name] = np.asarray(rows).reshape(n, count, *np.shape(rows)[1:])
    return out


def windows(embedded: Embedded) -> list[Embedded]:
    """The embedded dict of each window: the first, then each further one (one row per
    capture in each)."""
    first = {k: v for k, v in embedded.items() if not k.startswith(PREFIX)}
    further = {k[len(PREFIX) :]: v for k, v in embedded.items() if k.startswith(PREFIX)}
    if not further:
        return [first]
    count = next(iter(further.values())).shape[1]
    return [first, *({k: v[:, j] for k, v in further.items()} for j in range(count))]


def best_window(
    embedded: Embedded, score: Callable[[Embedded], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, which)``: each capture's best score over its windows by ``score`` (one float
    per row of a window's dict), and the window it came from (0 = the first)."""
    table = np.stack([np.asarray(score(w), np.float64) for w in windows(embedded)])
    which = np.argmax(table, axis=0)
    return table[which, np.arange(table.shape[1])], which


def window_of(embedded: Embedded, row: int, which: int) -> Embedded:
    """Capture ``row``'s outputs of window ``which``, as a one-capture embedded dict."""
    return {k: v[row : row + 1] for k, v in windows(embedded)[which].items()}
