"""Decoding one image file with its claimed size bounded first, for the server and the device.

A header may claim any size and a TIFF's chain of pages may loop, so both readers check the
claimed pixel count before decoding and read a TIFF's first page only. Errors are ``ValueError``
(the callers turn them into their own error types, naming the file).

:func:`read_images` reads capture files (PNG, JPEG, PGM, TIFF, BMP) into arrays as stored
(uint8, uint16 or RGB), and ``.npy`` files holding one image ``(h, w[, c])`` or a batch
``(n, h, w[, c])``, read without pickle; :func:`read_folder` every such file of a folder.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_PIXELS = 1 << 26  # values in one image; a capture or a dataset image holds far fewer
EXTENSIONS = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".tif", ".tiff", ".bmp", ".npy")


class ImageReadError(ValueError):
    """A capture file that cannot be read; the message names it."""


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

    with warnings.catch_warnings():  # the size is bounded below (MAX_PIXELS), more tightly
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        opened = Image.open(path)
    with opened as image:
        _check_size(image.size)
        image.load()  # decode now, so truncated files fail here
        return np.asarray(image if image.mode in keep else image.convert("L"))


def read_images(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """The image(s) in one file: a list of one for image files, of ``n`` for a ``.npy`` batch.

    Raises:
      ImageReadError: no such file, an unknown type, or contents that do not decode.
    """
    file = Path(path)
    if not file.is_file():
        raise ImageReadError(f"{file}: no such file.")
    suffix = file.suffix.lower()
    if suffix not in EXTENSIONS:
        raise ImageReadError(
            f"{file}: unknown image type; expected one of {', '.join(EXTENSIONS)}."
        )
    try:
        if suffix == ".npy":
            array = np.load(file, allow_pickle=False)
            if array.ndim in (2, 3) and not (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
                return [array]
            if array.ndim in (3, 4):
                return list(array)
            raise ImageReadError(f"{file}: array of shape {array.shape} is not an image or batch.")
        if suffix in (".tif", ".tiff"):
            return [read_tiff(file)]
        return [read_pil(file, keep=("L", "RGB", "RGBA", "I;16"))]
    except ImageReadError:
        raise
    except Exception as err:  # decoders raise many types for corrupt files
        raise ImageReadError(f"{file}: cannot read ({type(err).__name__}: {err}).") from None


def read_folder(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Every image in the capture files of a folder (by name; other files are skipped), or in
    one file.

    Raises:
      ImageReadError: no such folder or file, a folder without capture files, or a file that
        does not decode.
    """
    base = Path(path)
    if base.is_file():
        return read_images(base)
    if not base.is_dir():
        raise ImageReadError(f"{base}: no such folder or file.")
    files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        raise ImageReadError(f"{base}: no capture files ({', '.join(EXTENSIONS)}) in it.")
    return [image for f in files for image in read_images(f)]
