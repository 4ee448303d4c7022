"""The fingerprint fusion's side of an artifact: the background people's prints.

A fingerprint artifact exported with ``minutiae`` (``python -m export build --minutiae``) ships,
beside the background people's embeddings, the same people's minutiae and readable masks
(:mod:`devices.print_minutiae`): a fusing device scores its owner's threshold impostors by the
fused score, as it scores captures. They are found on the people's raw prints by the detector
that ships with ``devices`` (the manifest pins its weights).
"""

from __future__ import annotations

from tqdm.auto import tqdm

from devices.print_minutiae import PrintSet, describe, shipped_detector
from export.artifact.sources import Sources


def background_prints(sources: Sources, *, progress: bool = True) -> PrintSet | None:
    """The background people's prints, row for row ``sources.background``, or None when the
    sources have no raw prints (not a fingerprint dataset).

    Raises:
      ValueError: the raw prints are not as many as the background's rows.
    """
    if sources.background_raw is None:
        return None
    raw = sources.background_raw.get()
    if len(raw) != len(sources.background):
        raise ValueError(f"{len(raw)} raw background prints for {len(sources.background)} rows.")
    shown = tqdm(raw, desc="background minutiae", unit="print", disable=not progress)
    return describe(shipped_detector(), shown)
