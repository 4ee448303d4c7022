"""The .pfb bundle: exact decoding, size accounting, refusal of anything truncated or tampered."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import devices.bundle.container as container
import export
from export.bundle import BundleError, Coded, SignatureError, summary


@pytest.fixture(scope="module")
def key():
    return ed25519.Ed25519PrivateKey.generate()


def tensors(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    book = np.concatenate([[0.0], np.sort(rng.standard_normal(15))]).astype(np.float32)
    codes = rng.integers(1, 16, (40, 30)) * (rng.random((40, 30)) < 0.1)
    conv = rng.integers(1, 8, (3, 3, 2, 4)) * (rng.random((3, 3, 2, 4)) < 0.6)
    return {
        "fc1/kernel": Coded(book, codes),
        "fc1/bias": rng.standard_normal(30).astype(np.float32),
        "conv/kernel": Coded(book[:8], conv),
        "conv/bias": rng.standard_normal(4).astype(np.float32),
    }


def resigned(data: bytes, key) -> bytes:
    """``data`` with its trailer replaced by ``key``'s signature of everything before it."""
    body = data[: -container.TRAILER_BYTES]
    public = key.public_key()
    return body + export.bundle.key_id(public) + export.bundle.signing.sign(key, body)


@pytest.fixture(scope="module")
def data(key) -> bytes:
    return export.build_bundle(
        tensors(), model="lenet300", options={"hidden": [30]}, private_key=key
    )


def test_decoding_is_exact(data: bytes, key) -> None:
    bundle = export.read_bundle(data, public_key=key.public_key())
    want = tensors()
    assert bundle.model == "lenet300" and bundle.options == {"hidden": [30]}
    np.testing.assert_array_equal(
        bundle.params["fc1"]["kernel"], want["fc1/kernel"].codebook[want["fc1/kernel"].codes]
    )
    np.testing.assert_array_equal(
        bundle.params["conv"]["kernel"], want["conv/kernel"].codebook[want["conv/kernel"].codes]
    )
    np.testing.assert_array_equal(bundle.params["fc1"]["bias"], want["fc1/bias"])
    assert [t.name for t in bundle.tensors] == list(want)


@pytest.mark.parametrize("bits", [1, 4, 9])
@pytest.mark.parametrize("order", ["row", "last-axis-first"])
@pytest.mark.parametrize("dedup", [0, 1, 2, 3])
def test_every_layout_decodes_exactly(key, bits: int, order: str, dedup: int) -> None:
    t = tensors(1)
    codes = t["fc1/kernel"].codes
    codes[[3, 9, 17]] = 0  # zero rows, a zero column and duplicates to deduplicate
    codes[:, 5] = 0
    codes[20] = codes[21]
    codes[:, 8] = codes[:, 2]
    data = export.build_bundle(
        t,
        model="m",
        options={},
        private_key=key,
        index_bits=bits,
        order=order,
        dedup=dedup,
        codebook_dtype="float16",
        raw_dtype="float16",
    )
    bundle = export.read_bundle(data, public_key=key.public_key())
    coded = t["fc1/kernel"]
    want = coded.codebook.astype(np.float16).astype(np.float32)[coded.codes]
    np.testing.assert_array_equal(bundle.params["fc1"]["kernel"], want)
    info = {i.name: i for i in bundle.tensors}["fc1/kernel"]
    assert info.index_bits == bits and info.order == order and info.dtype == "float16"
    distinct_rows = np.unique(codes[np.any(codes != 0, 1)], axis=0).shape[0]
    assert info.rows == (distinct_rows if dedup & 1 else 40, 40)
    assert info.cols[1] == 30 and (info.cols[0] < 30 if dedup & 2 else info.cols[0] == 30)


def test_the_papers_widths_store_the_same_weights(data: bytes, key) -> None:
    paper = export.build_bundle(
        tensors(),
        model="lenet300",
        options={"hidden": [30]},
        private_key=key,
        index_bits="paper",
        dedup=0,
    )
    public = key.public_key()
    searched, fixed = (export.read_bundle(d, public_key=public) for d in (data, paper))
    widths = {t.name: t.index_bits for t in fixed.tensors if t.kind == "coded"}
    assert widths == {"fc1/kernel": 5, "conv/kernel": 4}
    assert all(t.rows[0] == t.rows[1] for t in fixed.tensors if t.kind == "coded")
    for layer, leaves in searched.params.items():
        for leaf, value in leaves.items():
            np.testing.assert_array_equal(fixed.params[layer][leaf], value)
    assert len(paper) >= len(data)  # the searched widths include the paper's


def test_sizes_add_up_to_the_file(data: bytes, key) -> None:
    bundle = export.read_bundle(data, public_key=key.public_key())
    info = summary(bundle)
    assert info["bytes"] == len(data) == bundle.nbytes
    assert sum(r["bytes"] for r in info["layers"]) + info["overhead_bytes"] == len(data)
    params = 40 * 30 + 30 + 3 * 3 * 2 * 4 + 4
    assert info["reference_bytes"] == 4 * params and info["ratio"] == pytest.approx(
        4 * params / len(data)
    )
    stages = info["stages"]
    assert stages["huffman"]["bytes"] == len(data)
    assert stages["pruned"]["bytes"] > stages["quantized"]["bytes"]
    fc1 = {r["layer"]: r for r in info["layers"]}["fc1"]
    assert fc1["weights"] == 1200 and fc1["weight_bits"] == 4
    assert fc1["kept_pct"] == pytest.approx(
        100 * np.count_nonzero(tensors()["fc1/kernel"].codes) / 1200
    )
    assert "fc1" in export.render(info)


def test_every_truncation_is_refused(data: bytes, key) -> None:
    for cut in range(len(data)):
        with pytest.raises(BundleError):
            export.read_bundle(data[:cut], public_key=key.public_key())
    with pytest.raises(BundleError, match="truncated"):
        export.read_bundle(data[:-10], public_key=key.public_key())
    with pytest.raises(BundleError, match="trailing"):
        export.read_bundle(data + b"\x00", public_key=key.public_key())


def test_every_bit_flip_is_refused(data: bytes, key) -> None:
    rng = np.random.default_rng(0)
    public = key.public_key()
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(BundleError):
            export.read_bundle(bytes(flipped), public_key=public)


def test_a_section_flip_names_the_section(data: bytes, key) -> None:
    flipped = bytearray(data)
    flipped[len(data) - container.TRAILER_BYTES - 3] ^= 0x10  # inside the last section
    with pytest.raises(SignatureError, match="modified after signing"):
        export.read_bundle(bytes(flipped), public_key=key.public_key())
    # Signed as it is (a signer's bug), the checksums still name the section.
    with pytest.raises(BundleError, match="conv/bias fails its CRC-32"):
        export.read_bundle(resigned(bytes(flipped), key), public_key=key.public_key())


def test_the_signature_is_checked_before_anything_is_parsed(data: bytes, key) -> None:
    """A malformed header signed by another key is refused for its signature, not its header."""
    other = ed25519.Ed25519PrivateKey.generate()
    for pos in (4, 6, 12, container.PREAMBLE.size, container.PREAMBLE.size + 6):  # not the length
        broken = bytearray(data)
        broken[pos] ^= 0xFF
        forged = resigned(bytes(broken), other)
        with pytest.raises(SignatureError, match="signed by another key"):
            export.read_bundle(forged, public_key=key.public_key())
    calls = []
    real = container._parse
    try:
        container._parse = lambda *a: calls.append(a) or real(*a)  # type: ignore[assignment]
        with pytest.raises(SignatureError):
            export.read_bundle(resigned(data, other), public_key=key.public_key())
        assert calls == []
        export.read_bundle(data, public_key=key.public_key())
        assert len(calls) == 1
    finally:
        container._parse = real


def test_another_key_is_refused(data: bytes) -> None:
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(SignatureError, match="signed by another key"):
        export.read_bundle(data, public_key=other)


def test_tampering_with_fixed_checksums_is_caught_by_the_signature(data: bytes, key) -> None:
    """An attacker who recomputes every CRC still cannot forge the signature."""
    parsed = container.read(data, key.public_key())
    records = list(parsed.records)
    r = records[1]
    bias = np.frombuffer(r.sections[0], "<f4").copy()
    bias[0] += 1.0
    records[1] = r._replace(sections=(bias.tobytes(),))
    forged = bytearray(container.write(parsed.model, parsed.options, records, key))
    forged[-container.TRAILER_BYTES :] = data[-container.TRAILER_BYTES :]  # keep the old signature
    with pytest.raises(SignatureError, match="modified after signing"):
        export.read_bundle(bytes(forged), public_key=key.public_key())
    assert zlib.crc32(bias.tobytes()) != zlib.crc32(r.sections[0])


def test_not_a_bundle_and_future_versions_are_refused(data: bytes, key) -> None:
    with pytest.raises(BundleError, match="not a pocketfit bundle"):
        export.read_bundle(b"hello world", public_key=key.public_key())
    newer = resigned(data[:4] + struct.pack("<H", 99) + data[6:], key)
    with pytest.raises(BundleError, match="version 99"):
        export.read_bundle(newer, public_key=key.public_key())


def test_files_need_a_named_key_never_the_one_beside(tmp_path: Path, data: bytes, key) -> None:
    path = export.write_bundle(tmp_path / "m.pfb", data)
    export.bundle.write_public_key(key.public_key(), tmp_path / "signing.pub")
    with pytest.raises(BundleError, match="pass --key"):
        export.read_bundle(path)
    assert export.read_bundle(path, public_key=tmp_path / "signing.pub").nbytes == len(data)
    with pytest.raises(BundleError, match="not found"):
        export.read_bundle(tmp_path / "missing.pfb", public_key=key.public_key())


def test_keys_round_trip_and_private_keys_are_never_overwritten(tmp_path: Path) -> None:
    private = tmp_path / "secret" / "k.key"
    key = export.generate_key(private, tmp_path / "k.pub")
    assert private.stat().st_mode & 0o777 == 0o600
    loaded = export.load_private_key(private)
    assert export.bundle.key_id(loaded.public_key()) == export.bundle.key_id(key.public_key())
    assert export.bundle.key_id(export.load_public_key(tmp_path / "k.pub")) == export.bundle.key_id(
        key.public_key()
    )
    with pytest.raises(FileExistsError):
        export.generate_key(private, tmp_path / "k2.pub")
    with pytest.raises(BundleError, match="not a readable PEM"):
        (tmp_path / "bad.pub").write_text("nope")
        export.load_public_key(tmp_path / "bad.pub")
    assert sorted(p.name for p in private.parent.iterdir()) == ["k.key"]  # no temp files left


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o700])
def test_a_private_key_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    private = tmp_path / "k.key"
    export.generate_key(private, tmp_path / "k.pub")
    private.chmod(mode)
    if mode & 0o077:
        with pytest.raises(BundleError, match=f"mode {mode:04o}.*chmod 600"):
            export.load_private_key(private)
    else:
        export.load_private_key(private)


def test_codebooks_must_reserve_zero(key) -> None:
    with pytest.raises(ValueError, match="codebook\\[0\\] must be 0"):
        export.build_bundle(
            {"k": Coded(np.array([1.0, 2.0]), np.array([0, 1]))},
            model="m",
            options={},
            private_key=key,
        )


def test_a_new_signing_key_never_strands_artifacts_the_old_one_signed(tmp_path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from export.bundle import BundleError, load_public_key, replace_public_key

    old, new = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "signing.pub"
    replace_public_key(old.public_key(), path, signed=["artifacts/face"])  # nothing there yet
    with pytest.raises(BundleError, match="artifacts/face signed by it would stay"):
        replace_public_key(new.public_key(), path, signed=["artifacts/face"])
    assert load_public_key(path) == old.public_key()  # untouched
    replace_public_key(old.public_key(), path, signed=["artifacts/face"])  # the same key: fine
    replace_public_key(new.public_key(), path)  # everything it signed is rebuilt
    assert load_public_key(path) == new.public_key()
