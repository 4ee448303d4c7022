"""Model-input preprocessing that the server and the device compute bit-identically (numpy only).

A :class:`PreprocessSpec` is a small JSON-serialisable description (grayscale, crop, resize,
normalisation) that travels inside the exported artifact; :func:`preprocess_image` is the one
function both sides run. Every step is integer arithmetic or a correctly rounded IEEE-754 elementwise
operation applied in a fixed order (no BLAS, no floating-point reductions), so the same uint8
image gives the same float32 bytes on any machine running this module.

The two documented specs:

* :data:`FINGERPRINT_SPEC` - 128x128 from a 500 dpi print. A 256x256 window (13 mm square, about
  the contact area of a small phone sensor and 25-30 ridges across) centred on the print's
  foreground, then 2x area downsampling: the ridge period of 8-11 px at 500 dpi becomes 4-5.5 px,
  well above the 2 px Nyquist limit, so ridges and minutiae survive while the input stays small
  enough to train a CNN on thousands of identities on two CPU cores.
* :data:`FACE_SPEC` - 64x64 from the largest centred square (92x92 for ORL's 92x112 images),
  area-resized by 1.44: the eyes of an ORL face sit ~20 px apart at 64x64, enough for identity
  while a 64x64x1 input costs 1/4 of the fingerprint input.

Both are standardised per image (zero mean, unit standard deviation over the crop), which removes
sensor gain and lighting differences between datasets and devices.

References:
  Maltoni, Maio, Jain, Prabhakar, "Handbook of Fingerprint Recognition", 2nd ed., Springer 2009
  (500 dpi and ridge period, ch. 3; segmentation by local variance, sec. 3.5).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

# np.percentile (the foreground mask's reference) calls np.unique, which imports numpy.ma on its
# first use: about 1 MB of resident code inside a device's first enrollment, which the memory
# plan (working memory beside the process as it stands) does not hold. Importing it with this
# module puts it in the process, with the rest of the code, before any enrollment is measured.
import numpy.ma

CROPS = ("foreground", "core", "anchor", "centre_square", "none")
REGISTERED_CROPS = ("core", "anchor")  # a window warped onto a point the print's flow gives
SIZED_CROPS = ("foreground", *REGISTERED_CROPS)  # the crops that need a crop_size
# Crops built on this module by others, by name: ``devices.registration`` adds ``"core"`` and
# ``devices.localiser`` ``"anchor"`` (they read this module's segmentation, so this module cannot
# import them; ``devices/__init__`` imports them, so the crops are there whenever ``devices`` is).
CROP_FUNCTIONS: dict[str, Callable[[np.ndarray, tuple[int, int]], np.ndarray]] = {}
# Crops that can give more than one window (``devices.localiser`` adds ``"anchor"``): ``(gray,
# crop_size, gate) -> windows``, the first being the crop's own (:func:`preprocess_views`).
VIEW_FUNCTIONS: dict[str, Callable[[np.ndarray, tuple[int, int], int], list[np.ndarray]]] = {}
RESIZES = ("area", "bilinear")
NORMALISATIONS = ("standardise", "unit")


class PreprocessError(ValueError):
    """An image or a spec cannot be preprocessed; the message says which field or shape."""


@dataclasses.dataclass(frozen=True)
class PreprocessSpec:
    """How one modality's raw image becomes the model input.

    Attributes:
      modality: ``"fingerprint"``, ``"face"`` or any other label, for messages and artifacts.
      input_size: ``(height, width)`` of the model input.
      crop: ``"foreground"`` (a ``crop_size`` window centred on the foreground centroid, padded
        with the background level where it leaves the image), ``"core"`` (a fingerprint's
        ``crop_size`` window registered on its core, :func:`devices.registration.core_window`),
        ``"anchor"`` (the same window registered on the learned anchor,
        :func:`devices.localiser.anchor_window`),
        ``"centre_square"`` (the largest centred square) or ``"none"``.
      crop_size: ``(height, width)`` in source pixels, for ``crop="foreground"``, ``"core"`` and
        ``"anchor"``.
      resize: ``"area"`` (mean over each output pixel's footprint; for shrinking) or
        ``"bilinear"`` (half-pixel centres, clamped edges).
      normalise: ``"standardise"`` (zero mean, unit std over the crop) or ``"unit"`` (x / 255).
      foreground_block: block side (px) of the foreground segmentation.
      foreground_threshold: a block is foreground when its standard deviation exceeds this
        fraction of the 90th percentile of block standard deviations.
      second_anchor_below: ``crop="anchor"`` only: a print whose localiser heatmap margin (best
        logit minus the second peak's) is below this also gives a window at the second peak
        (:func:`preprocess_views`, :func:`devices.localiser.anchor_windows`); 0 (the default)
        never. Left out of :meth:`to_dict` at 0, so specs written before it read the same.
    """

    modality: str
    input_size: tuple[int, int]
    crop: str = "none"
    crop_size: tuple[int, int] = (0, 0)
    resize: str = "area"
    normalise: str = "standardise"
    foreground_block: int = 16
    foreground_threshold: float = 0.35
    second_anchor_below: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", _pair(self.input_size, "input_size"))
        object.__setattr__(self, "crop_size", _pair(self.crop_size, "crop_size", zero=True))
        for name, value, valid in (
            ("crop", self.crop, CROPS),
            ("resize", self.resize, RESIZES),
            ("normalise", self.normalise, NORMALISATIONS),
        ):
            if value not in valid:
                raise PreprocessError(f"{name} must be one of {', '.join(valid)}; got {value!r}.")
        if self.crop in SIZED_CROPS and min(self.crop_size) <= 0:
            raise PreprocessError(f"crop={self.crop!r} needs a positive crop_size (height, width).")
        if self.foreground_block < 2:
            raise PreprocessError(f"foreground_block must be >= 2, got {self.foreground_block}.")
        if not 0.0 < self.foreground_threshold < 1.0:
            raise PreprocessError(
                f"foreground_threshold must be in (0, 1), got {self.foreground_threshold}."
            )
        if not isinstance(self.second_anchor_below, int) or self.second_anchor_below < 0:
            raise PreprocessError(
                f"second_anchor_below must be an int >= 0, got {self.second_anchor_below!r}."
            )
        if self.second_anchor_below and self.crop != "anchor":
            raise PreprocessError(
                f"second_anchor_below needs crop='anchor' (a localiser's heatmap), got "
                f"crop={self.crop!r}."
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """The model input shape ``(height, width, 1)``."""
        return (*self.input_size, 1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists); :meth:`from_dict` inverts it."""
        out = dataclasses.asdict(self)
        out["input_size"], out["crop_size"] = list(self.input_size), list(self.crop_size)
        if not self.second_anchor_below:
            del out["second_anchor_below"]
        return out

    @property
    def max_views(self) -> int:
        """How many windows :func:`preprocess_views` may give a print (1 or 2)."""
        return 2 if self.second_anchor_below else 1

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PreprocessSpec:
        """Builds a spec from :meth:`to_dict` output; unknown keys are an error naming them."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise PreprocessError(
                f"unknown preprocessing key(s) {', '.join(unknown)}; valid: {', '.join(valid)}."
            )
        try:
            return cls(**values)
        except TypeError as err:
            raise PreprocessError(f"incomplete preprocessing spec: {err}.") from None


def _pair(value: Sequence[int], name: str, *, zero: bool = False) -> tuple[int, int]:
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise PreprocessError(f"{name} must be (height, width), got {value!r}.") from None
    if len(pair) != 2 or min(pair) < (0 if zero else 1):
        raise PreprocessError(f"{name} must be two {'non-negative' if zero else 'positive'} ints.")
    return pair[0], pair[1]


FINGERPRINT_SPEC = PreprocessSpec(
    modality="fingerprint", input_size=(128, 128), crop="foreground", crop_size=(256, 256)
)
FACE_SPEC = PreprocessSpec(modality="face", input_size=(64, 64), crop="centre_square")
SPECS = {"fingerprint": FINGERPRINT_SPEC, "face": FACE_SPEC}


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Any uint8/uint16/float image, gray or RGB(A), -> uint8 ``(h, w)`` by integer arithmetic.

    RGB uses the ITU-R BT.601 luma weights (299, 587, 114)/1000 with rounding; alpha is ignored;
    uint16 is scaled by 1/257; floats are taken as [0, 1].
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = to_gray_u8_channels(image[..., :3]).astype(np.int32)
        luma = (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000
        return luma.astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim != 2 or min(image.shape) == 0:
        raise PreprocessError(f"expected a (h, w) or (h, w, 1|3|4) image, got {image.shape}.")
    return to_gray_u8_channels(image)


def to_gray_u8_channels(image: np.ndarray) -> np.ndarray:
    """Scales each channel to uint8 without mixing them (see :func:`to_gray_u8`)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.int32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise PreprocessError("image has NaN or infinite values.")
        return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer) or image.dtype == bool:
        return np.clip(image, 0, 255).astype(np.uint8)
    raise PreprocessError(f"unsupported image dtype {image.dtype}.")


def _block_stats(gray: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-block mean and std of the whole blocks of a uint8 image (integer sums)."""
    nh, nw = gray.shape[0] // block, gray.shape[1] // block
    if nh == 0 or nw == 0:
        return np.zeros((0, 0)), np.zeros((0, 0))
    tiles = gray[: nh * block, : nw * block].astype(np.int64).reshape(nh, block, nw, block)
    n = block * block
    s1 = tiles.sum(axis=(1, 3))
    s2 = (tiles * tiles).sum(axis=(1, 3))
    var = (n * s2 - s1 * s1).astype(np.float64) / float(n * n)
    return s1.astype(np.float64) / n, np.sqrt(var)


def foreground_blocks(gray: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Boolean ``(h // b, w // b)`` map of blocks whose local std marks them as foreground.

    References:
      Handbook of Fingerprint Recognition, sec. 3.5 (segmentation by local variance).
    """
    _, std = _block_stats(gray, spec.foreground_block)
    if std.size == 0:
        return np.zeros(std.shape, bool)
    ref = float(np.percentile(std, 90))
    return std > spec.foreground_threshold * ref if ref > 0 else np.zeros(std.shape, bool)


def foreground_centre(gray: np.ndarray, spec: PreprocessSpec) -> tuple[int, int]:
    """``(row, col)`` of the foreground centroid (the image centre when nothing stands out)."""
    mask = foreground_blocks(gray, spec)
    if not mask.any():
        return gray.shape[0] // 2, gray.shape[1] // 2
    rows, cols = np.nonzero(mask)
    b = spec.foreground_block
    # Integer sums then one division: exact and order-independent.
    return (
        int((2 * int(rows.sum()) + rows.size) * b // (2 * rows.size)),
        int((2 * int(cols.sum()) + cols.size) * b // (2 * cols.size)),
    )


def _background_level(gray: np.ndarray, spec: PreprocessSpec) -> int:
    mask = foreground_blocks(gray, spec)
    mean, _ = _block_stats(gray, spec.foreground_block)
    back = mean[~mask] if mask.size else np.zeros(0)
    if back.size == 0:
        return int(np.rint(gray.astype(np.int64).sum() / gray.size))
    return int(np.rint(np.sort(back)[back.size // 2]))  # the median background block


def crop(gray: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Applies the spec's crop to a uint8 image (integer indexing and padding only)."""
    h, w = gray.shape
    if spec.crop == "none":
        return gray
    if spec.crop == "centre_square":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return gray[top : top + side, left : left + side]
    if spec.crop in CROP_FUNCTIONS:
        return CROP_FUNCTIONS[spec.crop](gray, spec.crop_size)
    ch, cw = spec.crop_size
    row, col = foreground_centre(gray, spec)
    top, left = row - ch // 2, col - cw // 2
    out = np.full((ch, cw), _background_level(gray, spec), np.uint8)
    r0, r1 = max(top, 0), min(top + ch, h)
    c0, c1 = max(left, 0), min(left + cw, w)
    if r0 < r1 and c0 < c1:
        out[r0 - top : r1 - top, c0 - left : c1 - left] = gray[r0:r1, c0:c1]
    return out


def resize_taps(n_in: int, n_out: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights ``(taps, n_out)`` of a 1-D resize; weights sum to 1 per output.

    ``area`` gives each output pixel the mean of the source interval it covers (partial pixels
    weighted by overlap); ``bilinear`` interpolates between the two nearest source centres.
    """
    if n_in < 1 or n_out < 1:
        raise PreprocessError(f"cannot resize {n_in} pixels to {n_out}.")
    scale = n_in / n_out
    out = np.arange(n_out)
    if method == "bilinear" or (method == "area" and n_out > n_in):
        src = np.clip((out + 0.5) * scale - 0.5, 0.0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = src - lo
        return np.stack([lo, hi]), np.stack([1.0 - frac, frac])
    if method != "area":
        raise PreprocessError(f"unknown resize {method!r}; choose one of {', '.join(RESIZES)}.")
    taps = int(np.ceil(scale)) + 1
    start = out * scale
    first = np.floor(start).astype(np.int64)
    index = first[None, :] + np.arange(taps)[:, None]
    lo = np.maximum(index, start[None, :])
    hi = np.minimum(index + 1, (out + 1)[None, :] * scale)
    weight = np.clip(hi - lo, 0.0, None) / scale
    return np.minimum(index, n_in - 1), weight


def resize(image: np.ndarray, size: tuple[int, int], method: str = "area") -> np.ndarray:
    """Separable resize of a 2-D image to ``size = (h, w)``, float64, taps summed in fixed order."""
    x = np.asarray(image, np.float64)
    for axis, n_out in ((0, size[0]), (1, size[1])):
        index, weight = resize_taps(x.shape[axis], n_out, method)
        acc = np.zeros((*x.shape[:axis], n_out, *x.shape[axis + 1 :]))
        for t in range(index.shape[0]):
            w = weight[t][:, None] if axis == 0 else weight[t][None, :]
            acc = acc + np.take(x, index[t], axis=axis) * w
        x = acc
    return x


SENSOR_DPI = 500
"""The resolution every fingerprint spec's pixels are measured in (a print's ridge period is
8-11 px there). A sensor that captures at another resolution is brought to it first
(:func:`to_sensor_dpi`), as a device does before the capture enters the artifact."""


DPI_RANGE = (250.0, 1500.0)
"""The sensor resolutions a capture is taken from: fingerprint sensors capture at 500 dpi (the
FBI's standard; FVC's at 500, 569 and 512) up to 1000 (high-resolution ones). Below 250 a ridge
period (8-11 px at 500 dpi) is under 5 px, too few to register; far outside the range the number
is a typo, whose resampling would ask for an image of hundreds of GiB (``dpi=1``)."""


def check_dpi(dpi: Any) -> float:
    """``dpi`` as a float, if it is a sensor resolution (a number within :data:`DPI_RANGE`).

    Raises:
      PreprocessError: it is not.
    """
    real = (int, float, np.integer, np.floating)
    if isinstance(dpi, bool) or not isinstance(dpi, real) or not 0 < dpi < float("inf"):
        raise PreprocessError(f"a sensor resolution must be a positive number of dpi, got {dpi!r}.")
    low, high = DPI_RANGE
    if not low <= dpi <= high:
        raise PreprocessError(
            f"a sensor resolution of {float(dpi):g} dpi is outside {low:g}..{high:g} dpi "
            "(fingerprint sensors capture at 500 to 1000 dpi)."
        )
    return float(dpi)


def sensor_shape(shape: Sequence[int], dpi: float) -> tuple[int, int]:
    """The ``(h, w)`` a capture of ``shape`` (``(h, w[, c])``) taken at ``dpi`` has at
    :data:`SENSOR_DPI` (each side scaled by ``SENSOR_DPI / dpi``, rounded to whole pixels).

    Raises:
      PreprocessError: ``dpi`` is not a positive finite number, or the capture would shrink
        below a pixel.
    """
    check_dpi(dpi)
    h, w = int(shape[0]), int(shape[1])
    size = (round(h * SENSOR_DPI / dpi), round(w * SENSOR_DPI / dpi))
    if min(size) < 1:
        raise PreprocessError(f"a {w}x{h} print at {dpi} dpi is under a pixel at {SENSOR_DPI} dpi.")
    return size


def to_sensor_dpi(image: np.ndarray, dpi: float) -> np.ndarray:
    """A print captured at ``dpi`` resampled to :data:`SENSOR_DPI`: uint8 grey of
    :func:`sensor_shape`, area averaging (bilinear when enlarging), rounded half to even. A 500
    dpi capture comes back as its grey copy, unchanged.

    Raises:
      PreprocessError: ``dpi`` is not a positive finite number, or the print would shrink below
        a pixel.
    """
    gray = to_gray_u8(image)
    size = sensor_shape(gray.shape, dpi)
    if dpi == SENSOR_DPI:
        return gray.copy()
    return np.clip(np.rint(resize(gray, size, "area")), 0, 255).astype(np.uint8)


def preprocess_image(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """One raw image -> the float32 model input ``(h, w, 1)`` described by ``spec``.

    Args:
      image: ``(h, w)`` or ``(h, w, c)`` image, uint8/uint16/float (see :func:`to_gray_u8`).
      spec: the modality's :class:`PreprocessSpec`.

    Returns:
      float32 ``spec.shape``.

    Example:
      >>> x = preprocess_image(np.full((300, 300), 200, np.uint8), FINGERPRINT_SPEC)
      >>> x.shape
      (128, 128, 1)
    """
    return preprocess_patch(crop(to_gray_u8(image), spec), spec)


def preprocess_views(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """float32 ``(v, *spec.shape)``: :func:`preprocess_image`'s input first, then, for a spec
    with ``second_anchor_below`` and a print whose heatmap is flat, the second peak's window
    (``v`` is 1 or 2; a matcher scores the best of them)."""
    return np.stack([preprocess_patch(w, spec) for w in crop_views(to_gray_u8(image), spec)])


def crop_views(gray: np.ndarray, spec: PreprocessSpec) -> list[np.ndarray]:
    """The crops :func:`preprocess_views` normalises: :func:`crop`'s window, then for a spec
    with ``second_anchor_below`` and a flat heatmap the second peak's (``VIEW_FUNCTIONS``)."""
    if not spec.second_anchor_below:
        return [crop(gray, spec)]
    return VIEW_FUNCTIONS[spec.crop](gray, spec.crop_size, spec.second_anchor_below)


def preprocess_patch(patch: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The model input of an image already cropped (``crop(to_gray_u8(image), spec)``): resized
    and normalised as :func:`preprocess_image` does (for a caller that reads the crop too, e.g.
    the device's quality gate, so the crop, a fingerprint's registration, runs once)."""
    out = resize(patch, spec.input_size, spec.resize)
    if spec.normalise == "unit":
        return (out / 255.0).astype(np.float32)[..., None]
    # Mean and variance from exact integer sums over the crop, so no float reduction is involved.
    values = patch.astype(np.int64)
    n, s1, s2 = values.size, int(values.sum()), int((values * values).sum())
    mean = s1 / n
    std = max(float(np.sqrt((n * s2 - s1 * s1) / (n * n))), 1.0)
    return ((out - mean) / std).astype(np.float32)[..., None]


# What :func:`preprocess_image` allocates at its peak, per pixel (see :func:`working_bytes`).
# Counted from the arrays each step keeps alive, then checked with tracemalloc over raw sizes,
# dtypes and crops (tests/devices/test_preprocess_memory.py: within -10%..+20%).
WORKING_FIXED = 64 * 1024  # the resize taps and small arrays
SOURCE_BYTES = {"foreground": 16, "core": 24, "anchor": 24}  # per source pixel while the crop
# reads it: int64 block statistics (foreground); the int64 source copy and the print's background
# level (core; anchor: the same orientation field and warp, and the localiser's network on the
# 8x8-block grid, 1/64 of the pixels, stays below the warp: measured with tracemalloc)
WARP_BYTES = 90  # per window pixel of the core crop: the warp's int64 coordinates and taps
CONVERT_BYTES = 2  # per source pixel, channel and byte of a value (at least int32's 4) while a
# non-uint8 or colour image becomes uint8 grey: two copies (clipped and scaled, or widened and summed)
RESAMPLE_BYTES = 24  # per pixel of the first axis's output in to_sensor_dpi: the float64
# accumulator, its next value, and the gathered rows (then their product, once they are freed)


def working_bytes(
    spec: PreprocessSpec, shape: Sequence[int], dtype: Any = np.uint8, dpi: float = SENSOR_DPI
) -> int:
    """Peak bytes :func:`preprocess_image` allocates for one raw image of ``shape`` and ``dtype``
    (beyond the image itself and the float32 model input it returns), for a device's memory plan;
    for a capture at another ``dpi``, of ``preprocess_image(to_sensor_dpi(image, dpi), spec)``.

    The steps run one after another, so the peak is the largest of them: converting to uint8 grey
    (copies of a non-uint8 or colour image), the crop reading the source (int64 statistics, and a
    core crop's warp over its window), and resizing then standardising the patch (a float64 copy,
    the accumulator, gathered rows and their product along the first axis; or the int64 values and
    their squares). The uint8 grey copy of a non-uint8 or colour image stays alive throughout.
    At another resolution, first the resampling (the grey copy, its float64 copy and, along the
    first axis, the accumulator, its next value and the gathered rows at the new height), then the
    steps above on the resampled uint8 print, which stays alive beside them.

    Example:
      >>> working_bytes(FINGERPRINT_SPEC, (300, 300)) > 300 * 300
      True
    """
    if len(shape) < 2:
        raise PreprocessError(f"expected an image shape (h, w[, c]), got {tuple(shape)}.")
    h, w = int(shape[0]), int(shape[1])
    raw = h * w
    convert = _convert_bytes(shape, dtype)
    grey = 0 if convert == 0 else raw
    if dpi != SENSOR_DPI:
        oh, ow = sensor_shape(shape, dpi)
        resample = grey + 8 * raw + RESAMPLE_BYTES * oh * max(w, ow)
        resampled = oh * ow + working_bytes(spec, (oh, ow))
        return max(WORKING_FIXED + grey + convert, WORKING_FIXED + resample, resampled)
    if spec.crop == "none":
        ph, pw = h, w
    elif spec.crop == "centre_square":
        ph = pw = min(h, w)
    else:
        ph, pw = spec.crop_size
    source = SOURCE_BYTES.get(spec.crop, 0) * raw
    if spec.crop in REGISTERED_CROPS:
        source += WARP_BYTES * ph * pw
    oh, ow = spec.input_size
    patch = max(8 * ph * pw + 24 * oh * pw, 16 * ph * pw + 8 * oh * ow)
    return WORKING_FIXED + grey + max(convert, source, patch)


def _convert_bytes(shape: Sequence[int], dtype: Any) -> int:
    """What making uint8 grey of a non-uint8 or colour image allocates (0 for uint8 grey)."""
    channels = int(shape[2]) if len(shape) > 2 else 1
    itemsize = np.dtype(dtype).itemsize
    if itemsize == 1 and channels == 1:
        return 0
    colour = 3 if channels >= 3 else 1
    return CONVERT_BYTES * max(itemsize, 4) * colour * int(shape[0]) * int(shape[1])


def preprocess_batch(images: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Preprocesses each image; returns float32 ``(n, *spec.shape)``.

    Raises:
      PreprocessError: an image cannot be preprocessed; the message starts with its index.
    """
    out = np.empty((len(images), *spec.shape), np.float32)
    for i, image in enumerate(images):
        out[i] = _numbered(i, preprocess_image, image, spec)
    return out


def _numbered(i: int, step: Callable[..., Any], *args: Any) -> Any:
    """``step(*args)`` for image ``i`` of a batch; its PreprocessError names the image."""
    try:
        return step(*args)
    except PreprocessError as err:
        raise PreprocessError(f"image {i}: {err}") from None


def preprocess_batch_views(images: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """float32 ``(n, spec.max_views, *spec.shape)``: each image's :func:`preprocess_views`, a
    print with fewer views padded with its first (which leaves a best-of-views score as is).

    Raises:
      PreprocessError: an image cannot be preprocessed; the message starts with its index.
    """
    out = np.empty((len(images), spec.max_views, *spec.shape), np.float32)
    for i, image in enumerate(images):
        views = _numbered(i, preprocess_views, image, spec)
        out[i, : len(views)] = views
        out[i, len(views) :] = views[0]
    return out


@dataclasses.dataclass(frozen=True)
class FaceFrame:
    """A fixed box that cuts one dataset's aligned faces to ORL's framing (forehead to chin).

    ORL's 92x112 faces are the framing every face model input has: the eyes on row ~50 of 112,
    the mouth on row ~87, cheek to cheek about two thirds of the width. A dataset whose faces are
    already aligned (same eye positions in every image) maps onto it by one box in its own
    pixels, found from the dataset's mean face (eye row, eye distance, eye-to-mouth distance).
    Where the box leaves the image (a tight crop such as Extended Yale B's) it is filled with the
    mean of the image's outermost pixels, a flat background like ORL's.

    Attributes:
      name: the dataset, for messages and manifests.
      source: ``(height, width)`` every image of the dataset has.
      top, left: the box's corner in source pixels (negative where it starts outside).
      height, width: the box's size in source pixels (aspect 112:92 as ORL's).
    """

    name: str
    source: tuple[int, int]
    top: int
    left: int
    height: int
    width: int

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "source": list(self.source)}


# LFW (aligned, 250x250): eyes on row 112, 43 px apart, mouth ~50 px below them: ORL's framing is
# the 160x131 box from row 38 (ORL's 37 px eye-to-mouth scaled by 50/37 = 1.43).
LFW_FRAME = FaceFrame("lfw", (250, 250), top=38, left=60, height=160, width=131)
# Extended Yale B cropped (192x168, brow to chin): eyes on row 48, 94 px apart, mouth on row
# 147: scale 2.85 (between the eye-distance and the eye-to-mouth ratios, 3.0 and 2.7).
YALE_B_FRAME = FaceFrame("extended_yale_b", (192, 168), top=-95, left=-47, height=320, width=262)
FACE_FRAMES = {frame.name: frame for frame in (LFW_FRAME, YALE_B_FRAME)}


def border_mean(gray: np.ndarray) -> int:
    """The rounded mean of an image's outermost ring of pixels (exact integer arithmetic)."""
    values = gray.astype(np.int64)
    ring = int(values[0].sum() + values[-1].sum())
    ring += int(values[1:-1, 0].sum() + values[1:-1, -1].sum()) if gray.shape[0] > 2 else 0
    count = 2 * gray.shape[1] + 2 * max(gray.shape[0] - 2, 0)
    return (2 * ring + count) // (2 * count)


def frame_face(image: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """Cuts an aligned face to ORL's framing: uint8 ``(frame.height, frame.width)``.

    Integer indexing and padding only, so the device repeats it bit for bit; the result then goes
    through :func:`preprocess_image` with a ``crop="none"`` spec, as an ORL image does.

    Raises:
      PreprocessError: the image is not ``frame.source`` in size (the frame fits one dataset's
        alignment).
    """
    gray = to_gray_u8(image)
    if gray.shape != frame.source:
        raise PreprocessError(
            f"the {frame.name} frame fits {frame.source[1]}x{frame.source[0]} (w x h) images, "
            f"got {gray.shape[1]}x{gray.shape[0]}; align the face to that dataset's framing first."
        )
    h, w = gray.shape
    out = np.full((frame.height, frame.width), border_mean(gray), np.uint8)
    r0, r1 = max(frame.top, 0), min(frame.top + frame.height, h)
    c0, c1 = max(frame.left, 0), min(frame.left + frame.width, w)
    out[r0 - frame.top : r1 - frame.top, c0 - frame.left : c1 - frame.left] = gray[r0:r1, c0:c1]
    return out
