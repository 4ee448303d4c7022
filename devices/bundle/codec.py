"""Tensors <-> container records: codebook + relative-index sparse streams, Huffman coded.

A *coded* tensor is a codebook and one code per weight (code 0 is the zero of pruned weights and
of filler entries; it is implicit, not stored). Its codes are seen as a 2-D matrix (all axes but
the last, by the last: a Dense kernel as inputs x units, a convolution as positions x filters);
optionally each distinct row and column is kept once (:mod:`devices.bundle.dedup`); what remains
is read row by row or column by column, turned into gap and value streams
(:mod:`devices.bundle.sparse`), and every stream is Huffman coded (:mod:`devices.bundle.huffman`).
The encoder picks the deduplication, order and index width that give the fewest bytes unless
told (``index_bits="paper"``: the paper's fixed widths, :data:`PAPER_INDEX_BITS`). Codebooks hold
only the codes in use. *Raw* tensors (biases) are float32 or float16; raw int8 / uint8 hold
integers and bytes (a download's exponents and compressed model skeleton).

Decoding is numpy only and exact: it returns the codebook value of every code.

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016, sections 2-4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

import devices.bundle.dedup as slices
import devices.bundle.huffman as huffman
from devices.bundle.container import Record
from devices.bundle.errors import BundleError
from devices.bundle.sparse import MAX_INDEX_BITS, decode_relative, encode_relative

ORDERS = ("row", "last-axis-first")
AUTO = "auto"
PAPER = "paper"
PAPER_INDEX_BITS = {"conv": 4, "fc": 5}
"""The fixed relative-index widths of Deep Compression's LeNet format (4 bits for conv, 5 for fc;
issue 16): ``index_bits="paper"`` uses them (a kernel of 4 or more axes is a convolution), to
compare the searched widths with the paper's format."""
ROWS, COLS = 1, 2
DEDUPS = (0, ROWS, COLS, ROWS | COLS)


class Coded(NamedTuple):
    """A weight-shared tensor: ``weights == codebook[codes]`` with ``codebook[0] == 0``."""

    codebook: np.ndarray
    codes: np.ndarray


class TensorInfo(NamedTuple):
    """What a tensor costs in a bundle, for the size tables.

    Attributes:
      name: leaf path.
      kind: ``"coded"`` or ``"raw"``.
      shape: tensor shape.
      size: number of scalars.
      nonzero: nonzero weights.
      entries: stored entries, fillers included (coded) or ``size`` (raw).
      codebook: codes in use, the zero included (coded) or 0.
      index_bits: relative index width (coded) or 0.
      order: code layout.
      value_bits: Huffman payload bits of the value stream (raw: ``size`` x dtype bits).
      index_payload_bits: Huffman payload bits of the index stream.
      nbytes: the tensor's bytes in the file (its header record, tables, codebook, streams).
      dtype: storage dtype of raw values or codebook entries.
      rows: ``(stored, total)`` rows of the 2-D view (distinct nonzero rows when deduplicated).
      cols: ``(stored, total)`` columns of the 2-D view.
      map_bits: Huffman payload bits of the slice maps.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    size: int
    nonzero: int
    entries: int
    codebook: int
    index_bits: int
    order: str
    value_bits: int
    index_payload_bits: int
    nbytes: int
    dtype: str
    rows: tuple[int, int] = (0, 0)
    cols: tuple[int, int] = (0, 0)
    map_bits: int = 0


def view2d(shape: tuple[int, ...]) -> tuple[int, int]:
    """The 2-D view of a tensor: all axes but the last, by the last."""
    if not shape:
        return 1, 1
    return int(np.prod(shape[:-1], dtype=np.int64)), int(shape[-1])


def _reduce(matrix: np.ndarray, mode: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The matrix with its distinct rows / columns only, and the slice maps (rows first)."""
    maps = []
    if mode & ROWS:
        symbols, matrix = slices.slice_map(matrix)
        maps.append(symbols)
    if mode & COLS:
        symbols, distinct = slices.slice_map(matrix.T)
        matrix = distinct.T
        maps.append(symbols)
    return matrix, maps


def _streams_size(
    codes: np.ndarray, bits: int, alphabet: int
) -> tuple[int, np.ndarray, np.ndarray]:
    gaps, values = encode_relative(codes, bits)
    size = huffman.stream_size(np.bincount(gaps, minlength=1 << bits))
    size += huffman.stream_size(np.bincount(values, minlength=alphabet))
    return size, gaps, values


def compact(coded: Coded) -> Coded:
    """The same tensor with only the codes in use, renumbered ``1..u`` in codebook order."""
    book = np.asarray(coded.codebook)
    codes = np.asarray(coded.codes).astype(np.int64)
    if book.ndim != 1 or book.size == 0:
        raise ValueError(f"a codebook is 1-D and non-empty, got shape {book.shape}.")
    if codes.size and (codes.min() < 0 or codes.max() >= book.size):
        raise ValueError(f"codes must be in [0, {book.size}).")
    if book[0] != 0:
        raise ValueError(f"codebook[0] must be 0 (the pruned weights' code), got {book[0]}.")
    zero_codes = np.flatnonzero(book == 0)
    codes = np.where(np.isin(codes, zero_codes), 0, codes)
    used = np.unique(codes[codes != 0])
    remap = np.zeros(book.size, np.int64)
    remap[used] = np.arange(1, used.size + 1)
    return Coded(np.concatenate([[0.0], book[used]]).astype(book.dtype), remap[codes])


def encode_coded(
    name: str,
    coded: Coded,
    *,
    index_bits: int | str = AUTO,
    order: str = AUTO,
    dedup: int | str = AUTO,
    dtype: str = "float32",
) -> Record:
    """The record of a coded tensor; ``"auto"`` settings pick the fewest bytes.

    Args:
      name: leaf path.
      coded: codebook and codes (see :class:`Coded`).
      index_bits: relative index width in ``[1, 12]``, ``"auto"`` or ``"paper"`` (4 bits for a
        convolution kernel, 5 for any other: :data:`PAPER_INDEX_BITS`).
      order: ``"row"``, ``"last-axis-first"`` (column by column of the 2-D view) or ``"auto"``.
      dedup: deduplicated axes of the 2-D view (0 none, 1 rows, 2 columns, 3 both) or ``"auto"``.
      dtype: codebook storage, ``"float32"`` or ``"float16"``.
    """
    if index_bits == PAPER:
        index_bits = PAPER_INDEX_BITS["conv" if np.ndim(coded.codes) >= 4 else "fc"]
    coded = compact(coded)
    alphabet = coded.codebook.size
    if alphabet - 1 > 65535:
        raise ValueError(f"{name}: {alphabet - 1} codes in use; at most 65535 fit a record.")
    if order != AUTO and order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS} or 'auto', got {order!r}.")
    if dedup != AUTO and dedup not in DEDUPS:
        raise ValueError(f"dedup must be one of {DEDUPS} or 'auto', got {dedup!r}.")
    matrix = coded.codes.reshape(view2d(coded.codes.shape))
    orders = ORDERS if order == AUTO else (order,)
    widths = range(1, MAX_INDEX_BITS + 1) if index_bits == AUTO else (int(index_bits),)
    best: tuple[int, int, str, int, list[np.ndarray], np.ndarray, np.ndarray] | None = None
    for mode in DEDUPS if dedup == AUTO else (int(dedup),):
        reduced, maps = _reduce(matrix, mode)
        if any(m.max(initial=0) >= huffman.MAX_ALPHABET for m in maps):
            continue  # more distinct slices than one map alphabet names
        base = sum(huffman.stream_size(np.bincount(m)) for m in maps)
        for o in orders:
            arranged = reduced if o == "row" else reduced.T
            for b in widths:
                size, gaps, values = _streams_size(arranged, b, alphabet)
                if best is None or base + size < best[0]:
                    best = (base + size, mode, o, b, maps, gaps, values)
    if best is None:
        raise ValueError(f"{name}: too many distinct slices to deduplicate (dedup={dedup}).")
    _, mode, o, b, maps, gaps, values = best
    book = coded.codebook[1:].astype(np.dtype(dtype).newbyteorder("<"))
    sections = (
        book.tobytes(),
        *(huffman.encode(m, int(m.max(initial=0)) + 1) for m in maps),
        huffman.encode(gaps, 1 << b),
        huffman.encode(values, alphabet),
    )
    shape = tuple(coded.codes.shape)
    return Record(name, "coded", dtype, shape, b, o, alphabet - 1, sections, mode)


def encode_raw(name: str, array: np.ndarray, *, dtype: str = "float32") -> Record:
    """The record of a tensor stored as plain little-endian values (floats, int8 or uint8)."""
    data = np.asarray(array).astype(np.dtype(dtype).newbyteorder("<"))
    return Record(name, "raw", dtype, tuple(data.shape), 0, "row", 0, (data.tobytes(),))


def encode_tensor(
    name: str,
    tensor: Any,
    *,
    index_bits: int | str = AUTO,
    order: str = AUTO,
    dedup: int | str = AUTO,
    codebook_dtype: str = "float32",
    raw_dtype: str = "float32",
) -> Record:
    """A record for ``tensor``: coded if it has ``codebook`` and ``codes``, raw otherwise."""
    if hasattr(tensor, "codebook") and hasattr(tensor, "codes"):
        coded = Coded(np.asarray(tensor.codebook), np.asarray(tensor.codes))
        return encode_coded(
            name, coded, index_bits=index_bits, order=order, dedup=dedup, dtype=codebook_dtype
        )
    return encode_raw(name, np.asarray(tensor), dtype=raw_dtype)


def _floats(data: bytes, dtype: str, count: int, what: str) -> np.ndarray:
    dt = np.dtype(dtype).newbyteorder("<")
    if len(data) != count * dt.itemsize:
        raise BundleError(f"{what}: {len(data)} bytes, expected {count} x {dtype}.")
    values = np.frombuffer(data, dt).astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise BundleError(f"{what}: holds non-finite values.")
    return values


def decode_record(record: Record, nbytes: int) -> tuple[np.ndarray, TensorInfo]:
    """The float32 array of a record and its :class:`TensorInfo` (``nbytes``: its file bytes).

    Raises:
      BundleError: the record's sections do not decode to its shape.
    """
    name, shape = record.name, record.shape
    size = int(np.prod(shape, dtype=np.int64))
    if record.kind == "raw":
        if len(record.sections) != 1:
            raise BundleError(f"{name}: a raw tensor has 1 section, found {len(record.sections)}.")
        values = _floats(record.sections[0], record.dtype, size, name).reshape(shape)
        bits = size * np.dtype(record.dtype).itemsize * 8
        info = TensorInfo(
            name,
            "raw",
            shape,
            size,
            int(np.count_nonzero(values)),
            size,
            0,
            0,
            "row",
            bits,
            0,
            nbytes,
            record.dtype,
        )
        return values, info
    return _decode_coded(record, nbytes)


def _decode_coded(record: Record, nbytes: int) -> tuple[np.ndarray, TensorInfo]:
    name, shape = record.name, record.shape
    if record.dedup not in DEDUPS:
        raise BundleError(f"{name}: unknown deduplication flags {record.dedup}.")
    axes = [a for a in (ROWS, COLS) if record.dedup & a]
    if len(record.sections) != 3 + len(axes):
        raise BundleError(
            f"{name}: a coded tensor with {len(axes)} slice maps has {3 + len(axes)} sections, "
            f"found {len(record.sections)}."
        )
    if not 1 <= record.index_bits <= MAX_INDEX_BITS:
        raise BundleError(f"{name}: index width {record.index_bits} out of range.")
    book = np.concatenate(
        [[0.0], _floats(record.sections[0], record.dtype, record.codebook, f"{name} codebook")]
    ).astype(np.float32)
    rows, cols = view2d(shape)
    kept = {ROWS: rows, COLS: cols}
    maps, map_bits = [], 0
    for i, axis in enumerate(axes):
        what = f"{name} {'row' if axis == ROWS else 'column'} map"
        slices_ = rows if axis == ROWS else cols
        symbols, stream = huffman.decode(record.sections[1 + i], max_count=slices_, what=what)
        if symbols.size != (rows if axis == ROWS else cols):
            raise BundleError(f"{what}: {symbols.size} entries for {kept[axis]} slices.")
        maps.append((axis, symbols))
        kept[axis] = slices.distinct_count(symbols)
        map_bits += stream.bits
    first = 1 + len(axes)
    positions = kept[ROWS] * kept[COLS]  # each stored entry takes at least one position
    gaps, gstream = huffman.decode(
        record.sections[first],
        limit=1 << record.index_bits,
        max_count=positions,
        what=f"{name} index stream",
    )
    values, vstream = huffman.decode(
        record.sections[first + 1], limit=book.size, max_count=positions, what=f"{name} values"
    )
    flat = decode_relative(gaps, values, kept[ROWS] * kept[COLS], record.index_bits)
    if record.order == "row":
        matrix = flat.reshape(kept[ROWS], kept[COLS])
    else:
        matrix = flat.reshape(kept[COLS], kept[ROWS]).T
    for axis, symbols in reversed(maps):
        matrix = (
            slices.expand(symbols, matrix) if axis == ROWS else slices.expand(symbols, matrix.T).T
        )
    weights = book[matrix].reshape(shape)
    info = TensorInfo(
        name,
        "coded",
        shape,
        weights.size,
        int(np.count_nonzero(weights)),
        int(gaps.size),
        book.size,
        record.index_bits,
        record.order,
        vstream.bits,
        gstream.bits,
        nbytes,
        record.dtype,
        (kept[ROWS], rows),
        (kept[COLS], cols),
        map_bits,
    )
    return weights, info


def per_tensor(option: Any, name: str) -> Any:
    """``option[name]`` (or its layer's entry) for a mapping, the option itself otherwise."""
    if isinstance(option, Mapping):
        layer = name.rsplit("/", 1)[0]
        return option.get(name, option.get(layer, AUTO))
    return option
