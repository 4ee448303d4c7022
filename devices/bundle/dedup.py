"""Deduplicated slices: each distinct row (or column) of a code matrix is stored once.

A slice map has one symbol per slice: 0 for an all-zero slice, 1 for a new distinct slice (the
next one stored), ``2 + j`` for a copy of distinct slice ``j``. Pruned networks have many zero
slices (dead inputs, dead units, whole filters), so the map is mostly 0 and 1 and Huffman codes it
in about a bit per slice; the matrix that remains has fewer and shorter runs of zeros.

References:
  Plienlinger (the seed's list of improvements: "deduplicate weights").
"""

from __future__ import annotations

import numpy as np

from devices.bundle.errors import BundleError

ZERO, NEW = 0, 1


def slice_map(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(symbols, distinct)`` for the rows of a 2-D ``matrix``.

    Returns:
      The map (int64, one symbol per row) and the distinct nonzero rows in order of appearance.
    """
    seen: dict[bytes, int] = {}
    symbols = np.empty(matrix.shape[0], np.int64)
    keep: list[int] = []
    nonzero = np.any(matrix != 0, axis=1)
    for i in range(matrix.shape[0]):
        if not nonzero[i]:
            symbols[i] = ZERO
            continue
        key = matrix[i].tobytes()
        if key in seen:
            symbols[i] = 2 + seen[key]
        else:
            seen[key] = len(keep)
            symbols[i] = NEW
            keep.append(i)
    return symbols, matrix[np.asarray(keep, np.int64)].reshape(len(keep), matrix.shape[1])


def distinct_count(symbols: np.ndarray) -> int:
    """Number of distinct rows a map refers to."""
    return int(np.count_nonzero(np.asarray(symbols) == NEW))


def expand(symbols: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """The full matrix of a map and its distinct rows.

    Raises:
      BundleError: the map refers to a row not stored (yet), or the counts disagree.
    """
    symbols = np.asarray(symbols, np.int64)
    is_new = symbols == NEW
    if int(is_new.sum()) != distinct.shape[0]:
        raise BundleError(f"slice map names {int(is_new.sum())} rows, {distinct.shape[0]} stored.")
    before = np.cumsum(is_new) - is_new
    copies = symbols >= 2
    if np.any(symbols[copies] - 2 >= before[copies]):
        raise BundleError("slice map copies a row that is not stored before it.")
    index = np.where(is_new, before, np.where(copies, symbols - 2, -1))
    out = np.zeros((symbols.size, distinct.shape[1]), distinct.dtype)
    live = index >= 0
    out[live] = distinct[index[live]]
    return out
