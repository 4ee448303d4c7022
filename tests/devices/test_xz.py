"""XZ streams sized to their data: as small as preset 9's, inflated in little memory."""

from __future__ import annotations

import lzma
import tracemalloc

import numpy as np
import pytest

from devices import xz


def _data(n: int) -> bytes:
    rng = np.random.default_rng(0)
    return (rng.integers(0, 8, n) * (rng.random(n) < 0.5)).astype(np.uint8).tobytes()


@pytest.mark.parametrize("n", [0, 1, 5000, 300_000])
def test_round_trip_as_small_as_preset_9(n: int) -> None:
    data = _data(n)
    packed = xz.compress(data)
    assert xz.decompress(packed, n) == data
    assert len(packed) <= len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def _inflating_peak(packed: bytes, size: int) -> int:
    tracemalloc.start()
    try:
        xz.decompress(packed, size)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_inflating_allocates_about_the_data_not_a_64_mib_dictionary() -> None:
    data = _data(300_000)
    assert _inflating_peak(xz.compress(data), len(data)) < 4 * len(data)
    # the measure sees the decoder's allocations: preset 6's stream names an 8 MiB dictionary
    assert _inflating_peak(lzma.compress(data), len(data)) > 4 << 20


@pytest.mark.parametrize(
    ("packed", "limit", "match"),
    [
        (b"plain text, not xz", 10, "not an XZ stream"),
        (b"short", 10, "not exactly one"),
        (xz.compress(b"abc" * 10)[:-4], 100, "not an XZ stream|not exactly one"),
        (xz.compress(b"abc") + b"x", 100, "not exactly one"),
        (xz.compress(b"a" * 1000), 999, "more than 999 bytes"),
    ],
)
def test_decompress_refuses(packed: bytes, limit: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        xz.decompress(packed, limit)
