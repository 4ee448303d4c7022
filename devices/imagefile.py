"""Decoding one image file with its claimed size bounded first, for the server and the device.

A header may claim any size and a TIFF's chain of pages may loop, so both readers check the
claimed pixel count before decoding and read a TIFF's first page only. Errors are ``ValueError``
(the callers turn them into their own error types, naming the file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

MAX_PIXELS = 1 << 26  # values in one image; a capture or a dataset image holds far fewer


def _check_size(shape: Sequence[int]) -> None:
    size = float(np.prod(np.asarray(shape, np.float64)))
    if size > MAX_PIXELS:
        raise ValueError(f"the image claims {size:,.0f} values, more than {MAX_PIXELS:,}")


def read_tiff(path: str | os.PathLike[str]) -> np.ndarray:
    """The first page of a TIFF file as stored."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        _check_size(page.shape)
        return np.asarray(page.asarray())


def read_pil(path: str | os.PathLike[str], keep: Sequence[str]) -> np.ndarray:
    """An image file Pillow reads, in its own mode if in ``keep``, else converted to ``L``."""
    from PIL import Image

    with Image.open(path) as image:
        _check_size(image.size)
        image.load()  # decode now, so truncated files fail here
        return np.asarray(image if image.mode in keep else image.convert("L"))
