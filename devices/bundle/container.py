"""The ``.pfb`` container: preamble, header, checksummed sections, Ed25519 signature.

Layout (little-endian)::

    preamble  16 B   magic "\\x89PFB", u16 version, u16 flags (0), u32 file length, u32 header length
    header           u32 CRC-32 of the rest of the header, then
                     model name (u8 length + UTF-8), model options (u16 length + compact JSON),
                     u16 tensor count, per tensor:
                       name (u8 length + UTF-8), u8 kind, u8 dtype, u8 ndim, ndim x u32 dims,
                       [kind "coded": u8 index bits, u8 order, u16 codebook entries,
                        u8 deduplicated axes (bit 0 rows, bit 1 columns)]
                       u8 section count, per section: u32 length, u32 CRC-32
    sections         the section payloads, in header order
    trailer   72 B   8-byte id of the signing key, 64-byte Ed25519 signature of everything before

Every byte counts towards the compressed size. Reading checks, in order: the magic (a byte
comparison), then the signer's key id and the Ed25519 signature over the raw bytes before the
trailer (tampering, truncation or another key), and only then parses: version, the stated length
against the actual one, the header checksum, the layout, every section checksum (naming the
section). Nothing of a signed file is parsed before its signature verifies.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from devices import trust
from devices.bundle.errors import BundleError, SignatureError

MAGIC = b"\x89PFB"
VERSION = 1
PREAMBLE = struct.Struct("<4sHHII")
TRAILER_BYTES = trust.KEY_ID_BYTES + trust.SIGNATURE_BYTES
KINDS = {"raw": 0, "coded": 1}
DTYPES = {"float32": 0, "float16": 1, "int8": 2, "uint8": 3}
ORDERS = {"row": 0, "last-axis-first": 1}
# Weights a bundle may declare in all (256 MiB as float32; pocketfit's networks hold < 1M). A few
# coded bytes can declare any shape (zeros are implied), so the reader bounds what it decodes.
MAX_WEIGHTS = 1 << 26


class Record(NamedTuple):
    """One tensor as the container holds it.

    Attributes:
      name: leaf path, e.g. ``"fc1/kernel"``.
      kind: ``"raw"`` (one section: the values) or ``"coded"`` (codebook, index and value
        streams).
      dtype: storage dtype of raw values or codebook entries (``"float32"`` / ``"float16"``).
      shape: the tensor's shape.
      index_bits: width of a relative index (coded only).
      order: ``"row"`` or ``"last-axis-first"`` (coded only).
      codebook: number of stored codebook entries, the implicit zero excluded (coded only).
      sections: the section payloads.
      dedup: deduplicated axes of the 2-D view (bit 0 rows, bit 1 columns; coded only).
    """

    name: str
    kind: str
    dtype: str
    shape: tuple[int, ...]
    index_bits: int
    order: str
    codebook: int
    sections: tuple[bytes, ...]
    dedup: int = 0


class Container(NamedTuple):
    """A verified container: model name and options, records, signer id, record byte counts."""

    model: str
    options: dict[str, Any]
    records: list[Record]
    key_id: bytes
    nbytes: int
    record_bytes: dict[str, int]


def _str(text: str, width: str) -> bytes:
    data = text.encode()
    limit = 255 if width == "B" else 65535
    if len(data) > limit:
        raise ValueError(f"{text[:40]!r}... is longer than {limit} bytes.")
    return struct.pack("<" + width, len(data)) + data


def _record_bytes(r: Record) -> bytes:
    if r.kind not in KINDS or r.dtype not in DTYPES or r.order not in ORDERS:
        raise ValueError(f"{r.name}: bad kind/dtype/order {r.kind!r}/{r.dtype!r}/{r.order!r}.")
    out = _str(r.name, "B") + struct.pack("<BBB", KINDS[r.kind], DTYPES[r.dtype], len(r.shape))
    out += struct.pack(f"<{len(r.shape)}I", *r.shape)
    if r.kind == "coded":
        out += struct.pack("<BBHB", r.index_bits, ORDERS[r.order], r.codebook, r.dedup)
    out += struct.pack("<B", len(r.sections))
    for s in r.sections:
        out += struct.pack("<II", len(s), zlib.crc32(s))
    return out


def write(
    model: str, options: dict[str, Any], records: Sequence[Record], private_key: Any
) -> bytes:
    """Serializes and signs a container.

    Args:
      model: registered model name (``pretrain.build_model`` rebuilds it).
      options: its structural options (JSON-able).
      records: the tensors, in parameter-tree order.
      private_key: an Ed25519 private key.

    Returns:
      The file's bytes.
    """
    body = _str(model, "B") + _str(json.dumps(options, separators=(",", ":"), sort_keys=True), "H")
    body += struct.pack("<H", len(records))
    for r in records:
        body += _record_bytes(r)
    header = struct.pack("<I", zlib.crc32(body)) + body
    sections = b"".join(s for r in records for s in r.sections)
    total = PREAMBLE.size + len(header) + len(sections) + TRAILER_BYTES
    signed = PREAMBLE.pack(MAGIC, VERSION, 0, total, len(header)) + header + sections
    public = private_key.public_key()
    return signed + trust.key_id(public) + bytes(private_key.sign(signed))


class _Reader:
    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.pos, self.end = data, 0, end

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > self.end:
            raise BundleError("header ends in the middle of a field (corrupt header).")
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def text(self, width: str) -> str:
        (n,) = self.take(width)
        if self.pos + n > self.end:
            raise BundleError("header ends in the middle of a string (corrupt header).")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise BundleError("header holds a string that is not UTF-8 (corrupt header).") from None


def _lookup(table: dict[str, int], code: int, what: str) -> str:
    for k, v in table.items():
        if v == code:
            return k
    raise BundleError(f"unknown {what} code {code} in the header.")


def read(data: bytes, public_key: Any | None, *, where: str = "bundle") -> Container:
    """Checks and parses a container (see the module docstring for the order of checks).

    Args:
      data: the file's bytes.
      public_key: the Ed25519 public key that must have signed it, checked on the raw bytes
        before anything is parsed; None skips only the signature (debugging: checksums are
        always verified).
      where: names the file in error messages.

    Raises:
      BundleError: truncated, corrupt or malformed (the message says which part).
      SignatureError: signed by another key, or modified after signing.
    """
    n = len(data)
    if n < PREAMBLE.size + TRAILER_BYTES or data[:4] != MAGIC:
        raise BundleError(f"{where} is not a pocketfit bundle (no .pfb magic).")
    if public_key is not None:
        _check_signature(data, public_key, where)
    return _parse(data, where)


def verify(public_key: Any, message: bytes, signature: bytes, signer_id: bytes) -> None:
    """Checks ``signature``; raises :class:`SignatureError` saying why it fails."""
    try:
        trust.verify(public_key, message, signature, signer_id, what="bundle")
    except trust.TrustError as err:
        raise SignatureError(str(err)) from None


def load_public_key(source: Any) -> Any:
    """An Ed25519 public key from a PEM file path, PEM bytes, or a key object.

    Raises:
      BundleError: missing file, or not an Ed25519 public key.
    """
    try:
        return trust.public_key(source)
    except trust.TrustError as err:
        raise BundleError(str(err)) from None


def _check_signature(data: bytes, public_key: Any, where: str) -> None:
    """Verifies the trailer over the raw bytes before it; nothing is parsed first."""
    end = len(data) - TRAILER_BYTES
    signer, signature = data[end : end + trust.KEY_ID_BYTES], data[end + trust.KEY_ID_BYTES :]
    try:
        verify(public_key, data[:end], signature, signer)
    except BundleError as err:
        # The file is refused either way; a stated length that differs names the likely cause.
        total = PREAMBLE.unpack_from(data)[3]
        if total != len(data):
            state = "is truncated" if len(data) < total else "has trailing bytes"
            raise SignatureError(
                f"{where} {state}: {len(data)} bytes, its header says {total} "
                "(the signature check fails)."
            ) from None
        raise type(err)(f"{where}: {err}") from None


def _parse(data: bytes, where: str) -> Container:
    n = len(data)
    _, version, flags, total, header_len = PREAMBLE.unpack_from(data)
    if version != VERSION:
        raise BundleError(f"{where}: bundle format version {version}; this reader knows {VERSION}.")
    if total != n:
        state = "truncated" if n < total else "has trailing bytes"
        raise BundleError(f"{where} is {state}: {n} bytes, its header says {total}.")
    if flags != 0 or header_len < 4 or PREAMBLE.size + header_len + TRAILER_BYTES > n:
        raise BundleError(f"{where}: impossible header length {header_len} (corrupt preamble).")
    header = data[PREAMBLE.size : PREAMBLE.size + header_len]
    (crc,) = struct.unpack_from("<I", header)
    if zlib.crc32(header[4:]) != crc:
        raise BundleError(f"{where}: the header fails its CRC-32 check (corrupt).")
    reader = _Reader(header, header_len)
    reader.pos = 4
    model = reader.text("B")
    try:
        options = json.loads(reader.text("H"))
    except json.JSONDecodeError as err:
        raise BundleError(f"{where}: model options are not JSON ({err}).") from None
    (count,) = reader.take("H")
    specs = []
    for _ in range(count):
        name = reader.text("B")
        kind_code, dtype_code, ndim = reader.take("BBB")
        kind = _lookup(KINDS, kind_code, "kind")
        dtype = _lookup(DTYPES, dtype_code, "dtype")
        shape = tuple(int(d) for d in reader.take(f"{ndim}I"))
        index_bits, order, book, dedup = 0, "row", 0, 0
        if kind == "coded":
            index_bits, order_code, book, dedup = reader.take("BBHB")
            order = _lookup(ORDERS, order_code, "order")
        (nsec,) = reader.take("B")
        secs = [reader.take("II") for _ in range(nsec)]
        specs.append((name, kind, dtype, shape, index_bits, order, book, secs, dedup))
    if reader.pos != header_len:
        raise BundleError(f"{where}: {header_len - reader.pos} unexplained header bytes (corrupt).")
    weights = sum(math.prod(spec[3]) for spec in specs)
    if weights > MAX_WEIGHTS:
        raise BundleError(
            f"{where}: declares {weights:,} weights, more than this reader decodes "
            f"({MAX_WEIGHTS:,}); a corrupt header or a decompression bomb."
        )
    offset = PREAMBLE.size + header_len
    payload_end = n - TRAILER_BYTES
    records, sizes = [], {}
    for name, kind, dtype, shape, index_bits, order, book, secs, dedup in specs:
        sections = []
        for i, (length, crc) in enumerate(secs):
            if offset + length > payload_end:
                raise BundleError(f"{where}: section {i} of {name} runs past the end (corrupt).")
            chunk = data[offset : offset + length]
            if zlib.crc32(chunk) != crc:
                raise BundleError(
                    f"{where}: section {i} of {name} fails its CRC-32 check (corrupt data)."
                )
            sections.append(chunk)
            offset += length
        record = Record(name, kind, dtype, shape, index_bits, order, book, tuple(sections), dedup)
        records.append(record)
    if offset != payload_end:
        raise BundleError(f"{where}: {payload_end - offset} bytes between sections and signature.")
    for r in records:
        sizes[r.name] = len(_record_bytes(r)) + sum(len(s) for s in r.sections)
    signer = data[payload_end : payload_end + trust.KEY_ID_BYTES]
    return Container(model, options, records, signer, n, sizes)
