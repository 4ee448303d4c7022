"""Reading capture files on the device: image files (PNG, JPEG, PGM, TIFF, BMP) and ``.npy``.

Image files are decoded with Pillow (TIFF with tifffile) into arrays as stored (uint8, uint16 or
RGB); the quality gate and the artifact's preprocessing take it from there. A ``.npy`` file holds
one image ``(h, w[, c])`` or a batch ``(n, h, w[, c])``; it is read without pickle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from devices import imagefile
from devices.imagefile import ImageReadError
from personalize.errors import PersonalizeError


class ImageFileError(PersonalizeError, ValueError):
    """A capture file that cannot be read; the message names it."""


def read_images(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """The image(s) in one file: a list of one for image files, of ``n`` for a ``.npy`` batch
    (:func:`devices.imagefile.read_images`)."""
    try:
        return imagefile.read_images(path)
    except ImageReadError as err:
        raise ImageFileError(str(err)) from None


def read_all(paths: Sequence[str | os.PathLike[str]]) -> list[np.ndarray]:
    """Every image in ``paths``, in order."""
    return [image for p in paths for image in read_images(p)]
