"""Reader for the idx format of the original MNIST files (gzip-compressed or raw).

References:
  LeCun, Cortes, Burges, "The MNIST database of handwritten digits" (file format section).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from pretrain.data.errors import DataError

# Third byte of the magic number -> element type; all big-endian.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_bytes(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Parses idx bytes into an array, checking the header against the payload length.

    Args:
      data: the whole (decompressed) file.
      name: shown in error messages.

    Returns:
      An array of the header's shape and type (native byte order).

    Raises:
      DataError: bad magic number, unknown type code, or a payload of the wrong length.
    """
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes is too short for an idx header.")
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{name}: bad idx magic number 0x{data[:4].hex()} (expected 0x0000TTNN with a known "
            f"type TT, e.g. 0x00000803 for images, 0x00000801 for labels)."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated header ({len(data)} bytes, need {header}).")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{name}: header says shape {shape} ({expected} bytes in all) but the file has "
            f"{len(data)} bytes; the file is truncated or not an idx file."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: Path) -> np.ndarray:
    """Reads an idx file; ``.gz`` files are decompressed."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: not a valid gzip file ({err}).") from err
    return read_idx_bytes(raw, name=str(path))
