"""AT&T / ORL faces under ``$POCKETFIT_DATA/orl_faces/``: 40 subjects x 10 images, 92x112 PGM.

References:
  Samaria, Harter, "Parameterisation of a stochastic model for human face identification",
  IEEE Workshop on Applications of Computer Vision, 1994 (credit: Olivetti Research Laboratory /
  AT&T Laboratories Cambridge).
"""

from __future__ import annotations

import os

from devices.preprocess import FACE_SPEC, PreprocessSpec
from pretrain.data.dataset import ArrayDataset
from pretrain.data.errors import DataError, DataNotFoundError
from pretrain.data.folders import ImageSet, build_set
from pretrain.data.paths import ENV_VAR, dataset_dir

SUBJECTS = 40
IMAGES_PER_SUBJECT = 10
IMAGE_SIZE = (112, 92)  # (height, width)


def read_orl(root: str | os.PathLike[str] | None = None) -> ImageSet:
    """Reads the 400 ORL faces as uint8 ``(112, 92)``; label ``k`` is subject ``s<k+1>``.

    Raises:
      DataNotFoundError: the folder or some of ``s<N>/<k>.pgm`` are missing (listed).
      DataError: an image is unreadable or not 92x112 (the file is named).
    """
    hint = "s1/1.pgm .. s40/10.pgm"
    base = dataset_dir("orl_faces", [hint], root)
    groups = []
    missing = []
    for subject in range(1, SUBJECTS + 1):
        files = [base / f"s{subject}" / f"{k}.pgm" for k in range(1, IMAGES_PER_SUBJECT + 1)]
        missing += [str(p.relative_to(base)) for p in files if not p.is_file()]
        groups.append((f"s{subject}", files))
    if missing:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        raise DataNotFoundError(
            f"ORL faces incomplete in {base} ({ENV_VAR}/orl_faces): missing {shown}. Expected "
            f"{SUBJECTS} folders s1..s{SUBJECTS} with 1.pgm..{IMAGES_PER_SUBJECT}.pgm each."
        )
    faces = build_set(groups, "orl")
    for image, path in zip(faces.images, faces.paths, strict=True):
        if image.shape != IMAGE_SIZE:
            raise DataError(
                f"{path}: ORL images are 92x112 (w x h), this one is "
                f"{image.shape[1]}x{image.shape[0]}."
            )
    return faces


def load_orl(
    root: str | os.PathLike[str] | None = None, spec: PreprocessSpec = FACE_SPEC
) -> ArrayDataset:
    """The 400 ORL faces preprocessed with ``spec`` (default 64x64x1), labels 0..39."""
    return read_orl(root).preprocess(spec)
