"""Faces for pretraining: LFW and Extended Yale B, cut to ORL's framing on reading.

``lfw/<First_Last>/<First_Last>_NNNN.jpg`` (5,749 people, 13,233 aligned 250x250 grey JPEGs) and
``extended_yale_b/yaleBNN/yaleBNN_P00A<az>E<el>.png`` (38 people, 2,414 cropped 168x192 faces)
under ``$POCKETFIT_DATA``. Each image goes through :func:`devices.preprocess.frame_face` with the
dataset's :class:`~devices.preprocess.FaceFrame`, so a returned image has ORL's framing (forehead
to chin, aspect 92:112) and is ready for a ``crop="none"`` face spec.

References:
  Huang, Ramesh, Berg, Learned-Miller, "Labeled Faces in the Wild: a database for studying face
  recognition in unconstrained environments", UMass Amherst TR 07-49, 2007.
  Georghiades, Belhumeur, Kriegman, "From few to many", TPAMI 2001; Lee, Ho, Kriegman,
  "Acquiring linear subspaces for face recognition under variable lighting", TPAMI 2005.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from devices.preprocess import FACE_FRAMES, FaceFrame, PreprocessError, frame_face, resize
from pretrain.data.errors import DataError, DataNotFoundError
from pretrain.data.faces import read_orl
from pretrain.data.folders import ImageSet, build_set, image_files, read_image
from pretrain.data.paths import ENV_VAR, dataset_dir

LFW = "lfw"
YALE_B = "extended_yale_b"
LAYOUTS = {
    LFW: "<First_Last>/<First_Last>_NNNN.jpg (250x250 grey)",
    YALE_B: "yaleBNN/yaleBNN_P00A<azimuth>E<elevation>.png (168x192)",
}


def identity_folders(name: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The identity sub-folders of face dataset ``name``, sorted by name.

    Raises:
      DataNotFoundError: the dataset folder is missing or holds no identity folders.
    """
    base = dataset_dir(name, [LAYOUTS[name]], root)
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataNotFoundError(
            f"{base} ({ENV_VAR}/{name}) holds no identity folders; expected {LAYOUTS[name]}."
        )
    return folders


def read_framed(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    people: Sequence[str] | None = None,
    progress: bool = True,
) -> ImageSet:
    """Reads face dataset ``name`` (``"lfw"`` or ``"extended_yale_b"``) cut to ORL's framing.

    Args:
      name: a key of :data:`devices.preprocess.FACE_FRAMES`.
      root: override for ``$POCKETFIT_DATA``.
      people: read only these identity folders (in this order); None reads every one, sorted.
      progress: a progress bar over the files.

    Returns:
      An :class:`ImageSet` of uint8 ``(frame.height, frame.width)`` images; label ``k`` is
      ``identities[k]``; within an identity the files keep their sorted order.

    Raises:
      DataNotFoundError: the folder, or a requested person, is missing.
      DataError: an unreadable image, or one whose size the dataset's frame does not fit.
    """
    if name not in FACE_FRAMES:
        raise DataError(f"no face frame for {name!r}; known: {', '.join(sorted(FACE_FRAMES))}.")
    frame: FaceFrame = FACE_FRAMES[name]
    folders = identity_folders(name, root)
    if people is not None:
        by_name = {p.name: p for p in folders}
        missing = [p for p in people if p not in by_name]
        if missing:
            raise DataNotFoundError(
                f"{len(missing)} requested {name} people have no folder (e.g. {missing[0]!r}) "
                f"under {ENV_VAR}/{name}."
            )
        folders = [by_name[p] for p in people]
    groups = [(folder.name, image_files(folder)) for folder in folders]

    def framed(path: Path) -> np.ndarray:
        try:
            return frame_face(read_image(path), frame)
        except PreprocessError as err:
            raise DataError(f"{path}: {err}") from err

    return build_set(groups, name, read=framed, progress=progress)


def image_counts(name: str, root: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """Images per identity of face dataset ``name`` (file names only, nothing decoded)."""
    return {folder.name: len(image_files(folder)) for folder in identity_folders(name, root)}


def framing_gallery(
    out: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    per_set: int = 6,
    size: tuple[int, int] = (112, 92),
    seed: int = 0,
) -> Path:
    """Writes a PNG of faces cut to ORL's framing: a row each of LFW, Extended Yale B and ORL.

    LFW and Yale B rows show random people (``seed``) through their frames; ORL's row is its own
    images, the framing the others copy. Every face is area-resized to ``size`` (height, width).
    """
    if per_set < 1:
        raise ValueError(f"per_set must be >= 1 faces a row, got {per_set}.")
    rng = np.random.default_rng(seed)
    rows = []
    for name in (LFW, YALE_B):
        folders = identity_folders(name, root)
        picks = [folders[i] for i in rng.choice(len(folders), per_set, replace=False)]
        files = [image_files(folder)[0] for folder in picks]
        rows.append([frame_face(read_image(f), FACE_FRAMES[name]) for f in files])
    orl = read_orl(root)
    rows.append([orl.images[i] for i in rng.choice(len(orl), per_set, replace=False)])
    gap = 4
    h, w = size
    canvas = np.full((3 * h + 2 * gap, per_set * w + (per_set - 1) * gap), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            tile = np.clip(np.rint(resize(image, size, "area")), 0, 255).astype(np.uint8)
            canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return path
