"""The enrolled users: one AES-GCM-encrypted record per user, written atomically.

Layout of a store directory (format 2; its records of format 3)::

    keycheck          the store id, and a known plaintext under the store key (wrong key vs
                      tampered)
    users/<id>.rec    one record per user; <id> is a keyed hash of the user name (HMAC-SHA256
                      under a key derived from the store key), so file names reveal no names

The key is not in the store: a :class:`~personalize.keystore.KeyStore` supplies it (by default a
0600 file ``store-<store id>.key`` in the per-user key folder, :func:`~personalize.keystore.key_dir`),
so a copy of the store's folder is useless without it. Two keys are derived from it (HKDF-SHA256):
one encrypts the records, one hashes the names.

A record file is ``MAGIC | 8-byte version | 12-byte nonce | AES-256-GCM(ciphertext + tag)``; the
associated data is the magic, the file id and the version, so a record renamed to another user or
given another version fails authentication. The plaintext is a JSON header (user name,
threshold, scope, metadata, template count) and an ``.npz`` of the user's trained weights (head,
and the last block's when a wider scope trained it) and, from record format 3, the user's
enrollment embeddings (``templates``, matched against new captures; :mod:`personalize.head`).
No capture image is stored, but a record *is a biometric template* (its embeddings are, and the
head column starts as their mean): it can be matched against new captures of the same face or
finger, so it is only ever written encrypted and must be protected like the biometric data it
was derived from (GDPR art. 9). The store's folders are mode 0700 and its records 0600.

Rollback protection: each user's record carries a version; the keystore keeps the newest version
it has seen per record (a monotonic counter beside the key, outside the store). Loading a record
older than that (an authentic record restored from a backup) is refused, as is a record restored
after its user was removed, and an artifact older than one this store already admitted
(:meth:`RecordStore.admit_artifact`).

A store remembers the last bytes it authenticated and decoded from each record file, with the
record: reading the very same bytes again gives that record without decrypting and decoding them
again (the result is a function of the bytes and the key, which it holds anyway). Every other
check runs on every load: the bytes are read, compared in full, the name and the rollback
counter checked.

User names are normalised to Unicode NFC (:func:`check_name`), so the composed and decomposed
spellings of a name are one user. Stores written before hashed the spelling they were given: a
record under another spelling (as given, or NFD) is still found, and replaced by the NFC one when
the user is saved again.

A store opened ``read_only`` (list, identify, verify without adaptation) is never written: a
missing one is not created, a key or keycheck never minted, so it can sit on read-only media. A
key is only created with a new store: records without a keycheck, or a keycheck without its key,
are refused rather than given a new key that would never read them.

Writes go to a temp file in the same directory, are fsynced, renamed over the old record and
the directory fsynced, so a killed process leaves either the old or the new record, never a
mix; the counter is advanced after the rename (a record newer than its counter is a save killed
in between, and advances it when read). Stale temp files of killed writers are removed when the
store is opened. Stores of format 1 (key beside the records, names in the file names) are
refused with the command that migrates them (:mod:`personalize.migrate`), and so are format-2
records (no templates; the migration re-seals them as format 3, still without templates).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import hmac
import io
import json
import os
import secrets
import struct
import time
import unicodedata
import zipfile
from pathlib import Path
from tokenize import TokenError
from typing import Any, NamedTuple

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from devices.contract import ArtifactError
from devices.files import atomic_write, crash_point, fsync_dir
from devices.print_minutiae import PrintSet, PrintSetError, from_arrays, to_arrays
from personalize.errors import StoreError, UnknownUserError
from personalize.keystore import SECRET_MODE, FileKeyStore, KeyStore, key_dir

MAGIC = b"PFUSER3\n"  # record format 3: format 2 plus the owner's enrollment embeddings
FORMAT2_MAGIC = b"PFUSER2\n"
CHECK_MAGIC = b"PFKEYC2\n"
CHECK_TEXT = b"pocketfit store key check"
OLD_MAGIC = b"PFUSER1\n"  # format 1: the key beside the records, names in the file names
OLD_CHECK_MAGIC = b"PFKEYC1\n"
OLD_KEY = "store.key"
NONCE = 12
TAG = 16
ID_BYTES = 16
VERSION = struct.Struct("<Q")
MAX_NAME = 100
SUFFIX = ".rec"
STALE_TMP_S = 600.0
STORE_MODE = 0o700  # the store's folders: only the owner lists or enters them
TEMPLATES = "~templates"  # the npz entry of the templates (no artifact tensor name has a ~)
PRINTS = "~prints_"  # the npz entries' prefix of the owner's prints (devices.print_minutiae)
MAX_TEMPLATES = 64  # enrollment takes a few samples; more in a record is a faulty writer


class UserRecord(NamedTuple):
    """What the device keeps about one user: a biometric template (see the module docstring).

    Attributes:
      user: the user name.
      threshold: accept when the score is at least this.
      scope: the training scope the weights come from (``"none"`` for imprinting only).
      weights: ``{artifact tensor name: array}`` of the variables enrollment changed.
      meta: everything else worth keeping (target FAR, samples, artifact id, times).
      templates: ``(k, d)`` the owner's enrollment embeddings (unit rows), or None (a record
        migrated from format 2, or enrolled with templates off).
      prints: a fingerprint owner's enrollment prints (minutiae and readable masks) when the
        device fuses the minutiae score (:mod:`devices.print_minutiae`), else None.
    """

    user: str
    threshold: float
    scope: str
    weights: dict[str, np.ndarray]
    meta: dict[str, Any]
    templates: np.ndarray | None = None
    prints: PrintSet | None = None


class Listing(NamedTuple):
    """A store's readable users and its refused record files (:meth:`RecordStore.listing`).

    Attributes:
      users: the names of the users whose record reads, sorted.
      unreadable: one line per record file that does not (tampered, rolled back, another
        key's, ...): the file and why.
    """

    users: list[str]
    unreadable: list[str]


def check_name(user: Any) -> str:
    """A valid user name (a non-empty string of printable characters, at most 100) in Unicode
    normal form C: the composed and decomposed spellings of a name (``"\u00e9"`` and
    ``"e\u0301"``) are one user, whose record file is named after the NFC spelling."""
    if not isinstance(user, str) or not user.strip():
        raise ValueError(f"user name must be a non-empty string, got {user!r}.")
    if len(user) > MAX_NAME or not user.isprintable():
        raise ValueError(f"user name {user!r}: at most {MAX_NAME} printable characters.")
    return unicodedata.normalize("NFC", user)


def subkey(master: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose (``b"records"``, ``b"names"``) derived from the store key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pocketfit store " + purpose)
    return hkdf.derive(master)


def _aad(file_id: str, version: int, magic: bytes = MAGIC) -> bytes:
    return magic + file_id.encode() + VERSION.pack(version)


def file_id(names_key: bytes, user: str) -> str:
    """A record file's stem: HMAC-SHA256 of the user name (NFC, :func:`check_name`) under the
    store's name key."""
    return _spelling_id(names_key, check_name(user))


def _spelling_id(names_key: bytes, spelling: str) -> str:
    """The stem of one spelling of a name, as it is (records written before names were
    normalised hash the spelling they were given)."""
    return hmac.new(names_key, spelling.encode(), hashlib.sha256).hexdigest()[:32]


def seal(aead: AESGCM, file_id: str, version: int, plaintext: bytes) -> bytes:
    """A record file's bytes: ``plaintext`` encrypted for ``file_id`` at ``version``."""
    nonce = secrets.token_bytes(NONCE)
    sealed = aead.encrypt(nonce, plaintext, _aad(file_id, version))
    return MAGIC + VERSION.pack(version) + nonce + sealed


def key_check(aead: AESGCM, store_id: str) -> bytes:
    """The ``keycheck`` file of a store: its id, and a known text under its key."""
    aad = CHECK_MAGIC + bytes.fromhex(store_id)
    nonce = secrets.token_bytes(NONCE)
    return aad + nonce + aead.encrypt(nonce, CHECK_TEXT, aad)


def open_sealed(aead: AESGCM, path: Path, data: bytes, magic: bytes = MAGIC) -> tuple[int, bytes]:
    """(version, plaintext) of a record file sealed with ``magic``, authenticated.

    Raises:
      StoreError: not such a record, or it fails authentication.
    """
    head = len(magic) + VERSION.size
    if not data.startswith(magic) or len(data) < head + NONCE + TAG:
        raise StoreError(f"{path}: not a pocketfit user record (truncated or foreign file).")
    (version,) = VERSION.unpack_from(data, len(magic))
    aad = _aad(path.name[: -len(SUFFIX)], version, magic)
    try:
        return version, aead.decrypt(data[head : head + NONCE], data[head + NONCE :], aad)
    except InvalidTag:
        raise StoreError(
            f"{path}: record fails authentication (modified, truncated, or renamed from "
            "another user's record); refusing it."
        ) from None


def format_2_error(directory: Path, count: int) -> StoreError:
    """The refusal of a store holding records of format 2, with the command that migrates them."""
    return StoreError(
        f"{directory}: {count} user record(s) of format 2 (before templates); migrate them once "
        f"with `python -m personalize migrate --store {directory}` (re-seals them as format 3; "
        "their users keep working and gain templates when they enroll again)."
    )


def old_format_error(directory: Path, keys: Path) -> StoreError:
    """The refusal of a format-1 store, with the command that migrates it."""
    return StoreError(
        f"{directory}: a store of format 1 (its key beside the records, user names in the file "
        f"names); migrate it once with `python -m personalize migrate --store {directory}` "
        f"(moves the key to {keys}, re-encrypts the records under hashed names)."
    )


def encode_record(record: UserRecord) -> bytes:
    """The plaintext of a record: 4-byte header length, JSON header, npz of the weights, the
    templates and the prints."""
    templates = record.templates
    if any(k == TEMPLATES or k.startswith(PRINTS) for k in record.weights):
        raise ValueError(f"{TEMPLATES!r} and {PRINTS!r}... are reserved, not weight names.")
    header = {
        "user": record.user,
        "threshold": float(record.threshold),
        "scope": record.scope,
        "meta": record.meta,
        "templates": 0 if templates is None else len(templates),
        **({} if record.prints is None else {"prints": record.prints.size}),
    }
    text = json.dumps(header, sort_keys=True).encode()
    arrays = {k: np.asarray(v, np.float32) for k, v in record.weights.items()}
    if templates is not None:
        arrays[TEMPLATES] = np.asarray(templates, np.float32)
    if record.prints is not None:
        arrays |= to_arrays(record.prints, PRINTS)
    buffer = io.BytesIO()
    save: Any = np.savez  # the stubs reserve keyword names for options
    save(buffer, **arrays)
    return struct.pack("<I", len(text)) + text + buffer.getvalue()


# What reading a malformed plaintext raises: struct, JSON, zip and the .npy header reader.
_MALFORMED = (
    struct.error,
    ValueError,
    KeyError,
    TypeError,
    EOFError,
    OSError,
    SyntaxError,
    TokenError,
    RecursionError,
    zipfile.BadZipFile,
    NotImplementedError,  # zipfile: unsupported versions, flags
    RuntimeError,  # zipfile: "encrypted, password required"
)


def decode_record(plain: bytes) -> UserRecord:
    """The record of a plaintext :func:`encode_record` wrote.

    Raises:
      StoreError: the plaintext is not a record (an authentic file can still hold one if its
        writer was faulty or the store key leaked).
    """
    try:
        (size,) = struct.unpack("<I", plain[:4])
        header = json.loads(plain[4 : 4 + size])
        with np.load(io.BytesIO(plain[4 + size :]), allow_pickle=False) as npz:
            stored = {k: npz[k] for k in npz.files}
        owner = {k: stored.pop(k) for k in list(stored) if k.startswith(PRINTS)}
        weights = {k: np.asarray(v, np.float32) for k, v in stored.items()}
        templates = weights.pop(TEMPLATES, None)
        prints = from_arrays(owner, PRINTS) if "prints" in header else None
        record = UserRecord(
            header["user"],
            float(header["threshold"]),
            header["scope"],
            weights,
            header["meta"],
            templates,
            prints,
        )
        count = header.get("templates", 0)
        if prints is not None and prints.size != header["prints"]:
            raise ValueError(f"{prints.size} prints stored, the header says {header['prints']}")
    except (*_MALFORMED, PrintSetError) as err:
        raise StoreError(f"not a user record ({type(err).__name__}: {err})"[:300]) from None
    ok = isinstance(record.user, str) and isinstance(record.scope, str)
    if not (ok and isinstance(record.meta, dict) and np.isfinite(record.threshold)):
        raise StoreError("not a user record (header fields of the wrong type).")
    _check_templates(templates, count)
    return record


def _check_templates(templates: np.ndarray | None, count: Any) -> None:
    """Templates as the header announces them: ``count`` finite rows (none when 0)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_TEMPLATES:
        raise StoreError(f"not a user record (template count {count!r}, 0..{MAX_TEMPLATES}).")
    if templates is None:
        if count:
            raise StoreError(f"not a user record (header says {count} templates, none stored).")
        return
    if templates.ndim != 2 or len(templates) != count or not np.all(np.isfinite(templates)):
        raise StoreError(
            f"not a user record (templates of shape {templates.shape}, the header says {count}, "
            "or not finite)."
        )


def _copied(record: UserRecord) -> UserRecord:
    """A copy a caller may change without changing the remembered record."""
    templates = None if record.templates is None else record.templates.copy()
    weights = {k: v.copy() for k, v in record.weights.items()}
    # the prints' arrays are never changed in place (a new enrollment makes new ones)
    return record._replace(weights=weights, meta=copy.deepcopy(record.meta), templates=templates)


class RecordStore:
    """Encrypted per-user records in a directory (see the module docstring).

    Args:
      directory: the store directory (created if missing).
      keystore: supplies the key and the rollback counters; default a :class:`FileKeyStore`
        ``<keys>/store-<store id>.key``.
      create: create the store if it does not exist (otherwise a missing store is an error).
      keys: the key folder of the default keystore (default :func:`key_dir`); never inside the
        store (a copy of the store would carry its key).
      allow_format_2: open a store that still holds format-2 records (the migration does).
      read_only: open an existing store without writing anything (no folder made or chmodded,
        no key or keycheck created, no stale temp file removed, no counter advanced), so a
        store on read-only media can be read; :meth:`save`, :meth:`remove` and :meth:`wipe`
        are refused.

    A key (and the keycheck) is only ever created with a new store: a store whose keycheck is
    there but whose key is not, or which holds records but no keycheck, is refused, since a new
    key would never open its records.

    Raises:
      StoreError: the key is refused or does not open this store, or is missing; no store
        (``create=False`` or ``read_only``); records without a keycheck; a key folder inside
        the store; a store of format 1 or with records of format 2 (the message says how to
        migrate it).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        keystore: KeyStore | None = None,
        *,
        create: bool = True,
        keys: str | os.PathLike[str] | None = None,
        allow_format_2: bool = False,
        read_only: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.users_dir = self.directory / "users"
        self.read_only = read_only
        keys_dir = Path(keys).expanduser() if keys is not None else key_dir()
        if keystore is None:
            self._check_key_folder(keys_dir)
        if (read_only or not create) and not self.users_dir.is_dir():
            raise StoreError(f"{self.directory}: no user store here.")
        if not read_only:
            for folder in (self.directory, self.users_dir):
                folder.mkdir(mode=STORE_MODE, parents=True, exist_ok=True)
                folder.chmod(STORE_MODE)  # the umask may widen nothing; older stores were 0755
        check = self._read_check(keys_dir)
        self.store_id = check[len(CHECK_MAGIC) : len(CHECK_MAGIC) + ID_BYTES].hex() if check else ""
        if not check:
            self.store_id = secrets.token_hex(ID_BYTES)
        self.keystore = keystore or FileKeyStore(
            keys_dir / f"store-{self.store_id}.key", create=not check
        )
        key = self.keystore.key()
        if len(key) != 32:
            raise StoreError(f"the keystore returned a {len(key)}-byte key; AES-256 needs 32.")
        self._aead = AESGCM(subkey(key, b"records"))
        self._names = subkey(key, b"names")
        self._known: dict[str, tuple[bytes, int, UserRecord]] = {}  # file name -> last decoded
        self._check_key(check)
        if not read_only:
            self._remove_stale()
        if not allow_format_2:
            self._refuse_format_2()

    def _check_key_folder(self, keys: Path) -> None:
        """Refuses a key folder inside the store: whoever copies the store would get its key."""
        if keys.resolve().is_relative_to(self.directory.resolve()):
            raise StoreError(
                f"the key folder {keys} is inside the store {self.directory}; keep it outside "
                "(a copy of the store would carry its key). Nothing was changed."
            )

    def _record_files(self) -> list[Path]:
        """The store's record files (not the temp files of writers), sorted."""
        paths = self.users_dir.glob(f"*{SUFFIX}")
        return sorted(p for p in paths if not p.name.startswith("."))

    def _read_check(self, keys: Path) -> bytes:
        path = self.directory / "keycheck"
        data = path.read_bytes() if path.exists() else b""
        if data.startswith(OLD_CHECK_MAGIC) or (self.directory / OLD_KEY).exists():
            if data.startswith(CHECK_MAGIC):
                raise StoreError(
                    f"{self.directory}: a migration to format 2 was interrupted; run `python -m "
                    f"personalize migrate --store {self.directory}` again to finish it."
                )
            raise old_format_error(self.directory, keys)
        if data and (not data.startswith(CHECK_MAGIC) or len(data) < len(CHECK_MAGIC) + ID_BYTES):
            raise StoreError(f"{path}: not a pocketfit store key check (modified?).")
        records = [] if data else self._record_files()
        if records:
            raise StoreError(
                f"{self.directory}: {len(records)} user record(s) but no keycheck file (deleted "
                "or lost?); refusing to open it, since a new key would never read them. Restore "
                f"{path} from a backup (or remove the records). Nothing was changed."
            )
        if not data and self.read_only:
            raise StoreError(f"{self.directory}: no user store here (no keycheck, no records).")
        return data

    def _check_key(self, data: bytes) -> None:
        head = len(CHECK_MAGIC) + ID_BYTES
        aad = CHECK_MAGIC + bytes.fromhex(self.store_id)
        if not data:
            check = key_check(self._aead, self.store_id)
            atomic_write(self.directory / "keycheck", check, mode=SECRET_MODE)
            return
        try:
            ok = (
                self._aead.decrypt(data[head : head + NONCE], data[head + NONCE :], aad)
                == CHECK_TEXT
            )
        except InvalidTag:
            ok = False
        if not ok:
            raise StoreError(
                f"{self.directory}: the key from {type(self.keystore).__name__} does not open "
                "this store (wrong key, or the store's keycheck file was modified)."
            )

    def _remove_stale(self) -> None:
        now = time.time()
        for tmp in self.users_dir.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    tmp.unlink()
            except OSError:
                pass

    def file_id(self, user: str) -> str:
        """The stem of ``user``'s record file (:func:`file_id`)."""
        return file_id(self._names, user)

    def path(self, user: str) -> Path:
        """The record file of ``user`` (named after the NFC spelling, :func:`check_name`)."""
        return self.users_dir / (self.file_id(user) + SUFFIX)

    def is_file_of(self, name: str, stem: str) -> bool:
        """Whether ``stem`` is the record file stem of a record naming ``name``: its NFC
        spelling's, or (written before names were normalised) the spelling's own."""
        nfc = unicodedata.normalize("NFC", name)
        return stem in (_spelling_id(self._names, nfc), _spelling_id(self._names, name))

    def _older_paths(self, user: str) -> list[Path]:
        """Existing record files of other spellings of ``user``'s name (as given, and NFD),
        which stores wrote before names were normalised to NFC."""
        spellings = {user, unicodedata.normalize("NFD", user)} - {check_name(user)}
        paths = [self.users_dir / (_spelling_id(self._names, x) + SUFFIX) for x in spellings]
        return sorted(p for p in paths if p.exists())

    def _find(self, user: str) -> Path:
        """``user``'s record file: :meth:`path`, or one an older store wrote for another
        spelling of the name (None of them exists: :meth:`path`)."""
        path = self.path(user)
        return path if path.exists() else next(iter(self._older_paths(user)), path)

    def seal(self, file_id: str, version: int, plaintext: bytes) -> bytes:
        """A record file's bytes under this store's key (:func:`seal`)."""
        return seal(self._aead, file_id, version, plaintext)

    def _open(self, path: Path, data: bytes) -> tuple[int, bytes]:
        """(version, plaintext) of a record file, authenticated."""
        if data.startswith(FORMAT2_MAGIC):
            raise format_2_error(self.directory, 1)
        return open_sealed(self._aead, path, data)

    def format_2_records(self) -> list[Path]:
        """Record files of format 2 (before templates), which :mod:`personalize.migrate`
        re-seals as format 3."""
        old = []
        for path in self._record_files():
            with path.open("rb") as f:
                if f.read(len(FORMAT2_MAGIC)) == FORMAT2_MAGIC:
                    old.append(path)
        return old

    def _refuse_format_2(self) -> None:
        old = self.format_2_records()
        if old:
            raise format_2_error(self.directory, len(old))

    def has(self, user: str) -> bool:
        """Whether ``user`` has a record file (readable or not): saving one replaces it."""
        return self._find(user).exists()

    def _writable(self) -> None:
        """Refuses a change to a store opened read-only."""
        if self.read_only:
            raise StoreError(f"{self.directory}: opened read-only; nothing was changed.")

    def save(self, record: UserRecord) -> Path:
        """Encrypts and atomically writes (or replaces) ``record.user``'s record, one version
        newer than the newest the keystore has seen."""
        self._writable()
        name = check_name(record.user)
        older = self._older_paths(record.user)
        record = record._replace(user=name)
        file_id = self.file_id(record.user)
        version = self.keystore.counter(f"record:{file_id}") + 1
        path = self.users_dir / (file_id + SUFFIX)
        self._known.pop(path.name, None)
        atomic_write(path, self.seal(file_id, version, encode_record(record)), mode=SECRET_MODE)
        self.keystore.advance(f"record:{file_id}", version)
        for old in older:  # the user's record under an older spelling: replaced by this one
            self._delete(old)
        return path

    def load(self, user: str) -> UserRecord:
        """Reads and authenticates ``user``'s record.

        Raises:
          UnknownUserError: no record.
          StoreError: the record was modified, truncated, renamed, written with another key, or
            is older than the newest this store has seen (restored from a backup).
        """
        path = self._find(user)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UnknownUserError(f"no enrolled user {user!r} in {self.directory}.") from None
        return self._checked(path, data, check_name(user))

    def _checked(self, path: Path, data: bytes, user: str | None = None) -> UserRecord:
        """The record in ``path``'s bytes, authenticated, named ``user`` (None: any user whose
        record file this is) and no older than the newest this store has seen.

        Raises:
          StoreError: it is not (see :meth:`load`).
        """
        version, record = self._decoded(path, data)
        # the associated data binds the file id; a faulty writer may not have bound the name
        named = unicodedata.normalize("NFC", record.user)
        if (user is not None and named != user) or not self.is_file_of(record.user, path.stem):
            raise StoreError(f"{path}: record names {record.user!r}, not this file's user.")
        name = f"record:{path.stem}"
        newest = self.keystore.counter(name)
        if version < newest:
            raise StoreError(
                f"{path}: {record.user!r}'s record is version {version}, but this store has seen "
                f"version {newest}: an older record restored (rollback); refusing it. Enroll "
                f"{record.user!r} again."
            )
        if version > newest and not self.read_only:  # a save killed before it advanced it
            self.keystore.advance(name, version)
        return record

    def _decoded(self, path: Path, data: bytes) -> tuple[int, UserRecord]:
        """(version, a copy of the record) of a record file's bytes, authenticated and decoded,
        or remembered from the last time this store decoded these very bytes from ``path``.

        Raises:
          StoreError: the bytes fail authentication or hold no record.
        """
        known = self._known.get(path.name)
        if known is None or not hmac.compare_digest(known[0], data):
            version, plain = self._open(path, data)
            try:
                record = decode_record(plain)
            except StoreError as err:
                raise StoreError(f"{path}: {err}; refusing it.") from None
            known = (data, version, record)
            self._known[path.name] = known
        return known[1], _copied(known[2])

    def users(self) -> list[str]:
        """Names of the users with a readable record, sorted (:meth:`listing` says which
        records are not readable, and why)."""
        return self.listing().users

    def listing(self) -> Listing:
        """The users whose record reads as :meth:`load` reads it, sorted, and why each other
        record file was refused (each record is decrypted: the file names are hashes)."""
        names, unreadable = [], []
        for path in self._record_files():
            try:
                names.append(self._checked(path, path.read_bytes()).user)
            except (StoreError, OSError) as err:
                unreadable.append(str(err))
        return Listing(sorted(names), unreadable)

    def _delete(self, path: Path) -> None:
        """Deletes a record file and advances its counter past it, so it cannot come back."""
        self._writable()
        name = f"record:{path.name[: -len(SUFFIX)]}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UnknownUserError(f"no record {path.name} in {self.directory}.") from None
        version = VERSION.unpack_from(data, len(MAGIC))[0] if len(data) >= 16 else 0
        self._known.pop(path.name, None)
        path.unlink()
        crash_point()
        fsync_dir(self.users_dir)
        self.keystore.advance(name, max(self.keystore.counter(name), version) + 1)

    def remove(self, user: str) -> None:
        """Deletes ``user``'s record; a copy of it restored later is refused.

        Raises:
          UnknownUserError: no record.
        """
        try:
            self._delete(self._find(user))
        except UnknownUserError:
            raise UnknownUserError(f"no enrolled user {user!r} in {self.directory}.") from None

    def wipe(self) -> int:
        """Deletes every record (and temp file); returns how many records were deleted."""
        self._writable()
        count = 0
        for p in self.users_dir.iterdir():
            if p.name.endswith(SUFFIX) and not p.name.startswith("."):
                self._delete(p)
                count += 1
            elif p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
        fsync_dir(self.users_dir)
        return count

    def admit_artifact(self, manifest: dict[str, Any]) -> None:
        """Refuses an artifact older than one this store admitted under the same name (an
        older signed artifact put back: rollback), then remembers this one's creation time
        (unless the store was opened read-only: then the next writer remembers it).

        Raises:
          ArtifactError: older than the newest admitted, or without a creation time.
        """
        name = str((manifest.get("source") or {}).get("name", ""))
        created = manifest.get("created_utc")
        try:
            when = datetime.datetime.fromisoformat(str(created))
        except ValueError:
            raise ArtifactError(f"artifact {name!r}: no creation time ({created!r}).") from None
        stamp = int(when.timestamp() * 1000)
        newest = self.keystore.counter(f"artifact:{name}")
        if stamp < newest:
            seen = datetime.datetime.fromtimestamp(newest / 1000, datetime.UTC).isoformat()
            raise ArtifactError(
                f"artifact {name!r} was created {created}, but this device already used one "
                f"created {seen}: an older artifact put back (rollback); refusing it. Install "
                "the newest artifact."
            )
        if not self.read_only:
            self.keystore.advance(f"artifact:{name}", stamp)
