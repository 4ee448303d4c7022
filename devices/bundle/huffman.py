"""Canonical Huffman coding of integer symbol streams, numpy only (the device decodes it too).

A stream is stored as its symbol count, its code lengths (4 bits per symbol up to the largest
symbol used; codes are at most 15 bits long) and the bits, most significant first. A stream of one repeated
symbol needs no bits at all. Decoding checks everything it reads: lengths that break the Kraft
inequality, bits that spell no code, bits missing or left over are refused with
:class:`~devices.bundle.errors.BundleError`.

References:
  Huffman, "A Method for the Construction of Minimum-Redundancy Codes", Proc. IRE 1952.
  Schwartz, Kallick, "Generating a canonical prefix encoding", CACM 1964.
  Han, Mao, Dally, "Deep Compression", ICLR 2016, section 4 (Huffman coding of weights and
  sparse indices).
"""

from __future__ import annotations

import heapq
import struct
from typing import NamedTuple

import numpy as np

from devices.bundle.errors import BundleError

MAX_LEN = 15
MAX_ALPHABET = 4096
MAX_SYMBOLS = 1 << 26  # a stream's symbol count is read from the file: bounded before allocating
_HEAD = struct.Struct("<IHB")  # count, alphabet, mode
MODE_CODED, MODE_CONSTANT = 0, 1
WINDOW_BITS = 1 << 16  # bit positions whose codes are looked up at once while decoding


class Stream(NamedTuple):
    """A decoded stream's bookkeeping (for size tables).

    Attributes:
      symbols: number of symbols.
      alphabet: entries of the code-length table (largest symbol used + 1).
      bits: payload bits (excluding the table and the padding).
      nbytes: bytes of the serialized stream, header and table included.
    """

    symbols: int
    alphabet: int
    bits: int
    nbytes: int


def code_lengths(counts: np.ndarray, max_len: int = MAX_LEN) -> np.ndarray:
    """Huffman code lengths (0 for unused symbols) of at most ``max_len`` bits.

    Ties are broken by symbol so the result is deterministic. When the optimal code is deeper
    than ``max_len``, counts are halved (keeping them >= 1) and the code rebuilt: rare, and only
    slightly suboptimal.
    """
    counts = np.asarray(counts, np.int64)
    used = np.flatnonzero(counts)
    lengths = np.zeros(counts.size, np.uint8)
    if used.size == 0:
        return lengths
    if used.size == 1:
        lengths[used] = 1
        return lengths
    if used.size > 2**max_len:
        raise ValueError(f"{used.size} symbols do not fit codes of {max_len} bits.")
    weights = counts[used].copy()
    while True:
        depth = _depths(weights)
        if depth.max() <= max_len:
            lengths[used] = depth
            return lengths
        weights = np.maximum(weights // 2, 1)


def _depths(weights: np.ndarray) -> np.ndarray:
    heap: list[tuple[int, int, list[int]]] = [(int(w), i, [i]) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    depth = np.zeros(len(weights), np.int64)
    order = len(weights)
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        depth[a] += 1
        depth[b] += 1
        heapq.heappush(heap, (w1 + w2, order, a + b))
        order += 1
    return depth


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical codes for ``lengths``: shorter first, then by symbol (0 where unused)."""
    lengths = np.asarray(lengths, np.int64)
    codes = np.zeros(lengths.size, np.int64)
    code, prev = 0, 0
    for sym in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[sym]) - prev
        codes[sym] = code
        code += 1
        prev = int(lengths[sym])
    return codes


def _pack_bits(codes: np.ndarray, lengths: np.ndarray) -> tuple[bytes, int]:
    """Concatenates ``codes[i]`` written in ``lengths[i]`` bits, MSB first; returns (bytes, bits)."""
    total = int(lengths.sum())
    if total == 0:
        return b"", 0
    starts = np.cumsum(lengths) - lengths
    rep_code = np.repeat(codes, lengths)
    rep_len = np.repeat(lengths, lengths)
    offset = np.arange(total) - np.repeat(starts, lengths)
    bits = (rep_code >> (rep_len - 1 - offset)) & 1
    return np.packbits(bits.astype(np.uint8)).tobytes(), total


def encode(symbols: np.ndarray, alphabet: int) -> bytes:
    """Serializes ``symbols`` (ints in ``[0, alphabet)``) as a canonical Huffman stream."""
    symbols = np.asarray(symbols).ravel().astype(np.int64)
    if not 1 <= alphabet <= MAX_ALPHABET:
        raise ValueError(f"alphabet must be in [1, {MAX_ALPHABET}], got {alphabet}.")
    if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet):
        raise ValueError(f"symbols must be in [0, {alphabet}).")
    counts = np.bincount(symbols, minlength=alphabet)
    used = np.flatnonzero(counts)
    if used.size <= 1:
        sym = int(used[0]) if used.size else 0
        return _HEAD.pack(symbols.size, alphabet, MODE_CONSTANT) + struct.pack("<H", sym)
    # The table stops at the largest symbol used: symbols above it need no entry.
    top = int(used[-1]) + 1
    lengths = code_lengths(counts[:top])
    table = np.zeros(top + (top & 1), np.uint8)
    table[:top] = lengths
    nibbles = (table[0::2] << 4) | table[1::2]
    payload, _ = _pack_bits(canonical_codes(lengths)[symbols], lengths[symbols].astype(np.int64))
    return _HEAD.pack(symbols.size, top, MODE_CODED) + nibbles.tobytes() + payload


def encoded_bits(counts: np.ndarray) -> int:
    """Payload bits of a stream with these symbol counts (for choosing between encodings)."""
    counts = np.asarray(counts, np.int64)
    if np.count_nonzero(counts) <= 1:
        return 0
    return int(np.sum(counts * code_lengths(counts)))


def stream_size(counts: np.ndarray) -> int:
    """Bytes :func:`encode` writes for a stream with these symbol counts."""
    counts = np.asarray(counts, np.int64)
    used = np.flatnonzero(counts)
    if used.size <= 1:
        return _HEAD.size + 2
    return _HEAD.size + (int(used[-1]) + 2) // 2 + (encoded_bits(counts) + 7) // 8


def decode(
    data: bytes, *, limit: int | None = None, max_count: int = MAX_SYMBOLS, what: str = "stream"
) -> tuple[np.ndarray, Stream]:
    """Reads a stream written by :func:`encode`; every byte of ``data`` must belong to it.

    Args:
      data: the serialized stream.
      limit: symbols must be below this (the alphabet the caller expects).
      max_count: the most symbols the caller can use (a stated count above it is refused before
        anything is allocated).
      what: names the stream in error messages.

    Raises:
      BundleError: the stream is malformed (the message says how).
    """
    if len(data) < _HEAD.size:
        raise BundleError(f"{what}: {len(data)} bytes, too short for a stream header.")
    count, alphabet, mode = _HEAD.unpack_from(data)
    if count > max_count:
        raise BundleError(f"{what}: {count:,} symbols stated, at most {max_count:,} fit (corrupt).")
    top = MAX_ALPHABET if limit is None else limit
    if not 1 <= alphabet <= top:
        raise BundleError(f"{what}: alphabet size {alphabet} out of range [1, {top}].")
    if mode == MODE_CONSTANT:
        if len(data) != _HEAD.size + 2:
            raise BundleError(f"{what}: constant stream of {len(data)} bytes, expected 9.")
        (sym,) = struct.unpack_from("<H", data, _HEAD.size)
        if sym >= alphabet:
            raise BundleError(f"{what}: symbol {sym} outside the alphabet of {alphabet}.")
        return np.full(count, sym, np.int64), Stream(count, alphabet, 0, len(data))
    if mode != MODE_CODED:
        raise BundleError(f"{what}: unknown stream mode {mode}.")
    table_size = (alphabet + 1) // 2
    if len(data) < _HEAD.size + table_size:
        raise BundleError(f"{what}: truncated code-length table.")
    nibbles = np.frombuffer(data, np.uint8, table_size, _HEAD.size)
    lengths = np.empty(table_size * 2, np.int64)
    lengths[0::2], lengths[1::2] = nibbles >> 4, nibbles & 15
    if alphabet & 1 and lengths[-1]:
        raise BundleError(f"{what}: code-length table has a stray entry.")
    lengths = lengths[:alphabet]
    used = lengths[lengths > 0]
    if used.size < 2 or np.sum(2.0**-used) > 1.0:
        raise BundleError(f"{what}: code lengths do not form a prefix code.")
    payload = np.frombuffer(data, np.uint8, offset=_HEAD.size + table_size)
    symbols, consumed = _decode_bits(payload, lengths, count, what)
    if (consumed + 7) // 8 != payload.size:
        raise BundleError(
            f"{what}: {payload.size} payload bytes, but the {count} symbols use {consumed} bits."
        )
    return symbols, Stream(count, alphabet, consumed, len(data))


def _decode_bits(
    payload: np.ndarray, lengths: np.ndarray, count: int, what: str
) -> tuple[np.ndarray, int]:
    """Table-driven decoding: each step peeks ``max_len`` bits and looks the code up."""
    width = int(lengths.max())
    codes = canonical_codes(lengths)
    size = 1 << width
    sym_of = np.full(size, -1, np.int64)
    len_of = np.zeros(size, np.int64)
    for sym in np.flatnonzero(lengths):
        span = width - int(lengths[sym])
        lo = int(codes[sym]) << span
        sym_of[lo : lo + (1 << span)] = sym
        len_of[lo : lo + (1 << span)] = lengths[sym]
    nbits = payload.size * 8
    if count * int(lengths[lengths > 0].min()) > nbits:
        raise BundleError(f"{what}: {count} symbols cannot fit in {nbits} bits (truncated?).")
    bits = np.concatenate([np.unpackbits(payload), np.zeros(width, np.uint8)])
    weights = 1 << np.arange(width - 1, -1, -1)
    sym_list, len_list = sym_of.tolist(), len_of.tolist()
    out = [0] * count
    pos, base = 0, 0
    win: list[int] = []
    for i in range(count):
        if pos >= nbits:
            raise BundleError(f"{what}: bits end after {i} of {count} symbols (truncated?).")
        if pos - base >= len(win):
            # The code starting at each bit, for the next WINDOW_BITS bits only: as Python ints
            # for the whole payload they took ~300 bytes a payload byte (a 100 KB kernel: 30 MB).
            base = pos
            part = bits[base : base + WINDOW_BITS + width - 1].astype(np.int64)
            codes_at = np.lib.stride_tricks.sliding_window_view(part, width) @ weights
            win = codes_at.tolist()
        key = win[pos - base]
        symbol = sym_list[key]
        if symbol < 0:
            raise BundleError(f"{what}: bits at offset {pos} spell no code (corrupt).")
        out[i] = symbol
        pos += len_list[key]
    if pos > nbits:
        raise BundleError(f"{what}: the last code runs past the end of the bits (truncated?).")
    return np.asarray(out, np.int64), pos
