"""``.npy`` bytes read in place: object arrays, negative shapes and short data refused."""

from __future__ import annotations

import numpy as np
import pytest

from devices import npy


def test_npy_read_refuses_object_arrays_and_short_data() -> None:
    with pytest.raises(ValueError, match="object arrays"):
        npy.read(_object_npy())
    data = npy.to_bytes(np.arange(10, dtype=np.int32))
    with pytest.raises(ValueError, match="need more"):
        npy.read(data[:-1])
    with pytest.raises(ValueError, match="negative dimension"):
        npy.read(npy.to_bytes(np.zeros((2, 3), np.uint8)).replace(b"(2, 3)", b"(-2, -3)"))
    values, end = npy.read(data)
    assert end == len(data) and values.tolist() == list(range(10))


def _object_npy() -> bytes:
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 8
