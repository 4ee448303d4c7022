"""``.npy`` arrays to and from bytes, read without pickles and bounded by the bytes given.

The artifact's arrays (its background embeddings, the codebook and codes of its background
features) reach the device as verified bytes; this reads them in place (no second copy of the
stored values) and refuses object arrays and short data with a ``ValueError``.
"""

from __future__ import annotations

import io
import math
from tokenize import TokenError

import numpy as np


def to_bytes(array: np.ndarray) -> bytes:
    """``np.save`` of ``array`` as bytes (no pickle; C order, whatever the array's layout)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def read(data: bytes, offset: int = 0) -> tuple[np.ndarray, int]:
    """The array stored at ``data[offset:]`` (a read-only view of ``data``) and where it ends.

    Raises:
      ValueError: not an ``.npy`` array of format 1.0 or 2.0, an object array, or data that
        ends before the array does.
    """
    stream = io.BytesIO(data)
    stream.seek(offset)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version}")
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(stream)
    except (SyntaxError, TokenError, TypeError, OverflowError) as err:
        # numpy's header reader tokenizes and evaluates the header text: each can refuse it.
        raise ValueError(str(err)) from None
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed")
    if any(n < 0 for n in shape):
        raise ValueError(f"a negative dimension in shape {shape}")
    count = math.prod(shape)
    start = stream.tell()
    if count * dtype.itemsize > len(data) - start:
        raise ValueError(f"{count} values of {dtype} need more than the {len(data) - start} bytes")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    values = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    return values, start + count * dtype.itemsize
