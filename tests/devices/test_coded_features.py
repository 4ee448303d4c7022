"""The background features' coded file: exact round trips, and every malformed file refused."""

from __future__ import annotations

import lzma

import numpy as np
import pytest

from devices import coded_features, npy

STEP = np.float32(0.0234375)  # an int8 activation's scale


def _grid(shape: tuple[int, ...], levels: int = 256, seed: int = 0) -> np.ndarray:
    """Values of an int8 activation after ReLU: half zeros, the rest on ``levels`` steps."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, levels, shape) * (rng.random(shape) < 0.5)
    return (q * STEP).astype(np.float32)


@pytest.mark.parametrize("shape", [(7, 3), (20, 4, 3, 8), (1, 2, 2)])
def test_int8_features_round_trip_exactly_on_one_byte_codes(shape) -> None:
    values = _grid(shape)
    data = coded_features.encode(values)
    out = coded_features.decode(data)
    assert out.dtype == np.float16 and out.shape == shape
    np.testing.assert_array_equal(out, values.astype(np.float16))
    codebook, end = npy.read(lzma.decompress(data))
    assert npy.read(lzma.decompress(data), end)[0].dtype == np.uint8
    assert codebook.dtype == np.float16


def test_any_float16_values_round_trip_on_two_byte_codes() -> None:
    values = np.random.default_rng(1).standard_normal((50, 40)).astype(np.float32)
    out = coded_features.decode(coded_features.encode(values))
    np.testing.assert_array_equal(out, values.astype(np.float16))
    body = lzma.decompress(coded_features.encode(values))
    assert npy.read(body, npy.read(body)[1])[0].dtype == np.uint16


def test_features_compress_well_below_plain_float16() -> None:
    values = _grid((200, 4, 3, 64), levels=64)
    assert len(coded_features.encode(values)) < 0.5 * values.astype(np.float16).nbytes


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.zeros(5, np.float32), "expected \\(people, \\*features\\)"),
        (np.zeros((0, 3), np.float32), "expected \\(people, \\*features\\)"),
        (np.array([[1.0, np.inf]], np.float32), "inf or NaN"),
    ],
)
def test_encode_refuses_what_it_cannot_store(values, match) -> None:
    with pytest.raises(ValueError, match=match):
        coded_features.encode(values)


def _xz(*parts: bytes) -> bytes:
    return lzma.compress(b"".join(parts), format=lzma.FORMAT_XZ)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"not xz at all", "not an XZ stream"),
        (_xz(b"x" * 10)[:-3], "not an XZ stream|not exactly one XZ stream"),
        (_xz(b"x") + b"tail", "not exactly one XZ stream"),
        (
            _xz(npy.to_bytes(np.zeros(2, np.float16)), npy.to_bytes(np.zeros((2, 2), np.uint8)))
            + _xz(b""),
            "not exactly one XZ stream",
        ),
        (
            _xz(npy.to_bytes(np.zeros(2, np.float32)), npy.to_bytes(np.zeros((2, 2), np.uint8))),
            "codebook",
        ),
        (
            _xz(npy.to_bytes(np.zeros(2, np.float16)), npy.to_bytes(np.zeros((2, 2), np.int8))),
            "codes of",
        ),
        (
            _xz(npy.to_bytes(np.zeros(2, np.float16)), npy.to_bytes(np.zeros(3, np.uint8))),
            "codes of",
        ),
        (  # no people
            _xz(npy.to_bytes(np.zeros(2, np.float16)), npy.to_bytes(np.zeros((3, 0), np.uint8))),
            "codes of",
        ),
        (
            _xz(npy.to_bytes(np.zeros(2, np.float16)), npy.to_bytes(np.full((2, 2), 2, np.uint8))),
            "past the codebook",
        ),
        (
            _xz(
                npy.to_bytes(np.zeros(2, np.float16)),
                npy.to_bytes(np.zeros((2, 2), np.uint8)),
                b"!",
            ),
            "bytes after the codes",
        ),
        (
            _xz(
                npy.to_bytes(np.zeros(2, np.float16)), npy.to_bytes(np.zeros((4, 4), np.uint8))[:-5]
            ),
            "need more",
        ),
        (_xz(npy.to_bytes(np.zeros(2, np.float16))), "npy|magic|need more|EOF"),
    ],
)
def test_decode_refuses_malformed_files(data: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        coded_features.decode(data)


def test_decode_bounds_what_a_small_file_inflates_to(monkeypatch) -> None:
    monkeypatch.setattr(coded_features, "MAX_INFLATED", 1000)
    bomb = _xz(npy.to_bytes(np.zeros(2, np.float16)), npy.to_bytes(np.zeros((40, 40), np.uint8)))
    assert len(bomb) < 300
    with pytest.raises(ValueError, match="more than 1000 bytes"):
        coded_features.decode(bomb)
