"""FVC-style fingerprint sets under ``$POCKETFIT_DATA/fvc/<set>/<finger>_<impression>.tif``.

The shared "B" sets hold 10 fingers x 8 impressions, at 500 dpi but for FVC2002 DB2's 569
(:data:`SET_DPI`; read at 500). ``2000_DB4_B`` was made by SFinGe; the other five come from real
sensors (:data:`SENSOR_SETS`).

References:
  Maio, Maltoni, Cappelli, Wayman, Jain, "FVC2000: fingerprint verification competition",
  IEEE TPAMI 24(3), 2002; "FVC2002: Second fingerprint verification competition", ICPR 2002.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from devices.preprocess import FINGERPRINT_SPEC, SENSOR_DPI, PreprocessSpec, to_sensor_dpi
from pretrain.data.dataset import ArrayDataset
from pretrain.data.errors import DataError, DataNotFoundError
from pretrain.data.folders import EXTENSIONS, ImageSet, build_set, read_image
from pretrain.data.paths import ENV_VAR, dataset_dir

# (height, width) of each shared set's files (500 dpi, but for SET_DPI's).
SET_SIZES = {
    "2000_DB1_B": (300, 300),
    "2000_DB2_B": (364, 256),
    "2000_DB3_B": (478, 448),
    "2000_DB4_B": (320, 240),
    "2002_DB1_B": (374, 388),
    "2002_DB2_B": (560, 296),
}
SET_DPI = {"2002_DB2_B": 569}
"""Sets whose sensor is not 500 dpi: FVC2002 DB2 (Biometrika FX2000, 296 x 560) captures at 569
dpi (Maio et al., ICPR 2002, table 1). :func:`read_fvc` brings its prints to
:data:`devices.preprocess.SENSOR_DPI` as a device on that sensor would
(:func:`devices.preprocess.to_sensor_dpi`); until 2026-12-06 they were read as 500 dpi, ridges
14% wider than every other set's. Taken from the documented resolution alone, before any figure
of it and whatever the figures say (FVC chooses nothing)."""
SENSOR_SETS = ("2000_DB1_B", "2000_DB2_B", "2000_DB3_B", "2002_DB1_B", "2002_DB2_B")
SYNTHETIC_SET = "2000_DB4_B"
SAME_FINGERS = {"2000_DB2_B": "2000_DB1_B"}
"""Sets whose fingers are another set's under the same numbers (two sensors, one finger).
Measured here on 2026-12-06 with the committed fingerprint backbone: the mean embeddings of
2000_DB1_B's and 2000_DB2_B's fingers of equal number meet at cosine 0.92 (lowest 0.83), of
other numbers 0.43; for every other two sets equal and other numbers read alike (0.09-0.49).
The device accepted every capture of 2000_DB2_B's finger k for 2000_DB1_B's k. A set's own
protocol is unaffected; pooling sets as identities must not count such a pair as two people
(:func:`finger_owner`)."""
_NAME = re.compile(r"^(\d+)_(\d+)\.tiff?$", re.IGNORECASE)


def finger_owner(set_name: str, finger: str) -> str:
    """``<set>/<finger>`` of the finger itself: the set of :data:`SAME_FINGERS` it repeats."""
    return f"{SAME_FINGERS.get(set_name, set_name)}/{finger}"


def impression_numbers(paths: Sequence[str | os.PathLike[str]]) -> np.ndarray:
    """The impression number of each ``<finger>_<impression>.tif`` file (int64 ``(n,)``).

    Raises:
      DataError: a file not named ``<finger>_<impression>.tif`` (named in the message).
    """
    numbers = []
    for path in paths:
        match = _NAME.match(Path(path).name)
        if not match:
            raise DataError(f"{path}: not named <finger>_<impression>.tif (e.g. 101_1.tif).")
        numbers.append(int(match[2]))
    return np.asarray(numbers, np.int64)


def fvc_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """``$POCKETFIT_DATA/fvc`` (or ``<root>/fvc``); raises naming the expected layout."""
    return dataset_dir(
        "fvc", [f"<set>/<finger>_<impression>.tif, e.g. {SENSOR_SETS[0]}/101_1.tif"], root
    )


def fvc_sets(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the sets present under ``fvc/`` (folders holding ``<finger>_<n>.tif`` files)."""
    base = fvc_dir(root)
    return sorted(
        p.name
        for p in base.iterdir()
        if p.is_dir() and any(_NAME.match(f.name) for f in p.iterdir())
    )


def read_fvc(name: str, root: str | os.PathLike[str] | None = None) -> ImageSet:
    """Reads one FVC set as uint8 images at 500 dpi (:data:`SET_DPI`'s sets resampled); labels
    index the fingers in numeric order.

    Args:
      name: set folder, e.g. ``"2000_DB1_B"``.
      root: override for ``$POCKETFIT_DATA``.

    Raises:
      DataNotFoundError: no such set (the message lists those present).
      DataError: a file that does not follow ``<finger>_<impression>.tif``, an empty set, or an
        unreadable image (each named).
    """
    base = fvc_dir(root)
    folder = base / name
    if not folder.is_dir():
        present = ", ".join(fvc_sets(root)) or "none"
        raise DataNotFoundError(
            f"FVC set {name!r} not found in {base} ({ENV_VAR}/fvc); sets present: {present}. "
            f"Put its files in {folder}/ as <finger>_<impression>.tif."
        )
    fingers: dict[int, list[tuple[int, Path]]] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in EXTENSIONS:
            continue
        match = _NAME.match(path.name)
        if not match:
            raise DataError(
                f"{path}: unknown layout - FVC files are named <finger>_<impression>.tif "
                f"(e.g. 101_1.tif)."
            )
        fingers.setdefault(int(match[1]), []).append((int(match[2]), path))
    if not fingers:
        raise DataError(f"{folder}: no <finger>_<impression>.tif files.")
    groups = [(str(f), [p for _, p in sorted(fingers[f])]) for f in sorted(fingers)]
    dpi = SET_DPI.get(name, SENSOR_DPI)
    if dpi == SENSOR_DPI:
        return build_set(groups, f"fvc/{name}")
    return build_set(groups, f"fvc/{name}", read=lambda path: to_sensor_dpi(read_image(path), dpi))


class SensorPrints(NamedTuple):
    """Several FVC sets as one identity set of raw prints (see :func:`read_sensor_sets`).

    Attributes:
      images: raw uint8 prints at 500 dpi, set after set.
      labels: ``(n,)`` each print's finger, numbered across the sets (each set's own follow on).
      impressions: ``(n,)`` the impression number in each file name (1-8).
      set_of: ``(n,)`` each print's set name.
      fingers: each label's name, ``<set>/<finger>``.
      owners: each label's finger by :func:`finger_owner` (two sets may hold the same fingers).
    """

    images: tuple[np.ndarray, ...]
    labels: np.ndarray
    impressions: np.ndarray
    set_of: np.ndarray
    fingers: tuple[str, ...]
    owners: tuple[str, ...]


def read_sensor_sets(
    root: str | os.PathLike[str] | None = None, sets: Sequence[str] = SENSOR_SETS
) -> SensorPrints:
    """The FVC ``sets`` (default the five real-sensor ones) read as one identity set, each finger
    of each set its own label; score with ``owners`` so that one finger under two sensors is
    neither an impostor pair nor a wrong answer (:data:`SAME_FINGERS`)."""
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    impressions: list[np.ndarray] = []
    set_of: list[str] = []
    fingers: list[str] = []
    for name in sets:
        raw = read_fvc(name, root)
        images += raw.images
        labels.append(np.asarray(raw.labels) + len(fingers))
        impressions.append(impression_numbers(raw.paths))
        set_of += [name] * len(raw)
        fingers += [f"{name}/{finger}" for finger in raw.identities]
    return SensorPrints(
        tuple(images),
        np.concatenate(labels),
        np.concatenate(impressions),
        np.asarray(set_of),
        tuple(fingers),
        tuple(finger_owner(*finger.split("/", 1)) for finger in fingers),
    )


def load_fvc(
    name: str,
    root: str | os.PathLike[str] | None = None,
    spec: PreprocessSpec = FINGERPRINT_SPEC,
) -> ArrayDataset:
    """One FVC set preprocessed with ``spec`` (default ``(n, 128, 128, 1)``)."""
    return read_fvc(name, root).preprocess(spec)
