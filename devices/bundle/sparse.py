"""Sparse storage as Deep Compression stores it: relative indices with filler zeros.

A flat array of codes (0 = zero weight) becomes two streams of equal length: for each stored entry
the number of zeros skipped since the previous one (``gap``, at most ``2**index_bits - 1``) and
its code. A run of zeros longer than the widest gap is bridged by filler entries: a zero code at
the farthest reachable position (the paper's "padding zero", figure 2). Trailing zeros are
implied by the array's size.

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016, section 2 and figure 2.
"""

from __future__ import annotations

import numpy as np

from devices.bundle.errors import BundleError

MAX_INDEX_BITS = 12


def _check_bits(index_bits: int) -> int:
    if not 1 <= index_bits <= MAX_INDEX_BITS:
        raise ValueError(f"index_bits must be in [1, {MAX_INDEX_BITS}], got {index_bits}.")
    return (1 << index_bits) - 1


def encode_relative(codes: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gaps, values)`` of the nonzero entries of ``codes`` (flattened), fillers included.

    Args:
      codes: integer array; 0 marks a zero weight.
      index_bits: width of a gap; gaps are in ``[0, 2**index_bits - 1]``.

    Returns:
      Two int64 arrays of the same length: the gap before each entry, and its code (0 for
      fillers).
    """
    max_gap = _check_bits(index_bits)
    flat = np.asarray(codes).ravel()
    where = np.flatnonzero(flat)
    gaps = np.diff(where, prepend=-1) - 1
    fillers = gaps // (max_gap + 1)
    rest = gaps - fillers * (max_gap + 1)
    per = fillers + 1
    total = int(per.sum())
    out_gaps = np.full(total, max_gap, np.int64)
    out_vals = np.zeros(total, np.int64)
    last = np.cumsum(per) - 1  # each real entry comes after its fillers
    out_gaps[last] = rest
    out_vals[last] = flat[where]
    return out_gaps, out_vals


def decode_relative(gaps: np.ndarray, values: np.ndarray, size: int, index_bits: int) -> np.ndarray:
    """The flat code array of ``size`` entries that :func:`encode_relative` stored.

    Raises:
      BundleError: streams of different lengths, gaps wider than ``index_bits`` or positions past
        ``size``.
    """
    max_gap = _check_bits(index_bits)
    gaps, values = np.asarray(gaps, np.int64), np.asarray(values, np.int64)
    if gaps.shape != values.shape:
        raise BundleError(f"index stream has {gaps.size} entries, value stream {values.size}.")
    if gaps.size and (gaps.min() < 0 or gaps.max() > max_gap):
        raise BundleError(f"a gap exceeds {index_bits} bits.")
    positions = np.cumsum(gaps + 1) - 1
    if positions.size and positions[-1] >= size:
        raise BundleError(f"entries run to position {positions[-1]}, past the {size} weights.")
    out = np.zeros(size, np.int64)
    out[positions] = values
    return out
