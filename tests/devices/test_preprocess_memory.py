"""The preprocessing's memory as the device plans it (``working_bytes``) against what
``preprocess_image`` allocates, measured with tracemalloc, over raw sizes, dtypes and crops."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from devices.localiser import ANCHOR_SPEC
from devices.preprocess import (
    FACE_SPEC,
    FINGERPRINT_SPEC,
    REGISTERED_CROPS,
    PreprocessError,
    PreprocessSpec,
    preprocess_image,
    sensor_shape,
    to_sensor_dpi,
    working_bytes,
)
from devices.registration import CORE_SPEC

SPECS = {
    "anchor": ANCHOR_SPEC,
    "core": CORE_SPEC,
    "foreground": FINGERPRINT_SPEC,
    "centre_square": FACE_SPEC,
    "none": PreprocessSpec("face", (96, 80)),
    "small_window": PreprocessSpec(
        "fingerprint", (96, 96), crop="foreground", crop_size=(160, 160)
    ),
}
# ORL, FVC 2000-2004 and phone sensor sizes, an RGB and an RGBA capture.
SHAPES = [(112, 92), (256, 256), (300, 300), (388, 374), (480, 640), (560, 296), (250, 250, 3)]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def _ridges(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A print-like pattern (oblique ridges, a darker centre) in ``dtype``'s range."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    x = 0.5 + 0.35 * np.sin(cols / 3.0 + rows / 5.0) - 0.1 * np.hypot(rows, cols) / sum(shape[:2])
    if len(shape) == 3:
        x = np.repeat(x[..., None], shape[2], axis=2)
    if dtype == np.uint8:
        return np.rint(x * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(x * 65535).astype(np.uint16)
    return x.astype(dtype)


def _peak(image: np.ndarray, spec: PreprocessSpec) -> int:
    preprocess_image(image, spec)  # warm: first-call allocations are not the image's
    tracemalloc.start()
    try:
        preprocess_image(image, spec)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_planned_bytes_bound_what_preprocessing_allocates(name: str) -> None:
    spec = SPECS[name]
    ratios = {}
    for shape in SHAPES:
        if min(shape[:2]) < min(spec.crop_size) and spec.crop in REGISTERED_CROPS:
            continue  # a core window larger than the print: covered by the other sizes
        for dtype in DTYPES:
            image = _ridges(shape, dtype)
            ratios[shape, dtype.__name__] = working_bytes(spec, shape, dtype) / _peak(image, spec)
    low, high = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
    # Never more than 10% under (the plan must not let an enrollment overrun its budget), and
    # within 20% over (a loose plan refuses scopes that fit).
    assert ratios[low] >= 0.9, (low, ratios[low])
    assert ratios[high] <= 1.2, (high, ratios[high])


def test_a_large_print_costs_more_than_its_model_input() -> None:
    """The core registration reads the whole raw print: a 640x480 sensor image needs several
    times what a 256x256 one does beyond the fixed window."""
    small = working_bytes(CORE_SPEC, (256, 256))
    large = working_bytes(CORE_SPEC, (480, 640))
    assert large - small >= 20 * (480 * 640 - 256 * 256)
    assert working_bytes(CORE_SPEC, (480, 640), np.float64) > large


def test_bad_shape_is_a_clear_error() -> None:
    with pytest.raises(PreprocessError, match="image shape"):
        working_bytes(FINGERPRINT_SPEC, (300,))


def _peak_at(image: np.ndarray, spec: PreprocessSpec, dpi: float) -> int:
    preprocess_image(to_sensor_dpi(image, dpi), spec)
    tracemalloc.start()
    try:
        preprocess_image(to_sensor_dpi(image, dpi), spec)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dpi", [400, 569, 1000])
def test_planned_bytes_bound_a_capture_from_another_sensor(dpi: int) -> None:
    """A print from a sensor of another resolution is resampled to 500 dpi first (the device's
    ``sensor_dpi``): the plan counts that step too, within the same bounds."""
    ratios = {}
    for name in ("core", "foreground"):
        spec = SPECS[name]
        for shape in [(300, 300), (388, 374), (560, 296), (480, 640), (250, 250, 3)]:
            if min(sensor_shape(shape, dpi)) < min(spec.crop_size) and name == "core":
                continue
            for dtype in (np.uint8, np.float32):
                image = _ridges(shape, dtype)
                planned = working_bytes(spec, shape, dtype, dpi)
                ratios[name, shape, dtype.__name__] = planned / _peak_at(image, spec, dpi)
    low, high = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
    assert ratios[low] >= 0.9, (low, ratios[low])
    assert ratios[high] <= 1.2, (high, ratios[high])
    # ... and a large capture at a high resolution costs more than its 500 dpi copy would
    assert working_bytes(CORE_SPEC, (960, 1280), np.uint8, 1000) > working_bytes(
        CORE_SPEC, (480, 640)
    )
