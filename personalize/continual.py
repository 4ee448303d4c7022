"""Continual personalization: the head keeps learning its owner after enrollment (numpy + LiteRT).

As a phone's face unlock adapts to a beard or new glasses: a verified capture that the user's
head accepts with room to spare (``score >= threshold + margin``) joins a small per-user buffer,
and the user's weights are trained again on the device from the enrollment captures plus the
buffer, through the same :meth:`personalize.Device.fit_embedded` enrollment runs (imprint, SGD
with weight decay in the record's scope, a new threshold for the record's target FAR from the
artifact's held-out background impostors).

Guards, each tested:
  * a rejected attempt, or one accepted below the margin, never changes anything on disk;
  * at most ``max_updates_per_day`` re-trainings per UTC day (the clock is injectable); the count
    lives in the encrypted buffer, whose rollback counter forbids restoring an older copy to
    reset it;
  * the buffer is bounded: ``buffer_size`` recent captures, the oldest evicted first; the
    enrollment captures (anchors) are never evicted, so every update still learns from them;
  * the threshold is set again at every update from background impostors, at the enrollment's
    target FAR: updates move the user's head, never the false accept rate it is calibrated for.

At rest, a buffer is ``MAGIC | 8-byte version | nonce | AES-256-GCM`` under its own key derived
from the store key (HKDF, :func:`personalize.store.subkey`), with the user's hashed file id and
the version as associated data; it is written atomically (:func:`devices.files.atomic_write`) to
``<store>/continual/<file id>.buf`` (0600) and carries a rollback counter in the store's
:class:`~personalize.keystore.KeyStore`, as records do. It holds the ``embed`` outputs of
captures (embeddings and front features), never images, and is biometric data like the record.

An update writes the record first and the buffer second. A buffer knows the record version it
follows; a record one continual update newer (``meta["continual"]["updates"]``) than its buffer
means the process died between the two writes, and the buffer is rolled forward when read (the
update counted, its captures consumed). A record newer for another reason (enrolled again) makes
the old buffer stale: it is ignored until the next enrollment writes a new one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import secrets
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devices.contract import EMBEDDINGS
from devices.files import atomic_write, crash_point, fsync_dir
from personalize.errors import StoreError
from personalize.head import MatchConfig, SgdConfig, templates_of
from personalize.keystore import SECRET_MODE
from personalize.store import (
    _MALFORMED,
    NONCE,
    STORE_MODE,
    TAG,
    VERSION,
    RecordStore,
    UserRecord,
)
from personalize.store import subkey as store_subkey


class Verdict(Protocol):
    """What the learner reads of a verification (``personalize.Decision`` is one)."""

    @property
    def accept(self) -> bool: ...
    @property
    def score(self) -> float: ...
    @property
    def threshold(self) -> float: ...


class Learner(Protocol):
    """What the learner uses of its device (``personalize.Device`` is one; a Protocol, so this
    module does not import the device module that imports it)."""

    store: RecordStore
    match: MatchConfig

    def fit_embedded(
        self,
        embedded: dict[str, np.ndarray],
        scope: str,
        sgd: SgdConfig,
        target_far: float,
        *,
        seed: int = 0,
        prints: Any = None,
    ) -> Any: ...


MAGIC = b"PFCONT1\n"
FOLDER = "continual"
SUFFIX = ".buf"
DAY_S = 86_400


@dataclasses.dataclass(frozen=True)
class ContinualConfig:
    """When accepted captures teach the head, how many are kept and how often it re-trains.

    Attributes:
      margin: a capture joins the buffer only if its score is at least ``threshold + margin``.
      buffer_size: recent captures kept beside the enrollment captures (oldest evicted first).
      max_updates_per_day: re-trainings per UTC day; captures that arrive after the cap wait in
        the buffer for the next day's first update.
      update_every: new buffered captures between two re-trainings.
      sgd: the re-training's SGD (enrollment's defaults).

    Defaults: chosen on 10 LFW development people (never trained on, never reported) unlocking
    50 times under a synthetic side light, enrolled at FAR 1e-2 (at 1/50,000 none of their
    drifting captures is accepted), by ``python notebooks/bench/bench_enroll_continual.py --dev
    --margins M --people 10`` for M in 0.05, 0.1, 0.15 (buffer 10/20 x cap 1/3 each; about 25
    minutes per margin on two busy cores; ``notebooks/results/continual_dev_margin*.json``), then
    ``--pick``: among configs under which the nearest impostor is accepted no more often with
    updates than without, the lowest FRR with updates. Margin 0.1, buffer 10, cap 1: FRR 67.2%
    -> 56.4%, the impostor's FAR 0.1065 -> 0.102; margin 0.05 let it rise to 0.201, cap 3 to
    0.111. Reported with them (``make bench-enroll``, ``enrollment.json`` ``continual``; about 40
    minutes per set here): FRR over 50 drifting unlocks, ORL (unseen) 71.4% -> 70.7%, Extended
    Yale B (first 12 people, seen in training) 22.8% -> 7.7%.
    """

    margin: float = 0.1
    buffer_size: int = 10
    max_updates_per_day: int = 1
    update_every: int = 1
    sgd: SgdConfig = dataclasses.field(default_factory=SgdConfig)

    def __post_init__(self) -> None:
        if not (0.0 <= self.margin < 2.0):
            raise ValueError(f"margin must be in [0, 2), got {self.margin}.")
        if self.buffer_size < 1 or self.max_updates_per_day < 0 or self.update_every < 1:
            raise ValueError(
                f"need buffer_size >= 1, max_updates_per_day >= 0, update_every >= 1; got "
                f"{self.buffer_size}, {self.max_updates_per_day}, {self.update_every}."
            )


class Buffer(NamedTuple):
    """One user's continual state (see the module docstring).

    Attributes:
      user: the user name.
      anchors: the enrollment captures' ``embed`` outputs (name -> rows), never evicted.
      recent: accepted captures' ``embed`` outputs, oldest first.
      meta: ``record_version`` (the record this state follows), ``updates`` (re-trainings so
        far), ``day`` and ``updates_today`` (the daily cap's count), ``pending`` (captures added
        since the last update), ``scores`` and ``added`` (each recent capture's score and time).
    """

    user: str
    anchors: dict[str, np.ndarray]
    recent: dict[str, np.ndarray]
    meta: dict[str, Any]

    def positives(self) -> dict[str, np.ndarray]:
        """Anchors then recent captures, one array per ``embed`` output."""
        return {
            k: np.concatenate([v, self.recent[k]]) if k in self.recent else v
            for k, v in self.anchors.items()
        }


class Observation(NamedTuple):
    """What one verification did to the user's continual state."""

    outcome: str  # "rejected", "below_margin", "no_buffer", "buffered", "capped", "updated"
    buffered: int = 0  # recent captures held afterwards
    updates_today: int = 0
    threshold: float | None = None  # the new threshold after an update


# -- the file ------------------------------------------------------------------------------------
def encode_buffer(buffer: Buffer) -> bytes:
    """The plaintext of a buffer: 4-byte header length, JSON header, npz of the arrays."""
    header = {"user": buffer.user, "meta": buffer.meta}
    text = json.dumps(header, sort_keys=True).encode()
    arrays = {f"anchor.{k}": v for k, v in buffer.anchors.items()}
    arrays.update({f"recent.{k}": v for k, v in buffer.recent.items()})
    out = io.BytesIO()
    save: Any = np.savez  # the stubs reserve keyword names for options
    save(out, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    return struct.pack("<I", len(text)) + text + out.getvalue()


_META_INTS = ("record_version", "updates", "day", "updates_today", "pending")


def decode_buffer(plain: bytes) -> Buffer:
    """The buffer of a plaintext :func:`encode_buffer` wrote.

    Raises:
      StoreError: the plaintext is not a buffer (fields missing or of the wrong type, arrays
        whose rows disagree).
    """
    try:
        (size,) = struct.unpack("<I", plain[:4])
        header = json.loads(plain[4 : 4 + size])
        anchors: dict[str, np.ndarray] = {}
        recent: dict[str, np.ndarray] = {}
        with np.load(io.BytesIO(plain[4 + size :]), allow_pickle=False) as npz:
            for name in npz.files:
                part, _, key = name.partition(".")
                {"anchor": anchors, "recent": recent}[part][key] = np.asarray(npz[name], np.float32)
        user, meta = header["user"], header["meta"]
    except _MALFORMED as err:
        raise StoreError(f"not a continual buffer ({type(err).__name__}: {err})"[:300]) from None
    if not (isinstance(user, str) and isinstance(meta, dict)):
        raise StoreError("not a continual buffer (header fields of the wrong type).")
    ints = all(isinstance(meta.get(k), int) and meta[k] >= 0 for k in _META_INTS)
    lists = all(isinstance(meta.get(k), list) for k in ("scores", "added"))
    if not (ints and lists and EMBEDDINGS in anchors and set(recent) <= set(anchors)):
        raise StoreError("not a continual buffer (meta or arrays missing).")
    n_anchor, n_recent = len(anchors[EMBEDDINGS]), len(meta["scores"])
    for key, rows in anchors.items():
        got = recent.get(key, rows[:0])
        if rows.ndim < 2 or len(rows) != n_anchor or len(got) != n_recent:
            raise StoreError(f"not a continual buffer (array {key!r} has the wrong rows).")
        if got.shape[1:] != rows.shape[1:] or not np.all(np.isfinite(rows)):
            raise StoreError(f"not a continual buffer (array {key!r}: shape or values).")
    if n_anchor < 1 or len(meta["added"]) != n_recent:
        raise StoreError("not a continual buffer (no anchors, or scores and times disagree).")
    return Buffer(user, anchors, recent, meta)


class BufferStore:
    """The encrypted continual buffers of one :class:`~personalize.store.RecordStore`."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.folder = store.directory / FOLDER
        self.folder.mkdir(mode=STORE_MODE, exist_ok=True)
        self.folder.chmod(STORE_MODE)
        self._aead = AESGCM(store_subkey(store.keystore.key(), b"continual"))

    def path(self, user: str) -> Path:
        return self.folder / (self.store.file_id(user) + SUFFIX)

    def _aad(self, file_id: str, version: int) -> bytes:
        return MAGIC + file_id.encode() + VERSION.pack(version)

    def seal(self, file_id: str, version: int, plaintext: bytes) -> bytes:
        """A buffer file's bytes: ``plaintext`` encrypted for ``file_id`` at ``version``."""
        nonce = secrets.token_bytes(NONCE)
        sealed = self._aead.encrypt(nonce, plaintext, self._aad(file_id, version))
        return MAGIC + VERSION.pack(version) + nonce + sealed

    def save(self, buffer: Buffer) -> Path:
        """Encrypts and atomically writes ``buffer``, one version newer than the newest seen."""
        file_id = self.store.file_id(buffer.user)
        name = f"continual:{file_id}"
        version = self.store.keystore.counter(name) + 1
        path = self.folder / (file_id + SUFFIX)
        atomic_write(path, self.seal(file_id, version, encode_buffer(buffer)), mode=SECRET_MODE)
        self.store.keystore.advance(name, version)
        return path

    def load(self, user: str) -> Buffer | None:
        """``user``'s buffer, authenticated; None when there is none.

        Raises:
          StoreError: modified, truncated, renamed, another key's, or older than the newest
            this store has seen (rollback).
        """
        path = self.path(user)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        head = len(MAGIC) + VERSION.size
        if not data.startswith(MAGIC) or len(data) < head + NONCE + TAG:
            raise StoreError(f"{path}: not a pocketfit continual buffer (truncated or foreign).")
        (version,) = VERSION.unpack_from(data, len(MAGIC))
        aad = self._aad(path.name[: -len(SUFFIX)], version)
        try:
            plain = self._aead.decrypt(data[head : head + NONCE], data[head + NONCE :], aad)
        except InvalidTag:
            raise StoreError(
                f"{path}: continual buffer fails authentication (modified, truncated or renamed); "
                "refusing it."
            ) from None
        try:
            buffer = decode_buffer(plain)
        except StoreError as err:
            raise StoreError(f"{path}: {err}; refusing it.") from None
        if buffer.user != user:
            raise StoreError(f"{path}: buffer names {buffer.user!r}, not {user!r}.")
        name = f"continual:{self.store.file_id(user)}"
        newest = self.store.keystore.counter(name)
        if version < newest:
            raise StoreError(
                f"{path}: {user!r}'s continual buffer is version {version}, but this store has "
                f"seen version {newest}: an older copy restored (rollback); refusing it."
            )
        self.store.keystore.advance(name, version)
        return buffer

    def remove(self, user: str) -> bool:
        """Deletes ``user``'s buffer (its counter advanced past it); False if there was none."""
        path = self.path(user)
        name = f"continual:{self.store.file_id(user)}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False
        version = VERSION.unpack_from(data, len(MAGIC))[0] if len(data) >= 16 else 0
        path.unlink()
        crash_point()
        fsync_dir(self.folder)
        self.store.keystore.advance(name, max(self.store.keystore.counter(name), version) + 1)
        return True

    def wipe(self) -> int:
        """Deletes every buffer file (and temp file); returns how many buffers."""
        count = 0
        for p in self.folder.iterdir():
            if p.name.endswith(SUFFIX) and not p.name.startswith("."):
                name = f"continual:{p.name[: -len(SUFFIX)]}"
                p.unlink()
                self.store.keystore.advance(name, self.store.keystore.counter(name) + 1)
                count += 1
            elif p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
        fsync_dir(self.folder)
        return count


def record_version(store: RecordStore, user: str) -> int:
    """The version of ``user``'s record the store has seen (its rollback counter)."""
    return store.keystore.counter(f"record:{store.file_id(user)}")


def current(buffers: BufferStore, record: UserRecord) -> Buffer | None:
    """``record``'s buffer, rolled forward over an update whose buffer write was lost; None when
    there is none or it belongs to an older enrollment (see the module docstring)."""
    buffer = buffers.load(record.user)
    if buffer is None:
        return None
    version = record_version(buffers.store, record.user)
    meta = buffer.meta
    if meta["record_version"] == version:
        return buffer
    done = (record.meta.get("continual") or {}).get("updates")
    if meta["record_version"] < version and done == meta["updates"] + 1:
        day = int(record.meta["continual"].get("day", meta["day"]))
        today = meta["updates_today"] + 1 if day == meta["day"] else 1
        rolled = {**meta, "record_version": version, "updates": done, "pending": 0}
        return buffer._replace(meta={**rolled, "day": day, "updates_today": today})
    return None


def commit_update(buffers: BufferStore, record: UserRecord, buffer: Buffer) -> None:
    """Writes an update: the record, then the buffer that follows it (see the module docstring).

    ``buffer.meta["updates"]`` must already count this update; the record's meta says so too.
    """
    buffers.store.save(record)
    version = record_version(buffers.store, record.user)
    buffers.save(buffer._replace(meta={**buffer.meta, "record_version": version}))


# -- the device's side ---------------------------------------------------------------------------
class Continual:
    """The continual learner of one :class:`personalize.Device` (its ``continual`` attribute).

    Args:
      device: the device whose users adapt.
      config: margin, buffer size, daily cap.
      clock: seconds since the epoch (UTC days count the cap); tests pass a fake.
    """

    def __init__(
        self,
        device: Learner,
        config: ContinualConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device = device
        self.config = config or ContinualConfig()
        self.clock = clock
        self.buffers = BufferStore(device.store)
        self.last = Observation("no_buffer")

    def start(self, user: str, embedded: dict[str, np.ndarray]) -> None:
        """A new buffer for a user just enrolled from captures whose ``embed`` outputs are
        ``embedded`` (the anchors); replaces any older buffer."""
        anchors = {k: np.asarray(v, np.float32) for k, v in embedded.items()}
        meta = {
            "record_version": record_version(self.device.store, user),
            "updates": 0,
            "day": self._day(),
            "updates_today": 0,
            "pending": 0,
            "scores": [],
            "added": [],
        }
        empty = {k: v[:0] for k, v in anchors.items()}
        self.buffers.save(Buffer(user, anchors, empty, meta))

    def _day(self) -> int:
        return int(self.clock() // DAY_S)

    def observe(
        self, record: UserRecord, embedded: dict[str, np.ndarray], decision: Verdict
    ) -> Observation:
        """Learns from one verification of ``record.user`` (called by ``Device.verify``).

        Args:
          record: the user's record the decision was made with.
          embedded: the capture's ``embed`` outputs (one row each).
          decision: the verification's decision.
        """
        self.last = self._observe(record, embedded, decision)
        return self.last

    def _observe(
        self, record: UserRecord, embedded: dict[str, np.ndarray], decision: Verdict
    ) -> Observation:
        if not decision.accept:
            return Observation("rejected")
        if decision.score < decision.threshold + self.config.margin:
            return Observation("below_margin")
        buffer = current(self.buffers, record)
        if buffer is None:
            return Observation("no_buffer")
        buffer = self._add(buffer, embedded, decision.score)
        meta = buffer.meta
        due = meta["pending"] >= self.config.update_every
        if due and meta["updates_today"] < self.config.max_updates_per_day:
            return self._update(record, buffer)
        self.buffers.save(buffer)
        outcome = "capped" if due else "buffered"
        return Observation(outcome, len(meta["scores"]), meta["updates_today"])

    def _add(self, buffer: Buffer, embedded: dict[str, np.ndarray], score: float) -> Buffer:
        """The buffer with one capture appended, the oldest evicted past the bound, and the daily
        count restarted on a new day."""
        keep = self.config.buffer_size
        recent = {
            k: np.concatenate([buffer.recent[k], np.asarray(embedded[k][:1], np.float32)])[-keep:]
            for k in buffer.anchors
        }
        meta = dict(buffer.meta)
        meta["scores"] = [*meta["scores"], float(score)][-keep:]
        meta["added"] = [*meta["added"], float(self.clock())][-keep:]
        meta["pending"] += 1
        day = self._day()
        if day != meta["day"]:
            meta["day"], meta["updates_today"] = day, 0
        return buffer._replace(recent=recent, meta=meta)

    def _update(self, record: UserRecord, buffer: Buffer) -> Observation:
        """Re-trains the user's weights on anchors + buffer, sets the threshold again, commits."""
        dev = self.device
        meta = buffer.meta
        target_far = float(record.meta.get("target_far", 0.0))
        if not 0.0 < target_far < 1.0:
            raise StoreError(
                f"user {record.user!r}: record has no usable target_far; enroll again."
            )
        positives = buffer.positives()
        fitted = dev.fit_embedded(
            positives,
            record.scope,
            self.config.sgd,
            target_far,
            seed=meta["updates"] + 1,
            prints=record.prints,  # a fused record's threshold stays on fused scores
        )
        fit = fitted.fit
        updates, day = meta["updates"] + 1, meta["day"]
        new_meta = {
            **record.meta,
            "threshold_method": fit.method,
            "tail": [fit.tail, fit.xi, fit.sigma, fit.u],
            "continual": {
                "updates": updates,
                "day": day,
                "positives": len(positives[EMBEDDINGS]),
                "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
            },
        }
        # The threshold was set on the match rule over these positives' templates: keep them.
        templates = templates_of(positives[EMBEDDINGS]) if dev.match.templates else None
        new = UserRecord(
            record.user,
            fit.threshold,
            record.scope,
            fitted.weights,
            new_meta,
            templates,
            record.prints,
        )
        today = meta["updates_today"] + 1
        after = {**meta, "updates": updates, "updates_today": today, "pending": 0}
        commit_update(self.buffers, new, buffer._replace(meta=after))
        return Observation("updated", len(meta["scores"]), today, fit.threshold)

    def remove(self, user: str) -> bool:
        """Deletes ``user``'s buffer; False if there was none."""
        return self.buffers.remove(user)


def forget(store: RecordStore, user: str) -> None:
    """Deletes ``user``'s continual buffer if there is one (removing a user removes it too)."""
    if (store.directory / FOLDER).is_dir():
        BufferStore(store).remove(user)


def forget_all(store: RecordStore) -> int:
    """Deletes every continual buffer of ``store``; returns how many."""
    if not (store.directory / FOLDER).is_dir():
        return 0
    return BufferStore(store).wipe()


__all__ = [
    "Buffer",
    "BufferStore",
    "Continual",
    "ContinualConfig",
    "Observation",
    "commit_update",
    "current",
    "decode_buffer",
    "encode_buffer",
    "forget",
    "forget_all",
]
