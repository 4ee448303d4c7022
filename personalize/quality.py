"""The quality gate: samples the device refuses before they touch the model, each with a reason.

Checks, in order, for every sample (messages name the sample by its index):
  * dtype: uint8, uint16 or float (floats are intensities in [0, 1]);
  * shape: ``(h, w)`` or ``(h, w, 1|3|4)``, at least the model input's height and width (a
    print from a sensor of another resolution: once resampled to 500 dpi, as it is next);
  * NaN or infinite values; float images on a 0-255 scale;
  * blank or constant: the standard deviation of the cropped grayscale image below
    :data:`MIN_STD` gray levels;
  * saturated: more than :data:`MAX_SATURATED` of the cropped pixels at 0 or 255 (real FVC prints
    with white backgrounds reach about 62%);
  * near-duplicates: two samples whose model inputs correlate above :data:`MAX_CORRELATION`
    (the same capture twice adds no information and makes few-shot training overconfident).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from devices.cosine import normalize
from devices.preprocess import (
    SENSOR_DPI,
    PreprocessError,
    PreprocessSpec,
    crop,
    crop_views,
    preprocess_patch,
    sensor_shape,
    to_gray_u8,
    to_sensor_dpi,
)
from personalize.errors import EnrollmentError

MIN_STD = 2.0
MAX_SATURATED = 0.9
MAX_CORRELATION = 0.99
# How much a capture may be enlarged to the model input, per side: ORL's 92-pixel-wide faces
# feed the 96-wide face model (4%); a capture much smaller than the input lacks its detail.
MAX_UPSCALE = 1.1
DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)


class QualityError(EnrollmentError):
    """A sample refused by the quality gate.

    Attributes:
      index: the sample's position (``None`` for a problem of the whole batch).
      reason: why, in words.
    """

    def __init__(self, index: int | None, reason: str) -> None:
        self.index, self.reason = index, reason
        where = "samples" if index is None else f"sample {index}"
        super().__init__(f"{where}: {reason}; nothing was changed.")


def as_samples(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A batch ``(n, h, w[, c])`` or a sequence of images -> a list of images."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise QualityError(
                None,
                f"expected a batch (n, h, w) or (n, h, w, c) or a list of images, got an array "
                f"of shape {images.shape}",
            )
        return list(images)
    if isinstance(images, str | bytes) or not isinstance(images, Sequence):
        raise QualityError(None, f"expected images, got {type(images).__name__}")
    return [np.asarray(x) for x in images]


def check_image(
    image: np.ndarray,
    spec: PreprocessSpec,
    index: int = 0,
    *,
    views: bool = False,
    dpi: float = SENSOR_DPI,
) -> np.ndarray:
    """Checks one image and returns its model input ``spec.shape`` (float32); with ``views``,
    the inputs of all its windows ``(v, *spec.shape)``, the first one's checked
    (:func:`devices.preprocess.preprocess_views`). A print captured at another ``dpi`` is
    resampled to 500 dpi once its values pass (:func:`devices.preprocess.to_sensor_dpi`).

    Raises:
      QualityError: the reason, naming ``index``.
    """
    if not isinstance(image, np.ndarray):
        raise QualityError(index, f"expected a numpy array, got {type(image).__name__}")
    if image.dtype not in DTYPES:
        raise QualityError(
            index,
            f"dtype {image.dtype} not accepted (uint8, uint16, or float intensities in [0, 1])",
        )
    channels_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    need_h, need_w = spec.input_size
    if not channels_ok:
        raise QualityError(index, f"shape {image.shape} is not (h, w) or (h, w, 1|3|4)")
    try:
        h, w = sensor_shape(image.shape, dpi)
    except PreprocessError as err:
        raise QualityError(index, str(err)) from None
    if h * MAX_UPSCALE < need_h or w * MAX_UPSCALE < need_w:
        at = "" if dpi == SENSOR_DPI else f" at {SENSOR_DPI} dpi (captured at {dpi:g})"
        raise QualityError(
            index,
            f"{h}x{w} pixels{at}, smaller than the model input "
            f"{need_h}x{need_w} (by more than {MAX_UPSCALE:g}x a side)",
        )
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise QualityError(index, "has NaN or infinite values")
        top = float(image.max())
        if top > 1.5:
            raise QualityError(
                index, f"float values up to {top:g}: expected intensities in [0, 1] (divide by 255)"
            )
    try:
        gray = to_gray_u8(image) if dpi == SENSOR_DPI else to_sensor_dpi(image, dpi)
        # Once: a fingerprint's crop is its registration.
        patches = crop_views(gray, spec) if views else [crop(gray, spec)]
        patch = patches[0]
        model_input = np.stack([preprocess_patch(p, spec) for p in patches])
    except PreprocessError as err:
        raise QualityError(index, str(err)) from None
    std = float(patch.std())
    if std < MIN_STD:
        raise QualityError(index, f"blank or constant (std {std:.2f} gray levels < {MIN_STD:g})")
    saturated = float(np.mean((patch == 0) | (patch == 255)))
    if saturated > MAX_SATURATED:
        raise QualityError(
            index,
            f"saturated ({100 * saturated:.0f}% of pixels at 0 or 255 > "
            f"{100 * MAX_SATURATED:.0f}%)",
        )
    return model_input if views else model_input[0]


def check_samples(
    images: np.ndarray | Sequence[np.ndarray],
    spec: PreprocessSpec,
    *,
    min_samples: int = 1,
    dpi: float = SENSOR_DPI,
) -> np.ndarray:
    """Checks enrollment samples (captured at ``dpi``, see :func:`check_image`) and returns
    their model inputs ``(n, *spec.shape)`` float32.

    Raises:
      QualityError: the first refused sample and why (or too few samples).
    """
    samples = as_samples(images)
    if len(samples) < min_samples:
        raise QualityError(None, f"{len(samples)} given, at least {min_samples} needed")
    inputs = np.stack([check_image(x, spec, i, dpi=dpi) for i, x in enumerate(samples)])
    flat = inputs.reshape(len(inputs), -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    flat = normalize(flat)
    corr = flat @ flat.T
    for j in range(len(inputs)):
        for i in range(j):
            if corr[i, j] > MAX_CORRELATION:
                raise QualityError(
                    j,
                    f"near-duplicate of sample {i} (correlation {corr[i, j]:.4f} > "
                    f"{MAX_CORRELATION})",
                )
    return inputs
