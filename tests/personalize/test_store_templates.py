"""Record format 3: the owner's templates, encrypted in the record; format-2 records migrated."""

from __future__ import annotations

import secrets
import struct
from pathlib import Path

import numpy as np
import pytest

from devices.print_minutiae import PrintSet
from personalize import RecordStore, StoreError, UserRecord, migrate_store
from personalize.cli import main as cli_main
from personalize.store import FORMAT2_MAGIC, VERSION, decode_record, encode_record


def _store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "store", keys=tmp_path / "keys")


def _templates(k: int = 5, d: int = 16, seed: int = 0) -> np.ndarray:
    t = np.random.default_rng(seed).standard_normal((k, d)).astype(np.float32)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def _record(user: str = "alice", templates: np.ndarray | None = None) -> UserRecord:
    weights = {"head__kernel": np.full((16, 4), 0.5, np.float32)}
    return UserRecord(user, 0.3, "head", weights, {"samples": 5}, templates)


def test_templates_round_trip_encrypted(tmp_path: Path) -> None:
    store = _store(tmp_path)
    templates = _templates()
    path = store.save(_record(templates=templates))
    back = store.load("alice")
    assert back.templates is not None
    np.testing.assert_array_equal(back.templates, templates)
    assert set(back.weights) == {"head__kernel"}  # the templates are not a weight
    raw = path.read_bytes()
    assert raw.startswith(b"PFUSER3\n")
    assert templates.tobytes()[:16] not in raw and templates[2].tobytes()[:8] not in raw


def test_a_record_without_templates_reads_as_none(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.save(_record())
    assert store.load("alice").templates is None


@pytest.mark.parametrize("count", [3, -1, 1000, "5", True])
def test_a_header_that_disagrees_with_the_templates_is_refused(count) -> None:
    plain = encode_record(_record(templates=_templates(k=5)))
    (size,) = struct.unpack("<I", plain[:4])
    header = plain[4 : 4 + size].replace(b'"templates": 5', b'"templates": ' + repr(count).encode())
    header = header.replace(b"True", b"true").replace(b"'", b'"')
    with pytest.raises(StoreError, match="not a user record"):
        decode_record(struct.pack("<I", len(header)) + header + plain[4 + size :])


def test_templates_is_a_reserved_weight_name() -> None:
    record = _record()._replace(weights={"~templates": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValueError, match="reserved"):
        encode_record(record)


def _as_format_2(store: RecordStore, user: str, record: UserRecord, version: int) -> Path:
    """Writes ``record`` as pocketfit's format-2 writer did (its magic in the file and AAD)."""
    path = store.path(user)
    stem = path.name[: -len(".rec")]
    nonce = secrets.token_bytes(12)
    aad = FORMAT2_MAGIC + stem.encode() + VERSION.pack(version)
    sealed = store._aead.encrypt(nonce, encode_record(record), aad)
    path.write_bytes(FORMAT2_MAGIC + VERSION.pack(version) + nonce + sealed)
    store.keystore.advance(f"record:{stem}", version)
    return path


def test_format_2_records_are_refused_then_migrated(tmp_path: Path, capsys) -> None:
    store = _store(tmp_path)
    for user in ("alice", "bob"):
        _as_format_2(store, user, _record(user), 3)
    with pytest.raises(StoreError, match=r"2 user record\(s\) of format 2.*personalize migrate"):
        _store(tmp_path)
    args = ["migrate", "--store", str(tmp_path / "store"), "--keys", str(tmp_path / "keys")]
    assert cli_main(args) == 0
    assert "migrated 2 record(s)" in capsys.readouterr().out
    migrated = _store(tmp_path)
    assert migrated.users() == ["alice", "bob"]
    back = migrated.load("alice")
    assert back.templates is None and back.threshold == 0.3
    assert VERSION.unpack_from(migrated.path("alice").read_bytes(), 8)[0] == 4
    assert migrate_store(tmp_path / "store", keys=tmp_path / "keys") == 0  # a second run
    assert cli_main(args) == 0
    assert "is current: nothing to do" in capsys.readouterr().out


def test_a_format_2_record_older_than_its_counter_is_not_migrated(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = _as_format_2(store, "alice", _record(), 2)
    store.keystore.advance(f"record:{path.stem}", 5)  # a newer record existed: this is a backup
    with pytest.raises(StoreError, match="restored from a backup"):
        migrate_store(tmp_path / "store", keys=tmp_path / "keys")


def test_a_tampered_format_2_record_is_not_migrated(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = _as_format_2(store, "alice", _record(), 1)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="fails authentication"):
        migrate_store(tmp_path / "store", keys=tmp_path / "keys")


def _prints(k: int = 3) -> PrintSet:
    rng = np.random.default_rng(4)
    minutiae = tuple(
        rng.uniform(0, 80, (int(rng.integers(0, 20)), 4)).astype(np.float32) for _ in range(k)
    )
    return PrintSet(minutiae, tuple(rng.random((80, 80)) < 0.5 for _ in range(k)))


def test_an_owners_prints_round_trip_encrypted(tmp_path: Path) -> None:
    store = _store(tmp_path)
    prints = _prints()
    path = store.save(_record(templates=_templates())._replace(prints=prints))
    back = store.load("alice")
    assert back.prints is not None and back.prints.size == 3
    for a, b in zip(
        prints.minutiae + prints.masks, back.prints.minutiae + back.prints.masks, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert set(back.weights) == {"head__kernel"}  # the prints are not weights
    assert prints.minutiae[0].tobytes()[:16] not in path.read_bytes()
    assert _store(tmp_path).load("alice").prints is not None
    store.save(_record())
    assert store.load("alice").prints is None


def test_a_header_that_disagrees_with_the_prints_is_refused() -> None:
    plain = encode_record(_record()._replace(prints=_prints(3)))
    (size,) = struct.unpack("<I", plain[:4])
    for count in (b"2", b"-1", b'"3"'):
        header = plain[4 : 4 + size].replace(b'"prints": 3', b'"prints": ' + count)
        with pytest.raises(StoreError, match="not a user record"):
            decode_record(struct.pack("<I", len(header)) + header + plain[4 + size :])
    with pytest.raises(ValueError, match="reserved"):
        encode_record(_record()._replace(weights={"~prints_masks": np.zeros(2)}))
