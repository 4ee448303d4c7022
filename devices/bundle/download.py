"""The download: one signed ``.pfb`` from which a phone rebuilds its artifact, bit for bit.

A download bundle is an ordinary ``.pfb`` container (:mod:`devices.bundle.container`, signed over
its raw bytes) whose options say ``"format": "pocketfit-download/1"`` and whose records are:

  * the compressed backbone kernels, coded (pruned, k-means shared, Huffman): decoded and put on
    their int8 grid (:func:`devices.bundle.grid.snap`) they are the int8 weights the model holds;
  * ``download/skeleton``: ``model.tflite`` with those int8 weights zeroed, LZMA-compressed
    (graph, signatures, quantization parameters, biases, the float head);
  * ``download/background`` (coded integers -127..127) and ``download/background_exponent``
    (int8): the background embeddings, each row ``q * 2**e`` (:func:`compact_background`), so
    ``background.npy`` (float16) is rebuilt exactly;
  * ``download/manifest`` (XZ) and ``download/manifest_sig``: the artifact's signed manifest;
  * ``download/background_minutiae`` (XZ), when the artifact has it: the background people's
    prints for the fingerprint fusion (:mod:`devices.print_minutiae`), as the file is.

The options' ``bytes`` give the model's and the manifest's sizes; ``placements`` list, for each int8 weight buffer, its byte offset in the model, the
kernel and its layout (``row``: the kernel's own order; ``last-axis-first``: output channels
first, LiteRT's convolution and fully connected layout). :func:`read_download` verifies the
signature before parsing anything, decodes, fills the placements and returns the artifact's
files; the installer (:func:`personalize.install`) then checks the manifest's signature and every
file's SHA-256 before writing. The writer is :func:`export.artifact.download.build_download`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

import devices.bundle.container as container
from devices import npy, xz
from devices.bundle.codec import decode_record
from devices.bundle.errors import BundleError
from devices.bundle.grid import snap
from devices.contract import BACKGROUND, BACKGROUND_MINUTIAE, MANIFEST, MODEL, SIGNATURE

FORMAT = "pocketfit-download/1"
SKELETON = "download/skeleton"
BACKGROUND_Q = "download/background"
BACKGROUND_EXPONENT = "download/background_exponent"
MANIFEST_RECORD = "download/manifest"
SIGNATURE_RECORD = "download/manifest_sig"
MINUTIAE_RECORD = "download/background_minutiae"
SIDE_RECORDS = (
    SKELETON,
    BACKGROUND_Q,
    BACKGROUND_EXPONENT,
    MANIFEST_RECORD,
    SIGNATURE_RECORD,
    MINUTIAE_RECORD,
)
LAYOUTS = ("row", "last-axis-first")
MAX_MODEL_BYTES = 1 << 26  # 64 MiB: pocketfit's models are < 2 MiB; bounds an LZMA bomb


class Download(NamedTuple):
    """A verified, decoded download.

    Attributes:
      files: the artifact's files by name (``model.tflite``, ``background.npy``, the manifest
        and its signature), as the publisher signed them.
      nbytes: the bundle's size.
      key_id: hex id of the key that signed the bundle.
      record_bytes: bytes of each record in the file (the size table's parts).
    """

    files: dict[str, bytes]
    nbytes: int
    key_id: str
    record_bytes: dict[str, int]


def laid_out(q: np.ndarray, layout: str) -> np.ndarray:
    """A kernel's int8 values in a flatbuffer's order (see :data:`LAYOUTS`)."""
    if layout == "row":
        return q
    if layout == "last-axis-first":
        return np.moveaxis(q, -1, 0)
    raise BundleError(f"unknown kernel layout {layout!r}; known: {', '.join(LAYOUTS)}.")


def compact_background(embeddings: np.ndarray, levels: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Rows as ``q * 2**e`` (``q`` in -levels..levels, int8; one exponent per row): ``(q, e)``.

    A power-of-two scale makes every value exact in float16 and the split recoverable from the
    float16 values (:func:`expand_background` then this, with the same ``levels``, give
    ``(q, e)`` back: the largest ``|q|`` of a row lies in ``(levels / 2, levels]``).
    """
    if not 1 <= levels <= 127 or levels % 2 == 0:
        raise ValueError(f"levels must be odd in 1..127, got {levels}.")
    x = np.asarray(embeddings, np.float32)
    top = np.abs(x).max(axis=1)
    e = np.where(top > 0, np.ceil(np.log2(np.maximum(top, 1e-30) / levels)), 0).astype(np.int64)
    e = np.clip(e, -24, 15)  # float16's range: 2**-24 (smallest subnormal) .. 2**15
    q = np.clip(np.rint(np.ldexp(x, -e[:, None])), -levels, levels).astype(np.int8)
    return q, e.astype(np.int8)


def expand_background(q: np.ndarray, e: np.ndarray) -> np.ndarray:
    """The float16 background ``q * 2**e`` (exact)."""
    return np.ldexp(q.astype(np.float32), e.astype(np.int32)[:, None]).astype(np.float16)


def _blob(values: np.ndarray | None, name: str) -> bytes:
    if values is None:
        raise BundleError(f"the download lacks its {name} record.")
    if values.ndim != 1 or (values.size and (values.min() < 0 or values.max() > 255)):
        raise BundleError(f"{name}: not a byte string.")
    return values.astype(np.uint8).tobytes()


def inflate(data: bytes, size: Any, name: str) -> bytes:
    """An XZ stream that must inflate to exactly ``size`` bytes (bounded: no bomb)."""
    if not isinstance(size, int) or not 0 < size <= MAX_MODEL_BYTES:
        raise BundleError(f"{name}: declared size {size!r} bytes is not in 1..{MAX_MODEL_BYTES}.")
    try:
        out = xz.decompress(data, size)
    except ValueError as err:
        raise BundleError(f"{name}: {err}; the declared size is {size} bytes.") from None
    if len(out) != size:
        raise BundleError(f"{name}: inflates to other than the declared {size} bytes.")
    return out


def deflate(data: bytes) -> bytes:
    """The XZ stream :func:`inflate` reads (:func:`devices.xz.compress`)."""
    return xz.compress(data)


def _placements(raw: Any) -> list[tuple[int, str, str]]:
    if not isinstance(raw, list):
        raise BundleError("the download's placements are not a list.")
    out = []
    for item in raw:
        ok = isinstance(item, list) and len(item) == 3
        if not ok or not isinstance(item[0], int) or not all(isinstance(v, str) for v in item[1:]):
            raise BundleError(f"bad placement {str(item)[:60]!r}: want [offset, kernel, layout].")
        out.append((item[0], item[1], item[2]))
    return out


def fill(skeleton: bytes, kernels: Mapping[str, np.ndarray], placements: Any) -> bytes:
    """The model: ``skeleton`` with each placement's int8 kernel bytes written at its offset."""
    model = bytearray(skeleton)
    for offset, name, layout in _placements(placements):
        if name not in kernels:
            raise BundleError(f"a placement names kernel {name!r}, which the download lacks.")
        data = laid_out(kernels[name], layout).tobytes()
        if offset < 0 or offset + len(data) > len(model):
            raise BundleError(f"{name}: placement at {offset} runs past the model's end.")
        if any(model[offset : offset + len(data)]):
            raise BundleError(f"{name}: placement at {offset} overlaps model bytes (corrupt).")
        model[offset : offset + len(data)] = data
    return bytes(model)


def read_download(data: bytes, *, public_key: Any, where: str = "download") -> Download:
    """Verifies a download bundle and rebuilds the artifact's files (see the module docstring).

    Args:
      data: the bundle's bytes.
      public_key: the trusted key (path, PEM bytes or key object) it must be signed with.
      where: the bundle's name in error messages.

    Raises:
      BundleError: unreadable, truncated, corrupt, not a download, or inconsistent.
      SignatureError: signed by another key, or modified after signing.
    """
    parsed = container.read(data, container.load_public_key(public_key), where=where)
    options = parsed.options
    if not isinstance(options, dict) or options.get("format") != FORMAT:
        raise BundleError(f"{where}: not a download bundle (format {FORMAT!r}); a weights .pfb?")
    arrays: dict[str, np.ndarray] = {}
    try:
        for record in parsed.records:
            arrays[record.name], _ = decode_record(record, parsed.record_bytes[record.name])
    except BundleError as err:
        raise BundleError(f"{where}: {err}") from None
    kernels = {n: snap(a).q for n, a in arrays.items() if n not in SIDE_RECORDS and a.ndim >= 2}
    try:
        sizes = options.get("bytes")
        if not isinstance(sizes, dict):
            raise BundleError("the options lack the files' sizes.")
        model = fill(
            inflate(_blob(arrays.get(SKELETON), SKELETON), sizes.get(MODEL), SKELETON),
            kernels,
            options.get("placements"),
        )
        q, e = arrays.get(BACKGROUND_Q), arrays.get(BACKGROUND_EXPONENT)
        if q is None or e is None or q.ndim != 2 or e.shape != (len(q),):
            raise BundleError("the background records are missing or of mismatched shapes.")
        if np.abs(q).max(initial=0) > 127 or np.any(q != np.rint(q)):
            raise BundleError("the background holds values outside int8.")
        background = npy.to_bytes(expand_background(q.astype(np.int8), e.astype(np.int8)))
        files = {
            MODEL: model,
            BACKGROUND: background,
            MANIFEST: inflate(
                _blob(arrays.get(MANIFEST_RECORD), MANIFEST_RECORD),
                sizes.get(MANIFEST),
                MANIFEST_RECORD,
            ),
            SIGNATURE: _blob(arrays.get(SIGNATURE_RECORD), SIGNATURE_RECORD),
        }
        if MINUTIAE_RECORD in arrays:
            files[BACKGROUND_MINUTIAE] = inflate(
                _blob(arrays[MINUTIAE_RECORD], MINUTIAE_RECORD),
                sizes.get(BACKGROUND_MINUTIAE),
                MINUTIAE_RECORD,
            )
    except BundleError as err:
        raise BundleError(f"{where}: {err}") from None
    return Download(files, parsed.nbytes, parsed.key_id.hex(), dict(parsed.record_bytes))
