"""Prints' minutiae and readable masks as a user record and an artifact keep them, and the
fingerprint score they add to the embedding's.

A fingerprint capture is scored by the embedding (its cosine with the owner, by the device's
match rule) plus :data:`FUSION_WEIGHT` times the best minutiae score
(:func:`devices.minutiae_match.match_score`, over the two prints' readable overlap) between the
capture and the owner's enrollment prints. The minutiae come from the learned detector
(:class:`devices.minutiae_detector.MinutiaeDetector`), the masks from
:func:`devices.readable.readable_mask`, both on the capture at 500 dpi. A mask is kept in the
detector's :data:`~devices.minutiae_detector.CELL`-px cells, a cell readable where any of its
pixels is (:func:`cell_mask`; 16x fewer values for records and the artifact's background). On
the held-out training identities the matcher chose its recipe on (1300-1349 x 8, detected
minutiae; 2026-12-07) the cells cost nothing measurable: matcher EER 15.2% on flowmix prints
and 15.5% on twin prints (twin EER 19.7) against 15.7% and 15.4% (19.8) with pixel masks; a cell
readable at its centre pixel 15.9 / 16.0, where all its pixels are 15.7 / 15.6.

Why (``notebooks/results/fingerprint_ablation.md``, "The matcher over the overlap",
``minutiae_fusion.json``): on the development prints (synthetic validation identities 0-99,
never trained on) the pairwise sum cosine + w x minutiae score at w 0.25, the best of the fixed
grid 0.25 .. 4 on both dev sets, beat the embedding alone by 0.57 (flowmix prints) and 0.81
(twin prints) points EER, past the 0.5 registered beforehand. FVC was read after, reported only.

The detector's weights ship with this package (``devices/minutiae_detector.npz``, trained by
``python -m pretrain minutiae-detector``). An artifact that fuses lists them by SHA-256 in its
manifest's ``minutiae`` entry (with the weight and the cell size; :func:`fusion_entry`), so
that a device with other weights refuses it, and ships the background people's prints (the same
people and order as its background embeddings) as :data:`devices.contract.BACKGROUND_MINUTIAE`
(:func:`prints_bytes`, :func:`read_prints`).

Stored form (:func:`to_arrays`): the minutiae of ``k`` prints stacked ``(n, 4)`` float32 with
their counts, and the cell masks' shapes with their bits packed row-major and zlib-compressed (a
320 x 320 print's 80 x 80 cells are 800 bytes packed, about 60 compressed: the masks are
blobs).
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from devices.contract import BACKGROUND_MINUTIAE
from devices.minutiae_detector import CELL, MinutiaeDetector
from devices.minutiae_match import match_score
from devices.readable import readable_mask

FUSION_WEIGHT = 0.25  # the minutiae score's weight beside the cosine (chosen on dev prints)
# Peak bytes per pixel of a 500 dpi print that describe() allocates: the detector's float32
# activations (tracemalloc: 129.6 at 256 x 256, 128.5 at 600 x 600), then the readable mask's
# float64 filters (100.1 at 256 x 256, 98.7 at 480 x 448); a few percent over the largest.
DESCRIBE_BYTES_PER_PX = 136
FIELDS = ("minutiae", "counts", "shapes", "masks")  # the arrays of the stored form
DETECTOR_WEIGHTS = Path(__file__).with_name("minutiae_detector.npz")  # shipped, pinned


class PrintSetError(ValueError):
    """Stored prints that do not decode, or do not agree with themselves."""


class Detector(Protocol):
    """What :func:`describe` needs of a detector (:class:`devices.MinutiaeDetector`)."""

    def detect(self, gray: np.ndarray) -> np.ndarray: ...


class PrintSet(NamedTuple):
    """Some prints' minutiae (``(n_k, 4)`` float32 x, y, angle, kind) and readable masks (in
    :data:`~devices.minutiae_detector.CELL`-px cells)."""

    minutiae: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray, ...]

    @property
    def size(self) -> int:
        """How many prints."""
        return len(self.minutiae)

    def take(self, rows: Sequence[int] | np.ndarray) -> PrintSet:
        """The prints ``rows``, in that order."""
        return PrintSet(
            tuple(self.minutiae[int(i)] for i in rows), tuple(self.masks[int(i)] for i in rows)
        )


def cell_mask(mask: np.ndarray) -> np.ndarray:
    """A pixel mask in :data:`~devices.minutiae_detector.CELL`-px cells (the frame's partial
    cells included): a cell is true where any of its pixels is."""
    h, w = mask.shape
    padded = np.zeros((-(-h // CELL) * CELL, -(-w // CELL) * CELL), bool)
    padded[:h, :w] = mask
    return np.asarray(padded.reshape(padded.shape[0] // CELL, CELL, -1, CELL).any(axis=(1, 3)))


def working_bytes(shape: Sequence[int]) -> int:
    """Peak bytes :func:`describe` allocates for one print of ``shape`` (``(h, w, ...)``; one
    print at a time), for a device's memory plan."""
    return DESCRIBE_BYTES_PER_PX * int(shape[0]) * int(shape[1])


def describe(detector: Detector, grays: Iterable[np.ndarray]) -> PrintSet:
    """The minutiae and cell masks of uint8 500 dpi prints (read once each, in order)."""
    found = [
        (np.asarray(detector.detect(g), np.float32), cell_mask(readable_mask(g))) for g in grays
    ]
    return PrintSet(tuple(m for m, _ in found), tuple(mask for _, mask in found))


def best_scores(probes: PrintSet, owner: PrintSet) -> np.ndarray:
    """``(len(probes),)``: each probe's best minutiae score against any of ``owner``'s prints
    (0 when the owner has none)."""
    out = np.zeros(probes.size)
    for i, (m, mask) in enumerate(zip(probes.minutiae, probes.masks, strict=True)):
        scores = [
            match_score(m, o, mask, o_mask, cell=CELL)
            for o, o_mask in zip(owner.minutiae, owner.masks, strict=True)
        ]
        out[i] = max(scores, default=0.0)
    return out


def to_arrays(prints: PrintSet, prefix: str = "") -> dict[str, np.ndarray]:
    """The stored form (:data:`FIELDS`, each name after ``prefix``)."""
    counts = np.array([len(m) for m in prints.minutiae], np.int32)
    stacked = [np.asarray(m, np.float32).reshape(-1, 4) for m in prints.minutiae]
    minutiae = np.concatenate(stacked) if stacked else np.zeros((0, 4), np.float32)
    shapes = np.array([m.shape for m in prints.masks], np.int32).reshape(-1, 2)
    packed = b"".join(np.packbits(np.asarray(m, bool).ravel()).tobytes() for m in prints.masks)
    masks = np.frombuffer(zlib.compress(packed, 9), np.uint8)
    values: tuple[np.ndarray, ...] = (minutiae, counts, shapes, masks)
    return {prefix + name: value for name, value in zip(FIELDS, values, strict=True)}


def from_arrays(arrays: Mapping[str, np.ndarray], prefix: str = "") -> PrintSet:
    """The prints :func:`to_arrays` stored.

    Raises:
      PrintSetError: a field is missing, or the fields do not agree (counts, shapes, bytes).
    """
    try:
        minutiae, counts, shapes, masks = (np.asarray(arrays[prefix + f]) for f in FIELDS)
        packed = zlib.decompress(masks.astype(np.uint8).tobytes())
    except (KeyError, zlib.error) as err:
        raise PrintSetError(f"stored prints do not decode: {type(err).__name__}: {err}") from None
    counts = counts.astype(np.int64).ravel()
    shapes = shapes.astype(np.int64).reshape(-1, 2)
    sizes = (np.prod(shapes, axis=1) + 7) // 8
    ok = minutiae.ndim == 2 and minutiae.shape[1] == 4 and len(counts) == len(shapes)
    if not (ok and np.all(counts >= 0) and counts.sum() == len(minutiae)):
        raise PrintSetError(
            f"stored prints disagree: {len(counts)} counts summing to {counts.sum()}, minutiae "
            f"{minutiae.shape}, {len(shapes)} mask shapes."
        )
    if np.any(shapes <= 0) or int(sizes.sum()) != len(packed):
        raise PrintSetError(
            f"stored masks hold {len(packed)} bytes; their shapes need {sizes.sum()}."
        )
    if not np.all(np.isfinite(minutiae)):
        raise PrintSetError("stored minutiae are not finite.")
    bits = np.frombuffer(packed, np.uint8)
    ends = np.cumsum(sizes)
    mask_list = tuple(
        np.unpackbits(bits[e - s : e])[: h * w].reshape(h, w).astype(bool)
        for (h, w), s, e in zip(shapes, sizes, ends, strict=True)
    )
    rows = tuple(np.split(minutiae.astype(np.float32), np.cumsum(counts)[:-1]))
    return PrintSet(rows if len(counts) else (), mask_list)


class Fusion(NamedTuple):
    """What a device needs for the fingerprint fusion: the detector, the background people's
    prints (row for row the artifact's background embeddings) and the minutiae score's weight."""

    detector: MinutiaeDetector
    background: PrintSet
    weight: float


def prints_bytes(prints: PrintSet) -> bytes:
    """The artifact's file of the background people's prints (an uncompressed ``.npz`` of
    :func:`to_arrays`)."""
    buffer = io.BytesIO()
    save: Any = np.savez  # the stubs reserve keyword names for options
    save(buffer, **to_arrays(prints))
    return buffer.getvalue()


def read_prints(data: bytes, where: str) -> PrintSet:
    """The prints of :func:`prints_bytes`' file (``where`` names it in errors).

    Raises:
      PrintSetError: not a readable file of prints.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return from_arrays(arrays)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise PrintSetError(f"{where}: not a file of prints ({err}).") from None


@functools.cache
def detector_sha256(path: Path = DETECTOR_WEIGHTS) -> str:
    """The SHA-256 of the detector's weights shipped with this package."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def shipped_detector() -> MinutiaeDetector:
    """The detector whose weights ship with this package (``devices/minutiae_detector.npz``)."""
    return MinutiaeDetector.load(DETECTOR_WEIGHTS)


def fusion_entry(count: int, weight: float = FUSION_WEIGHT) -> dict[str, Any]:
    """The artifact manifest's ``minutiae`` entry for ``count`` background prints."""
    return {
        "file": BACKGROUND_MINUTIAE,
        "count": count,
        "weight": weight,
        "detector_sha256": detector_sha256(),
        "cell": CELL,
    }


def fusion_of(entry: Any, prints: PrintSet, background_rows: int, where: str) -> Fusion:
    """The device's :class:`Fusion` from the manifest's ``minutiae`` entry and the background
    prints read from its file.

    Raises:
      PrintSetError: the entry is malformed, pins other detector weights than the ones shipped
        here, or counts other prints than the file (or the background embeddings) holds.
    """
    ok = isinstance(entry, dict) and isinstance(entry.get("weight"), int | float)
    if not ok or not np.isfinite(entry["weight"]) or entry["weight"] <= 0:
        raise PrintSetError(f"{where}: the manifest's minutiae entry {entry!r} is malformed.")
    if entry.get("detector_sha256") != detector_sha256() or entry.get("cell") != CELL:
        raise PrintSetError(
            f"{where}: the artifact was exported for minutiae detector weights "
            f"{str(entry.get('detector_sha256'))[:12]}, this device has "
            f"{detector_sha256()[:12]} (devices/minutiae_detector.npz): install the pocketfit "
            "it was exported with, or export it again."
        )
    if not prints.size == entry.get("count") == background_rows:
        raise PrintSetError(
            f"{where}: {prints.size} background prints, the manifest says {entry.get('count')}, "
            f"the background holds {background_rows} embeddings."
        )
    return Fusion(shipped_detector(), prints, float(entry["weight"]))
