"""Learned minutiae detector, on the device: float32 numpy inference and decoding.

A fully convolutional network (:data:`LAYERS`) reads a uint8 500 dpi print, normalised by its own
mean and spread (ridges positive), and gives for every :data:`CELL` x :data:`CELL` px cell a
minutia logit, the minutia's offset inside the cell (two sigmoids) and its direction as
:data:`BINS` bins of the full turn. :func:`decode` keeps the cells whose probability is the
largest of their 3x3 neighbourhood and at least the threshold; a minutia's position is its cell
plus the offset, its direction the circular mean of the bins' probabilities. The kind (ending or
bifurcation) is not predicted: the matcher does not use it.

Trained on the synthetic generator's ground truth by ``python -m pretrain minutiae-detector``
(:mod:`pretrain.minutiae_detector`, which shares this module's architecture and decoding); the
weights and the threshold chosen with them are one ``.npz``.

Reference:
  Tang, Gao, Feng, Zhou, "FingerNet: An unified deep network for fingerprint minutiae
  extraction", IJCB 2017 (minutiae score, offset and direction maps on 8-px cells).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

CELL = 4  # px per output cell (the network's stride)
BINS = 24  # direction bins over the full turn (15 degrees each)
LAYERS = (  # (kernel, stride, dilation, channels out)
    (5, 2, 1, 32),
    (3, 1, 1, 32),
    (3, 2, 1, 64),
    (3, 1, 1, 64),
    (3, 1, 2, 64),
    (3, 1, 4, 64),
    (3, 1, 8, 64),
    (1, 1, 1, 1 + 2 + BINS),
)


class DetectorError(ValueError):
    """Weights that do not fit :data:`LAYERS`, or an image the detector cannot read."""


def bin_angles() -> np.ndarray:
    """The direction bins' centres, radians in (-pi, pi)."""
    return (np.arange(BINS) + 0.5) * 2 * np.pi / BINS - np.pi


def normalised(images: np.ndarray) -> np.ndarray:
    """float32 ``(n, h, w, 1)``: each image less its mean over its spread, ridges (dark)
    positive."""
    x = np.asarray(images, np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    spread = x.std(axis=(1, 2), keepdims=True) + 1e-3
    return ((mean - x) / spread)[..., None]


def _maxpool3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    h, w = a.shape[1:]
    return np.max([p[:, i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=0)


def decode(out: np.ndarray, threshold: float) -> list[np.ndarray]:
    """``(n, 4)`` rows x, y, angle, kind (0) of each image's minutiae from raw outputs
    ``(images, h // CELL, w // CELL, 3 + BINS)``."""
    prob = 1.0 / (1.0 + np.exp(-out[..., 0]))
    peaks = (prob >= _maxpool3(prob)) & (prob >= threshold)
    turn = np.exp(1j * bin_angles())
    found = []
    for k in range(len(out)):
        r, c = np.nonzero(peaks[k])
        offset = 1.0 / (1.0 + np.exp(-out[k, r, c, 1:3]))
        logits = out[k, r, c, 3:]
        p = np.exp(logits - logits.max(-1, keepdims=True))
        angle = np.angle((p * turn).sum(-1))
        x, y = (c + offset[:, 0]) * CELL, (r + offset[:, 1]) * CELL
        found.append(np.column_stack([x, y, angle, np.zeros(len(r))]))
    return found


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, dilation: int) -> np.ndarray:
    """A "SAME" convolution of ``x`` ``(h, w, cin)`` by ``w`` ``(k, k, cin, cout)``, as XLA pads
    it (the extra pixel of an even total on the bottom and right).

    Computed a band of output rows at a time as one product of the band's gathered taps
    ``(rows, w, k k cin)`` with the weights ``(k k cin, cout)`` (im2col): 1.4x faster than a
    product per tap, and 6x on the first layer, whose single input channel made each tap's
    product a thin one. A band gathers no more values than the output holds, so the peak memory
    is what a product per tap took (:data:`devices.print_minutiae.DESCRIBE_BYTES_PER_PX`)."""
    k, cout = w.shape[0], w.shape[3]
    reach = (k - 1) * dilation + 1
    h, wd = x.shape[:2]
    oh, ow = -(-h // stride), -(-wd // stride)
    pad_h = max((oh - 1) * stride + reach - h, 0)
    pad_w = max((ow - 1) * stride + reach - wd, 0)
    x = np.pad(x, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    flat = w.reshape(-1, cout)
    band = max(1, oh * cout // flat.shape[0])
    out = np.empty((oh, ow, cout), np.float32)
    for top in range(0, oh, band):
        end = min(oh, top + band)
        taps = [
            x[
                top * stride + i * dilation : (end - 1) * stride + i * dilation + 1 : stride,
                j * dilation : j * dilation + (ow - 1) * stride + 1 : stride,
            ]
            for i in range(k)
            for j in range(k)
        ]
        np.matmul(np.concatenate(taps, axis=2), flat, out=out[top:end])
    return out + b


@dataclasses.dataclass(frozen=True)
class MinutiaeDetector:
    """The detector's float32 weights ``(k, k, in, out)`` and biases, and its threshold."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    threshold: float

    @classmethod
    def load(cls, path: str | Path) -> MinutiaeDetector:
        """The weights and threshold of a ``.npz`` (``w0``, ``b0``, ..., ``threshold``).

        Raises:
          DetectorError: missing, unreadable, or not :data:`LAYERS`' shapes.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls.from_arrays(z, str(path))
        except (OSError, ValueError) as err:
            raise DetectorError(f"cannot read minutiae detector weights {path}: {err}") from None

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], where: str) -> MinutiaeDetector:
        """The detector of arrays named as :meth:`load` reads them (``where`` names them in
        errors).

        Raises:
          DetectorError: an array missing, or not :data:`LAYERS`' shapes.
        """
        try:
            weights = tuple(np.asarray(arrays[f"w{k}"], np.float32) for k in range(len(LAYERS)))
            biases = tuple(np.asarray(arrays[f"b{k}"], np.float32) for k in range(len(LAYERS)))
            threshold = float(arrays["threshold"])
        except (KeyError, TypeError, ValueError) as err:
            raise DetectorError(f"{where}: not minutiae detector weights ({err}).") from None
        cin = 1
        for k, ((kernel, _, _, cout), w, b) in enumerate(zip(LAYERS, weights, biases, strict=True)):
            if w.shape != (kernel, kernel, cin, cout) or b.shape != (cout,):
                raise DetectorError(
                    f"{where}: layer {k} has weights {w.shape} and bias {b.shape}; "
                    f"expected {(kernel, kernel, cin, cout)} and {(cout,)}."
                )
            cin = cout
        return cls(weights, biases, threshold)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays :meth:`from_arrays` reads."""
        out = {"threshold": np.array(self.threshold, np.float32)}
        out |= {f"w{k}": w for k, w in enumerate(self.weights)}
        return out | {f"b{k}": b for k, b in enumerate(self.biases)}

    def outputs(self, gray: np.ndarray) -> np.ndarray:
        """Raw outputs ``(h // CELL, w // CELL, 3 + BINS)`` of one uint8 print (cropped to
        multiples of :data:`CELL`)."""
        image = np.asarray(gray)
        if image.ndim != 2 or min(image.shape) < 2 * CELL:
            raise DetectorError(
                f"a 2-D grey print of at least {2 * CELL} x {2 * CELL} pixels is needed, got shape "
                f"{image.shape}."
            )
        h, w = (image.shape[0] // CELL) * CELL, (image.shape[1] // CELL) * CELL
        x = normalised(image[None, :h, :w])[0]
        for k, (layer, wk, bk) in enumerate(zip(LAYERS, self.weights, self.biases, strict=True)):
            x = _conv(x, wk, bk, layer[1], layer[2])
            if k < len(LAYERS) - 1:
                x = np.maximum(x, 0.0)
        return x

    def detect(self, gray: np.ndarray) -> np.ndarray:
        """The minutiae ``(n, 4)`` (x, y, angle, kind 0) of one uint8 500 dpi print."""
        return decode(self.outputs(gray)[None], self.threshold)[0]
