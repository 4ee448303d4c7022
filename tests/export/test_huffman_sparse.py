"""Exact round-trips of the entropy coder and the relative-index storage (property tests)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.bundle import dedup as slices
from devices.bundle import huffman
from devices.bundle.sparse import decode_relative, encode_relative
from export.bundle import BundleError

FAST = settings(max_examples=60, deadline=None)


@st.composite
def symbol_streams(draw):
    alphabet = draw(st.integers(1, 300))
    n = draw(st.integers(0, 3000))
    skew = draw(st.floats(0.0, 3.0))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    weights = rng.random(alphabet) ** (1 + 10 * skew)
    symbols = rng.choice(alphabet, size=n, p=weights / weights.sum())
    return symbols, alphabet


@st.composite
def sparse_matrices(draw):
    rows, cols = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    density = draw(st.floats(0.0, 1.0))
    book = draw(st.integers(2, 64))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, book, (rows, cols)) * (rng.random((rows, cols)) < density)
    return codes, book


@FAST
@given(symbol_streams())
def test_huffman_round_trip_is_exact(stream) -> None:
    symbols, alphabet = stream
    data = huffman.encode(symbols, alphabet)
    decoded, info = huffman.decode(data, limit=alphabet)
    np.testing.assert_array_equal(decoded, symbols)
    assert info.symbols == symbols.size and info.nbytes == len(data)
    counts = np.bincount(symbols, minlength=alphabet)
    assert len(data) == huffman.stream_size(counts)


@pytest.mark.parametrize(("window", "count"), [(3, 5_000), (64, 5_000), (None, 300_000)])
def test_huffman_decodes_across_lookup_windows(monkeypatch, window, count: int) -> None:
    # Codes straddle the edges of the windows the decoder looks codes up in; 300,000 skewed
    # symbols (~700,000 bits) cross the default window's edge ten times.
    symbols = np.random.default_rng(0).geometric(0.3, count).clip(max=40) - 1
    data = huffman.encode(symbols, 40)
    if window is not None:
        monkeypatch.setattr(huffman, "WINDOW_BITS", window)
    tracemalloc.start()
    try:
        decoded, info = huffman.decode(data, limit=40)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(decoded, symbols)
    assert info.bits > (8 * huffman.WINDOW_BITS if window is None else 100 * window)
    if window is None:  # 111 KB of payload: 10.6 MB here, 55 MB when every bit's code was kept
        assert peak < 20e6


@FAST
@given(symbol_streams())
def test_code_lengths_are_prefix_free_bounded_and_near_entropy(stream) -> None:
    symbols, alphabet = stream
    counts = np.bincount(symbols, minlength=alphabet)
    lengths = huffman.code_lengths(counts)
    used = lengths[counts > 0]
    assert np.all(lengths[counts == 0] == 0) and used.max(initial=0) <= huffman.MAX_LEN
    assert np.sum(2.0 ** -used.astype(float)) <= 1.0 + 1e-12
    if np.count_nonzero(counts) > 1 and lengths.max() < huffman.MAX_LEN:
        p = counts[counts > 0] / counts.sum()
        entropy = -np.sum(p * np.log2(p)) * counts.sum()
        assert entropy - 1e-6 <= huffman.encoded_bits(counts) <= entropy + counts.sum()
    codes = huffman.canonical_codes(lengths)
    words = {format(int(c), f"0{int(n)}b") for c, n in zip(codes, lengths, strict=True) if n}
    assert not any(a != b and b.startswith(a) for a in words for b in words)


def test_huffman_limits_depth_on_fibonacci_counts() -> None:
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    lengths = huffman.code_lengths(np.asarray(fib))
    assert lengths.max() <= huffman.MAX_LEN and np.sum(2.0 ** -lengths.astype(float)) <= 1.0


@FAST
@given(sparse_matrices(), st.integers(1, 12))
def test_relative_index_round_trip_is_exact(matrix, bits: int) -> None:
    codes, book = matrix
    gaps, values = encode_relative(codes, bits)
    assert gaps.size == values.size and (gaps.size == 0 or gaps.max() < 2**bits)
    assert np.count_nonzero(values) == np.count_nonzero(codes)
    flat = decode_relative(gaps, values, codes.size, bits)
    np.testing.assert_array_equal(flat.reshape(codes.shape), codes)
    g, _ = huffman.decode(huffman.encode(gaps, 2**bits), limit=2**bits)
    v, _ = huffman.decode(huffman.encode(values, book), limit=book)
    np.testing.assert_array_equal(
        decode_relative(g, v, codes.size, bits).reshape(codes.shape), codes
    )


def test_fillers_bridge_long_runs_as_in_the_paper() -> None:
    codes = np.zeros(20, np.int64)
    codes[[1, 12]] = [5, 7]
    gaps, values = encode_relative(codes, 3)  # widest gap 7: position 12 needs one filler at 9
    np.testing.assert_array_equal(gaps, [1, 7, 2])
    np.testing.assert_array_equal(values, [5, 0, 7])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:-1], "payload bytes|truncated|end"),
        (lambda d: d + b"\x00", "payload bytes"),
        (lambda d: d[:5], "too short"),
        (lambda d: d[:4] + b"\x00\x10" + d[6:], "alphabet|table|prefix"),
    ],
)
def test_malformed_streams_are_refused(mutate, message: str) -> None:
    rng = np.random.default_rng(0)
    data = huffman.encode(rng.integers(0, 20, 500), 20)
    with pytest.raises(BundleError, match=message):
        huffman.decode(mutate(data), limit=20)


def test_relative_decoding_refuses_bad_streams() -> None:
    with pytest.raises(BundleError, match="past"):
        decode_relative(np.array([3, 3]), np.array([1, 1]), 5, 3)
    with pytest.raises(BundleError, match="exceeds"):
        decode_relative(np.array([9]), np.array([1]), 50, 3)
    with pytest.raises(BundleError, match="entries"):
        decode_relative(np.array([1, 2]), np.array([1]), 50, 3)


@FAST
@given(sparse_matrices(), st.integers(0, 2**31))
def test_slice_maps_round_trip_with_zero_and_repeated_rows(matrix, seed: int) -> None:
    codes, _ = matrix
    rng = np.random.default_rng(seed)
    codes = codes[rng.integers(0, codes.shape[0], codes.shape[0] * 2)]  # repeat rows
    codes[rng.random(codes.shape[0]) < 0.3] = 0
    symbols, distinct = slices.slice_map(codes)
    assert distinct.shape[0] == slices.distinct_count(symbols)
    assert distinct.shape[0] == np.unique(codes[np.any(codes != 0, 1)], axis=0).shape[0]
    np.testing.assert_array_equal(slices.expand(symbols, distinct), codes)


def test_slice_maps_refuse_forward_references() -> None:
    with pytest.raises(BundleError, match="not stored before"):
        slices.expand(np.array([2, 1]), np.ones((1, 3), np.int64))
    with pytest.raises(BundleError, match="names 2 rows"):
        slices.expand(np.array([1, 1]), np.ones((1, 3), np.int64))
