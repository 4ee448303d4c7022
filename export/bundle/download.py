"""The download's writer: a built artifact packed into one signed ``.pfb`` (numpy only).

:func:`build_download` packs an artifact into the format of :mod:`devices.bundle.download`: the
coded kernels of its compressed backbone, the model file with their int8 buffers zeroed (XZ),
the background as small integers and the signed manifest; it decodes the result before returning
it and refuses it unless every file comes back byte for byte.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

import devices.bundle.container as container
from devices.bundle import download as dl
from devices.bundle.codec import Coded, decode_record, encode_tensor
from devices.bundle.errors import BundleError
from devices.bundle.grid import snap
from devices.contract import BACKGROUND, BACKGROUND_MINUTIAE, MANIFEST, MODEL, SIGNATURE

DOWNLOAD_FILES = (MODEL, BACKGROUND, MANIFEST, SIGNATURE)
OPTIONAL_FILES = (BACKGROUND_MINUTIAE,)  # carried as they are (XZ) when the artifact has them
_MIN_PLACED_BYTES = 16  # shorter byte strings could match by chance


def as_coded(kernel: np.ndarray) -> Coded:
    """A decoded shared kernel as codebook + codes again (its distinct values, zero first)."""
    values = np.asarray(kernel, np.float32)
    book = np.unique(values[values != 0])
    codes = np.zeros(values.shape, np.int64)
    nz = values != 0
    codes[nz] = np.searchsorted(book, values[nz]) + 1
    return Coded(np.concatenate([[0.0], book]).astype(np.float32), codes)


def _placements(model: bytes, kernels: Mapping[str, np.ndarray]) -> list[list[Any]]:
    """``[offset, kernel, layout]`` of every occurrence of each kernel's int8 bytes in ``model``.

    Raises:
      BundleError: a kernel the model does not hold exactly (built from other weights).
    """
    taken: list[tuple[int, int]] = []
    out: list[list[Any]] = []
    for name, q in kernels.items():
        found = False
        for layout in dl.LAYOUTS:
            data = dl.laid_out(q, layout).tobytes()
            if len(data) < _MIN_PLACED_BYTES or not any(data):
                found = True  # too short or all zero: left in the skeleton
                continue
            at = model.find(data)
            while at >= 0:
                end = at + len(data)
                if all(end <= a or at >= b for a, b in taken):
                    taken.append((at, end))
                    out.append([at, name, layout])
                    found = True
                at = model.find(data, at + 1)
        if not found:
            raise BundleError(
                f"the model does not hold kernel {name} on its int8 grid: build the artifact from "
                "compressed_backbone(...) of this bundle."
            )
    return sorted(out)


def background_coded(q: np.ndarray) -> Coded:
    """A background grid's integers ``q`` (-127..127) as a codebook (zero first) and indices,
    which the download Huffman-codes by their frequencies."""
    book = np.concatenate([[0], np.arange(-127, 0), np.arange(1, 128)]).astype(np.float32)
    v = np.asarray(q).astype(np.int64)
    return Coded(book, np.where(v < 0, v + 128, np.where(v > 0, v + 127, 0)))


def _background_records(background_npy: bytes, levels: int) -> list[Any]:
    values = np.load(io.BytesIO(background_npy), allow_pickle=False)
    q, e = dl.compact_background(values, levels)
    if not np.array_equal(dl.expand_background(q, e).view(np.uint16), values.view(np.uint16)):
        raise BundleError(
            f"{BACKGROUND} is not on a {levels}-level power-of-two grid; build the artifact "
            "with background_levels set."
        )
    return [
        encode_tensor(dl.BACKGROUND_Q, background_coded(q), codebook_dtype="float16"),
        encode_tensor(dl.BACKGROUND_EXPONENT, e, raw_dtype="int8"),
    ]


def _bytes_record(name: str, data: bytes) -> Any:
    return encode_tensor(name, np.frombuffer(data, np.uint8), raw_dtype="uint8")


def build_download(
    files: Mapping[str, bytes],
    kernels: Mapping[str, Coded],
    *,
    model: str,
    private_key: Any,
    codebook_dtype: str = "float16",
) -> bytes:
    """One signed bundle from which :func:`devices.bundle.download.read_download` rebuilds
    ``files`` (an artifact's) byte for byte.

    Args:
      files: the artifact's files: model, background, manifest and its signature, and the
        background's prints when it has them (:data:`OPTIONAL_FILES`).
      kernels: the compressed backbone's kernels by leaf path (``"block3/pointwise/kernel"``).
      model: the backbone's registered model name (recorded in the container).
      private_key: Ed25519 key signing the bundle.
      codebook_dtype: the kernels' codebook entries (the artifact was built from their decoded,
        snapped values: use the OTA bundle's).

    Raises:
      BundleError: other files, a model that does not hold the kernels exactly, or a rebuild that
        differs.
    """
    extra = sorted(set(files) - set(DOWNLOAD_FILES) - set(OPTIONAL_FILES))
    if extra or set(DOWNLOAD_FILES) - set(files):
        raise BundleError(
            f"a download carries {', '.join(DOWNLOAD_FILES)}; the artifact has "
            f"{', '.join(sorted(files))} (wider scopes ship front features: build the download "
            "from a head-only artifact)."
        )
    records = [
        encode_tensor(n, k, codebook_dtype=codebook_dtype, raw_dtype=codebook_dtype)
        for n, k in kernels.items()
    ]
    q = {r.name: snap(decode_record(r, 0)[0]).q for r in records}
    placements = _placements(files[MODEL], q)
    skeleton = bytearray(files[MODEL])
    for at, name, _ in placements:
        skeleton[at : at + q[name].size] = bytes(q[name].size)
    levels = json.loads(files[MANIFEST])["background"].get("levels")
    if not isinstance(levels, int):
        raise BundleError(
            "the manifest records no background levels: build the artifact with "
            "background_levels set."
        )
    records += [
        _bytes_record(dl.SKELETON, dl.deflate(bytes(skeleton))),
        *_background_records(files[BACKGROUND], levels),
        _bytes_record(dl.MANIFEST_RECORD, dl.deflate(files[MANIFEST])),
        _bytes_record(dl.SIGNATURE_RECORD, files[SIGNATURE]),
    ]
    sizes = {MODEL: len(files[MODEL]), MANIFEST: len(files[MANIFEST])}
    if BACKGROUND_MINUTIAE in files:
        records.append(_bytes_record(dl.MINUTIAE_RECORD, dl.deflate(files[BACKGROUND_MINUTIAE])))
        sizes[BACKGROUND_MINUTIAE] = len(files[BACKGROUND_MINUTIAE])
    options = {"format": dl.FORMAT, "bytes": sizes, "placements": placements}
    blob = container.write(model, options, records, private_key)
    rebuilt = dl.read_download(blob, public_key=private_key.public_key()).files
    wrong = [n for n in files if rebuilt.get(n) != files[n]]
    if wrong:
        raise BundleError(f"the download does not rebuild {', '.join(wrong)} byte for byte.")
    return blob
