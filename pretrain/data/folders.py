"""Images grouped by identity: reading image files and the generic folder-per-identity layout.

``<root>/<identity>/<any name>.{png,jpg,jpeg,pgm,ppm,tif,tiff,bmp}``: each sub-folder is one
identity (label = rank of its name in sorted order). Images are read as uint8 grayscale; the
model input comes from :func:`devices.preprocess.preprocess` with the modality's spec.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from devices.imagefile import read_pil, read_tiff
from devices.preprocess import PreprocessError, PreprocessSpec, preprocess_batch, to_gray_u8
from pretrain.data.dataset import ArrayDataset
from pretrain.data.errors import DataError, DataNotFoundError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".tif", ".tiff", ".bmp")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads one image file as uint8 grayscale ``(h, w)``.

    Raises:
      DataNotFoundError: the file does not exist.
      DataError: the file is not a readable image (corrupt, truncated, empty, unknown format).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such image file.")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            array = read_tiff(path)
        else:
            array = read_pil(path, keep=("L", "RGB", "RGBA", "I;16", "I", "F"))
    except Exception as err:  # decoders raise many types for corrupt files (pretrain.fuzz)
        raise DataError(f"{path}: cannot read image ({type(err).__name__}: {err}).") from err
    if array.size == 0:
        raise DataError(f"{path}: cannot read image (no pixel data; corrupt or truncated file).")
    try:
        return to_gray_u8(array)
    except PreprocessError as err:
        raise DataError(f"{path}: cannot read image ({err})") from err


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """Raw uint8 grayscale images (sizes may differ) with identity labels.

    Attributes:
      images: one ``(h, w)`` uint8 array per file.
      labels: int32 ``(n,)``, the index of each image's identity in ``identities``.
      identities: identity names (folder names, finger ids, ...), sorted.
      paths: the file each image came from.
      name: where the set came from, for messages and result files.
    """

    images: tuple[np.ndarray, ...]
    labels: np.ndarray
    identities: tuple[str, ...]
    paths: tuple[Path, ...]
    name: str

    def __len__(self) -> int:
        return len(self.images)

    def preprocess(self, spec: PreprocessSpec) -> ArrayDataset:
        """The model inputs ``(n, *spec.shape)`` float32 with the labels, as an ArrayDataset."""
        try:
            images = preprocess_batch(self.images, spec)
        except PreprocessError as err:
            raise DataError(f"{self.name}: {err}") from err
        return ArrayDataset(images, self.labels, self.name)


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (by extension), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def build_set(
    groups: Sequence[tuple[str, Sequence[Path]]],
    name: str,
    *,
    read: Callable[[Path], np.ndarray] = read_image,
    progress: bool = False,
) -> ImageSet:
    """Reads ``[(identity, files), ...]`` into an :class:`ImageSet` (identities in given order).

    Args:
      groups: each identity's name and image files.
      name: where the set came from, for messages.
      read: reads one file (default :func:`read_image`; a loader may frame or crop as it reads).
      progress: show a progress bar over the files.
    """
    images, labels, paths = [], [], []
    total = sum(len(files) for _, files in groups)
    with tqdm(total=total, desc=f"reading {name}", unit="img", disable=not progress) as bar:
        for label, (_, files) in enumerate(groups):
            for path in files:
                images.append(read(path))
                labels.append(label)
                paths.append(path)
                bar.update()
    return ImageSet(
        tuple(images),
        np.asarray(labels, np.int32),
        tuple(identity for identity, _ in groups),
        tuple(paths),
        name,
    )


def read_folder(root: str | os.PathLike[str], *, min_images: int = 1) -> ImageSet:
    """Reads a folder-per-identity tree.

    Args:
      root: folder whose sub-folders are identities.
      min_images: fewest images an identity may have.

    Returns:
      An :class:`ImageSet`; labels follow the sorted sub-folder names.

    Raises:
      DataNotFoundError: ``root`` is not a folder.
      DataError: no identity sub-folders (the message says what was found instead), an identity
        with fewer than ``min_images`` images, or an unreadable image (named).
    """
    base = Path(root)
    if not base.is_dir():
        raise DataNotFoundError(
            f"{base}: not a folder. Expected <root>/<identity>/<image>{'|'.join(EXTENSIONS)}."
        )
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = image_files(base)
        found = f"{len(loose)} loose image files (e.g. {loose[0].name})" if loose else "nothing"
        raise DataError(
            f"{base}: unknown layout - expected one sub-folder per identity holding images "
            f"({', '.join(EXTENSIONS)}), found {found}."
        )
    groups = []
    for folder in folders:
        files = image_files(folder)
        if len(files) < min_images:
            raise DataError(
                f"{folder}: identity {folder.name!r} has {len(files)} image(s), needs at least "
                f"{min_images} ({', '.join(EXTENSIONS)})."
            )
        groups.append((folder.name, files))
    return build_set(groups, base.name)


def load_folder(
    root: str | os.PathLike[str], spec: PreprocessSpec, *, min_images: int = 1
) -> ArrayDataset:
    """Reads a folder-per-identity tree and preprocesses it with ``spec``."""
    return read_folder(root, min_images=min_images).preprocess(spec)
