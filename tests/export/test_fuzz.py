"""The .pfb reader under fuzzing: every input loads or raises BundleError, never anything else."""

from __future__ import annotations

import contextlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

import export
from devices.bundle import container, huffman
from devices.fuzz import fuzz
from export.bundle import BundleError
from export.bundle.fuzz import fix_checksums, resign, seed_bundles

KEY = ed25519.Ed25519PrivateKey.generate()
SEEDS = seed_bundles(KEY)


@pytest.mark.parametrize("name", ["pfb", "pfb_decode", "pfb_signature", "download"])
def test_a_slice_of_the_fuzz_bench_finds_nothing(name: str) -> None:
    report = fuzz("export.bundle.fuzz:targets", name, inputs=400, seed=1)
    assert report.unexpected == 0, report.examples
    assert report.refused > 0


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.integers(0, len(SEEDS) - 1), st.integers(0, 2000))
def test_any_bytes_spliced_into_a_signed_bundle_load_or_are_refused(
    junk: bytes, which: int, at: int
) -> None:
    seed = SEEDS[which]
    data = resign(fix_checksums(seed[:at] + junk + seed[at + len(junk) :]), KEY)
    with contextlib.suppress(BundleError):
        export.read_bundle(data, public_key=KEY.public_key())


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 4096), st.integers(0, 1 << 20))
def test_any_huffman_stream_decodes_or_is_refused(data: bytes, limit: int, count: int) -> None:
    with contextlib.suppress(BundleError):
        huffman.decode(data, limit=limit, max_count=count)


def test_a_declared_shape_beyond_the_limit_is_refused_before_decoding() -> None:
    """A few coded bytes may declare any shape; the reader bounds it (was a 574 GiB allocation)."""
    parsed = container.read(SEEDS[0], KEY.public_key())
    record = parsed.records[0]
    huge = record._replace(shape=(1 << 16, 1 << 16))
    data = container.write(parsed.model, parsed.options, [huge], KEY)
    with pytest.raises(BundleError, match="decompression bomb"):
        export.read_bundle(data, public_key=KEY.public_key())


def test_a_constant_stream_stating_billions_of_symbols_is_refused() -> None:
    """Mode 1 streams state their count; a count above what fits is refused (took 32 s)."""
    stream = struct.pack("<IHBH", 4_000_000_000, 16, huffman.MODE_CONSTANT, 3)
    with pytest.raises(BundleError, match="symbols stated"):
        huffman.decode(stream, limit=16, max_count=1000)
