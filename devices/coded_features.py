"""The background's front features as a codebook and XZ-compressed codes, lossless.

The wider scopes train against, and calibrate on, the background people's front features: the
int8 ``embed``'s ``features`` output, which takes at most 256 values (one scale, one zero point).
Stored as plain float16 they were 12.3 MB in the face artifact (1,000 people x 6,144 features).
Here they are kept as their distinct float16 values (the codebook: uint8 codes for 256 or fewer,
uint16 otherwise, and a float16 array never holds more than 65,536) and one code per value. The
people axis is last, so each feature's values over the people lie side by side, and the codes are
XZ-compressed (:mod:`devices.xz`). The face artifact's features take 3.4 MB, and decoding gives
the same float16 values (bit for bit on the committed artifacts; a negative zero, which ReLU
features never hold, would read as zero), so a device computes what it did with the plain file.

File layout: one XZ stream of ``npy(codebook float16, (k,))`` + ``npy(codes, (*features, n))``.
"""

from __future__ import annotations

import math

import numpy as np

from devices import npy, xz

MAX_INFLATED = 1 << 26  # 64 MiB of codebook and codes (the face artifact: 6 MiB); bounds a bomb
GATHER_CODES = 1 << 18  # codes looked up at once (2 MiB of intp indices)


def encode(features: np.ndarray) -> bytes:
    """``(n, *features)`` values (rounded to float16) -> the file's bytes.

    Raises:
      ValueError: not at least two axes with one row, or a value that is inf or NaN in float16.
    """
    values = np.asarray(features, np.float16)
    if values.ndim < 2 or not len(values):
        raise ValueError(f"features of shape {values.shape}: expected (people, *features).")
    if not np.isfinite(values).all():
        raise ValueError("features hold inf or NaN.")
    codebook, codes = np.unique(values, return_inverse=True)
    width = np.uint8 if len(codebook) <= 256 else np.uint16
    codes = np.moveaxis(codes.reshape(values.shape).astype(width), 0, -1)
    return xz.compress(npy.to_bytes(codebook) + npy.to_bytes(codes))


def decode(data: bytes) -> np.ndarray:
    """The file's bytes -> ``(n, *features)`` float16 values (what was stored: a device keeps
    them so, at half the bytes of float32, and widens a chunk at a time).

    Raises:
      ValueError: not one XZ stream (:func:`devices.xz.decompress`), inflating past
        :data:`MAX_INFLATED`, or a codebook and codes that do not fit each other.
    """
    body = xz.decompress(data, MAX_INFLATED)
    codebook, end = npy.read(body)
    codes, end = npy.read(body, end)
    if end != len(body):
        raise ValueError(f"{len(body) - end} bytes after the codes")
    if codebook.dtype != np.float16 or codebook.ndim != 1 or not len(codebook):
        raise ValueError(f"a codebook of {codebook.dtype} {codebook.shape}, expected float16 (k,)")
    if codes.dtype not in (np.uint8, np.uint16) or codes.ndim < 2 or not codes.shape[-1]:
        raise ValueError(
            f"codes of {codes.dtype} {codes.shape}, expected uint8|uint16 (..., n > 0)"
        )
    if codes.size and int(codes.max()) >= len(codebook):
        raise ValueError(f"a code {int(codes.max())} past the codebook's {len(codebook)} values")
    # Looked up a slice of people at a time: numpy turns an index array into intp (8 bytes a
    # code) before it gathers, which for every code at once would outgrow the values themselves.
    values = codebook
    out = np.empty((codes.shape[-1], *codes.shape[:-1]), np.float16)
    step = max(1, GATHER_CODES // max(1, math.prod(codes.shape[:-1])))
    for start in range(0, len(out), step):
        out[start : start + step] = values[np.moveaxis(codes[..., start : start + step], -1, 0)]
    return out
