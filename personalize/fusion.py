"""The fingerprint fusion on the device: the minutiae score beside the embedding's.

An artifact that ships its background people's prints (:mod:`devices.print_minutiae`; the
manifest's ``minutiae`` entry) lets a :class:`~personalize.Device` whose
:class:`~personalize.head.MatchConfig` asks for it (``minutiae=True``) score a capture as the
embedding's score plus the entry's weight times the best minutiae score between the capture and
the owner's enrollment prints. Enrollment finds the owner's prints (the detector that ships with
``devices`` and the readable mask, on the raw captures at 500 dpi), keeps them in the encrypted
record, and sets the threshold on the background people's fused scores (the same people and
rows as the embedding's background), so the target FAR holds for the score the device compares.

A record keeps its prints exactly when its threshold was set on fused scores: scoring follows
the record, not the Device's current settings (as the match rule does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from devices.contract import ArtifactError
from devices.preprocess import to_gray_u8
from devices.print_minutiae import (
    Fusion,
    PrintSet,
    PrintSetError,
    best_scores,
    describe,
    fusion_of,
)
from personalize.artifact import Artifact


class PrintFusion:
    """The fusion an artifact ships (its detector, background prints and weight)."""

    def __init__(self, fusion: Fusion) -> None:
        self.fusion = fusion

    @property
    def weight(self) -> float:
        """The minutiae score's weight in fused scores (the artifact's)."""
        return self.fusion.weight

    @classmethod
    def of(cls, artifact: Artifact) -> PrintFusion | None:
        """The artifact's fusion, or None when it ships none.

        Raises:
          ArtifactError: the manifest's ``minutiae`` entry does not agree with the file, the
            background embeddings or the detector weights this package ships.
        """
        if artifact.prints is None:
            return None
        rows = len(artifact.background)
        try:
            entry = artifact.manifest["minutiae"]
            return cls(fusion_of(entry, artifact.prints, rows, str(artifact.directory)))
        except PrintSetError as err:
            raise ArtifactError(str(err)) from None

    @property
    def held_bytes(self) -> int:
        """What the fusion keeps resident: the detector's weights and the background prints."""
        detector = self.fusion.detector
        weights = sum(w.nbytes for w in detector.weights) + sum(b.nbytes for b in detector.biases)
        background = self.fusion.background
        prints = sum(m.nbytes for m in background.minutiae) + sum(
            m.nbytes for m in background.masks
        )
        return weights + prints

    def describe(self, captures: Sequence[np.ndarray]) -> PrintSet:
        """The minutiae and readable masks of raw captures at 500 dpi."""
        return describe(self.fusion.detector, [to_gray_u8(np.asarray(c)) for c in captures])

    def background(self, owner: PrintSet, start: int = 0) -> np.ndarray:
        """The weighted minutiae scores of the background people from row ``start`` on (the
        rows the threshold is calibrated on) against the owner's prints."""
        rows = range(start, self.fusion.background.size)
        return self.weight * best_scores(self.fusion.background.take(rows), owner)

    def scores(self, probes: PrintSet, owner: PrintSet) -> np.ndarray:
        """The weighted minutiae scores of probe prints against the owner's."""
        return self.weight * best_scores(probes, owner)
