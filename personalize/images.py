"""Reading capture files on the device: image files (PNG, JPEG, PGM, TIFF, BMP) and ``.npy``.

Image files are decoded with Pillow (TIFF with tifffile) into arrays as stored (uint8, uint16 or
RGB); the quality gate and the artifact's preprocessing take it from there. A ``.npy`` file holds
one image ``(h, w[, c])`` or a batch ``(n, h, w[, c])``; it is read without pickle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from devices.imagefile import read_pil, read_tiff
from personalize.errors import PersonalizeError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".tif", ".tiff", ".bmp", ".npy")


class ImageFileError(PersonalizeError, ValueError):
    """A capture file that cannot be read; the message names it."""


def read_images(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """The image(s) in one file: a list of one for image files, of ``n`` for a ``.npy`` batch."""
    file = Path(path)
    if not file.is_file():
        raise ImageFileError(f"{file}: no such file.")
    suffix = file.suffix.lower()
    if suffix not in EXTENSIONS:
        raise ImageFileError(
            f"{file}: unknown image type; expected one of {', '.join(EXTENSIONS)}."
        )
    try:
        if suffix == ".npy":
            array = np.load(file, allow_pickle=False)
            if array.ndim in (2, 3) and not (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
                return [array]
            if array.ndim in (3, 4):
                return list(array)
            raise ImageFileError(f"{file}: array of shape {array.shape} is not an image or batch.")
        if suffix in (".tif", ".tiff"):
            return [read_tiff(file)]
        return [read_pil(file, keep=("L", "RGB", "RGBA", "I;16"))]
    except ImageFileError:
        raise
    except Exception as err:  # decoders raise many types for corrupt files
        raise ImageFileError(f"{file}: cannot read ({type(err).__name__}: {err}).") from None


def read_all(paths: Sequence[str | os.PathLike[str]]) -> list[np.ndarray]:
    """Every image in ``paths``, in order."""
    return [image for p in paths for image in read_images(p)]
