"""Continual personalization on the toy artifact: what updates, what never does, the daily cap,
the bounded buffer, encryption and rollback of the buffer file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personalize import Device, StoreError
from personalize.continual import (
    DAY_S,
    Buffer,
    BufferStore,
    Continual,
    ContinualConfig,
    commit_update,
    current,
    decode_buffer,
    encode_buffer,
)

FAR = 1e-2
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _device(art: dict[str, Any], store: Path, scope: str = "head", **kw: Any) -> Device:
    config = ContinualConfig(**kw)
    dev = Device(art["dir"], store, trusted_key=art["pub"], continual=config)
    clock = Clock()
    dev.continual = Continual(dev, config, clock=clock)
    dev.enroll("owner", art["owner"], scope=scope, target_far=FAR, measure_memory=False)
    return dev


def _files(dev: Device) -> dict[str, bytes]:
    assert dev.continual is not None
    return {
        "record": dev.store.path("owner").read_bytes(),
        "buffer": dev.continual.buffers.path("owner").read_bytes(),
    }


def _buffer(dev: Device) -> Buffer:
    assert dev.continual is not None
    buffer = current(dev.continual.buffers, dev.store.load("owner"))
    assert buffer is not None
    return buffer


@pytest.mark.parametrize("scope", ["head", "last_block"])
def test_an_accepted_capture_above_the_margin_updates_the_record(
    toy_artifact, tmp_path: Path, scope: str
) -> None:
    dev = _device(toy_artifact, tmp_path, scope, margin=0.0, max_updates_per_day=5)
    before = dev.store.load("owner")
    decision = dev.verify("owner", toy_artifact["owner_test"][0])
    assert decision.accept
    assert dev.continual is not None and dev.continual.last.outcome == "updated"
    after = dev.store.load("owner")
    assert after.scope == scope and set(after.weights) == set(before.weights)
    changed = [not np.array_equal(after.weights[k], before.weights[k]) for k in before.weights]
    assert any(changed)
    assert after.meta["continual"]["updates"] == 1 and after.meta["continual"]["positives"] == 6
    assert after.threshold == dev.continual.last.threshold
    buffer = _buffer(dev)
    assert buffer.meta["updates"] == 1 and buffer.meta["pending"] == 0
    assert len(buffer.anchors["embeddings"]) == 5 and len(buffer.recent["embeddings"]) == 1
    if scope == "last_block":  # the re-training's input is the front's features
        assert buffer.recent["features"].shape[1:] == buffer.anchors["features"].shape[1:]
    # the owner is still accepted and impostors still rejected after the update
    frr = np.mean(
        [not dev.verify("owner", x, adapt=False).accept for x in toy_artifact["owner_test"]]
    )
    far = np.mean([dev.verify("owner", x, adapt=False).accept for x in toy_artifact["impostors"]])
    assert frr <= 0.1 and far <= 0.1, (frr, far)


def test_rejected_attempts_never_change_anything(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path, margin=0.0, max_updates_per_day=100)
    files = _files(dev)
    rejected = 0
    for image in toy_artifact["impostors"][:60]:
        decision = dev.verify("owner", image)
        assert dev.continual is not None
        if not decision.accept:
            rejected += 1
            assert dev.continual.last.outcome == "rejected"
            assert _files(dev) == files  # byte for byte: nothing was written
        else:
            files = _files(dev)
    assert rejected >= 50


def test_below_the_margin_or_adapt_off_nothing_is_written(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path, margin=1.9)
    files = _files(dev)
    assert dev.verify("owner", toy_artifact["owner_test"][0]).accept
    assert dev.continual is not None and dev.continual.last.outcome == "below_margin"
    dev.continual.config = ContinualConfig(margin=0.0)
    dev.verify("owner", toy_artifact["owner_test"][1], adapt=False)
    assert _files(dev) == files


def test_updates_per_day_are_capped(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path, margin=0.0, max_updates_per_day=2)
    assert dev.continual is not None
    clock = dev.continual.clock
    assert isinstance(clock, Clock)
    seen = []
    for i, image in enumerate(toy_artifact["owner_test"][:5]):
        clock.now = START + 60.0 * i  # all on one day
        assert dev.verify("owner", image).accept
        seen.append(dev.continual.last.outcome)
    assert seen == ["updated", "updated", "capped", "capped", "capped"]
    assert (
        _buffer(dev).meta["pending"] == 3
        and dev.store.load("owner").meta["continual"]["updates"] == 2
    )
    clock.now = START + DAY_S  # the next day: the waiting captures join the next update
    assert dev.verify("owner", toy_artifact["owner_test"][5]).accept
    assert dev.continual.last.outcome == "updated"
    record = dev.store.load("owner")
    assert record.meta["continual"]["updates"] == 3 and record.meta["continual"]["positives"] == 11


def test_the_buffer_is_bounded_oldest_first(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path, margin=0.0, buffer_size=3, max_updates_per_day=0)
    assert dev.continual is not None
    clock = dev.continual.clock
    assert isinstance(clock, Clock)
    images = toy_artifact["owner_test"][:6]
    embedded = dev.embed(images)["embeddings"]
    for i, image in enumerate(images):
        clock.now = START + i
        assert dev.verify("owner", image).accept
    buffer = _buffer(dev)
    assert buffer.meta["added"] == [START + 3, START + 4, START + 5]
    np.testing.assert_allclose(buffer.recent["embeddings"], embedded[3:], rtol=1e-6, atol=1e-6)
    assert len(buffer.anchors["embeddings"]) == 5  # anchors are never evicted


def test_the_buffer_is_encrypted_and_refuses_tampering_and_rollback(
    toy_artifact, tmp_path: Path
) -> None:
    dev = _device(toy_artifact, tmp_path, margin=0.0, max_updates_per_day=0)
    assert dev.continual is not None
    path = dev.continual.buffers.path("owner")
    assert path.stat().st_mode & 0o077 == 0
    anchors = _buffer(dev).anchors["embeddings"]
    data = path.read_bytes()
    assert anchors[0].tobytes()[:16] not in data and b"owner" not in data
    dev.verify("owner", toy_artifact["owner_test"][0])  # buffered: a newer version
    newer = path.read_bytes()
    path.write_bytes(data)
    with pytest.raises(StoreError, match="rollback"):
        dev.continual.buffers.load("owner")
    torn = bytearray(newer)
    torn[len(torn) // 2] ^= 1
    path.write_bytes(bytes(torn))
    with pytest.raises(StoreError, match="fails authentication"):
        dev.continual.buffers.load("owner")


def test_remove_and_wipe_delete_the_buffer(toy_artifact, tmp_path: Path) -> None:
    dev = _device(toy_artifact, tmp_path)
    assert dev.continual is not None
    path = dev.continual.buffers.path("owner")
    assert path.is_file()
    dev.remove("owner")
    assert not path.exists()
    dev.enroll("owner", toy_artifact["owner"], scope="head", target_far=FAR, measure_memory=False)
    assert path.is_file() and dev.wipe() == 1 and not path.exists()


def test_a_record_written_without_its_buffer_rolls_forward(toy_artifact, tmp_path: Path) -> None:
    """A kill between the record and the buffer: the update counts when the buffer is read; a
    new enrollment's record makes an old buffer stale."""
    dev = _device(toy_artifact, tmp_path, margin=0.0)
    assert dev.continual is not None
    buffers = dev.continual.buffers
    record, buffer = dev.store.load("owner"), _buffer(dev)
    meta = {**record.meta, "continual": {"updates": 1, "day": buffer.meta["day"]}}
    dev.store.save(record._replace(meta=meta))  # the record of an update, the buffer not yet
    rolled = current(buffers, dev.store.load("owner"))
    assert rolled is not None and rolled.meta["updates"] == 1 and rolled.meta["updates_today"] == 1
    dev.store.save(record)  # enrolled again (no continual count), buffer not rewritten
    assert current(buffers, dev.store.load("owner")) is None
    commit_update(buffers, record._replace(meta=meta), rolled)
    assert current(buffers, dev.store.load("owner")) is not None


def test_a_plaintext_that_is_not_a_buffer_is_refused() -> None:
    rng = np.random.default_rng(0)
    meta = {
        "record_version": 1,
        "updates": 0,
        "day": 1,
        "updates_today": 0,
        "pending": 1,
        "scores": [0.9],
        "added": [1.0],
    }
    good = Buffer("u", {"embeddings": rng.random((2, 4))}, {"embeddings": rng.random((1, 4))}, meta)
    back = decode_buffer(encode_buffer(good))
    assert back.meta == meta
    np.testing.assert_array_equal(back.recent["embeddings"], np.float32(good.recent["embeddings"]))
    for bad in (
        good._replace(meta={**meta, "scores": []}),
        good._replace(meta={**meta, "updates": -1}),
        good._replace(recent={"embeddings": rng.random((1, 5))}),
        good._replace(anchors={"features": rng.random((2, 4))}, recent={}),
    ):
        with pytest.raises(StoreError, match="not a continual buffer"):
            decode_buffer(encode_buffer(bad))
    with pytest.raises(StoreError, match="not a continual buffer"):
        decode_buffer(b"\x05\x00\x00\x00{}")


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="buffer_size"):
        ContinualConfig(buffer_size=0)
    with pytest.raises(ValueError, match="margin"):
        ContinualConfig(margin=-0.1)


def test_buffer_store_without_buffer(toy_artifact, tmp_path: Path) -> None:
    dev = Device(toy_artifact["dir"], tmp_path, trusted_key=toy_artifact["pub"])
    dev.enroll("owner", toy_artifact["owner"], scope="head", target_far=FAR, measure_memory=False)
    assert dev.continual is None
    assert BufferStore(dev.store).load("owner") is None  # enrolled without continual: no buffer
