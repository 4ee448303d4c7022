"""Learned fingerprint anchor: a small integer CNN on the orientation field points at the core.

The symmetry filter of :mod:`devices.registration` picks the strongest core-like response, which
on a print whose flow is bent, whose core is out of contact, or which has no core (an arch) can
land on a different point of the finger in each impression. This step learns where the anchor is
from the synthetic generator, which knows it: the mean of the master's cores (one for a loop or a
tented arch, the midpoint of a whorl's two), or for an arch the top of its ridge bump. The
network sees the whole field, so it can also point outside the contact area when the core was
not touched.

Numpy only, integer arithmetic throughout (int8 weights, int64 accumulation, uint8 activations
requantised by an integer multiplier and shift, an integer argmax), so the phone repeats the
server's anchor bit for bit. The weights ship with this module (``localiser.npz``, a few KB):
they are part of the preprocessing, not of a model, and the window spec names them.

Steps:

1. :func:`localiser_input` - the print's quantised orientation vectors (``vx``, ``vy`` Q10 of
   :func:`devices.registration.orientation_vectors`, divided by 8) and its foreground (128), per
   8x8 block, zero-padded by :data:`PAD` blocks on every side.
2. :class:`Localiser` - 3x3 convolutions with growing dilation and ReLU, then a 1x1 convolution
   to one logit per block (:meth:`Localiser.heatmap`); the anchor is the centre of the block with
   the largest logit (:meth:`Localiser.locate`).
3. Optionally (a spec's ``second_anchor_below``), a print whose heatmap is flat - its best logit
   beats the best one :data:`PEAK_SEPARATION` or more blocks away by less than the gate - also
   gives a window at that second peak (:func:`anchor_windows`); a matcher scores the best of the
   windows. On real prints the heatmap is flat far more often than on synthetic ones, and the
   two impressions' anchors disagree mostly there.

Trained by ``python -m pretrain localiser`` (:mod:`pretrain.localiser`), which writes
``localiser.npz`` and a JSON of its figures.

References:
  Yu, Koltun, "Multi-scale context aggregation by dilated convolutions", ICLR 2016 (dilated
  context without pooling).
  Jacob et al., "Quantization and training of neural networks for efficient integer-arithmetic-
  only inference", CVPR 2018 (int8 weights, integer requantisation multipliers).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from devices.contract import ArtifactError
from devices.preprocess import (
    CROP_FUNCTIONS,
    VIEW_FUNCTIONS,
    PreprocessError,
    PreprocessSpec,
    to_gray_u8,
)
from devices.registration import BLOCK, Pose, framed, orientation_vectors, warp_window

PAD = 8  # blocks of zero margin: an anchor up to 64 px outside the print can be pointed at
SHIFT = 16  # fixed-point bits of the requantisation multipliers
INPUT_SCALE = 128  # the float network's input is the integer input / INPUT_SCALE
WEIGHTS = Path(__file__).with_name("localiser.npz")
PEAK_SEPARATION = 4  # blocks (32 px): the second peak is the best one at least this far away


def localiser_input(gray: np.ndarray) -> np.ndarray:
    """int64 ``(3, H / 8 + 2 PAD, W / 8 + 2 PAD)``: ``vx / 8``, ``vy / 8`` (in -128..128) and
    128 on foreground blocks, zero in the margin."""
    vx, vy = orientation_vectors(gray)
    fg = ((vx != 0) | (vy != 0)).astype(np.int64) * INPUT_SCALE
    x = np.stack([vx // 8, vy // 8, fg])
    return np.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD)))


def conv_int(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """Exact integer ``same`` convolution: int64 ``x (in, h, w)``, ``w (out, in, k, k)``, ``b
    (out,)``, zero padding; taps summed in a fixed order."""
    k = w.shape[-1]
    r = dilation * (k // 2)
    p = np.pad(x, ((0, 0), (r, r), (r, r)))
    h, wd = x.shape[1:]
    out = np.broadcast_to(b[:, None, None], (w.shape[0], h, wd)).copy()
    for i in range(k):
        for j in range(k):
            tap = p[:, i * dilation : i * dilation + h, j * dilation : j * dilation + wd]
            out += np.tensordot(w[:, :, i, j], tap, axes=(1, 0))
    return out


def cell_centre(i: int, j: int) -> tuple[int, int]:
    """``(row, col)`` px in the print of the centre of block ``(i, j)`` of the padded grid."""
    return (i - PAD) * BLOCK + BLOCK // 2, (j - PAD) * BLOCK + BLOCK // 2


def peaks(
    logits: np.ndarray, count: int = 2, separation: int = PEAK_SEPARATION
) -> list[tuple[int, int, int]]:
    """``(i, j, logit)`` of a heatmap's best block (the first on a tie), then of the best
    blocks at least ``separation`` blocks (in rows or columns) from every earlier one."""
    left = np.asarray(logits, np.float64).copy()
    out = []
    for _ in range(count):
        i, j = divmod(int(np.argmax(left)), left.shape[1])
        if not np.isfinite(left[i, j]):
            break
        out.append((i, j, int(logits[i, j])))
        left[
            max(0, i - separation) : i + separation + 1, max(0, j - separation) : j + separation + 1
        ] = -np.inf
    return out


def block_centre(logits: np.ndarray) -> tuple[int, int]:
    """``(row, col)`` px in the print of the centre of the block with the largest logit of a
    padded-grid heatmap (the first on a tie)."""
    return cell_centre(*divmod(int(np.argmax(logits)), logits.shape[1]))


@dataclasses.dataclass(frozen=True)
class Localiser:
    """The integer network: per layer int8 weights ``(out, in, k, k)``, int64 biases at the
    accumulator's scale, a dilation, and for hidden layers the multiplier taking the accumulator
    to a uint8 activation (``(acc * m + 2^(SHIFT-1)) >> SHIFT``, clipped to 0..255)."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    dilations: tuple[int, ...]
    multipliers: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.weights)
        if not (len(self.biases) == len(self.dilations) == n and len(self.multipliers) == n - 1):
            raise PreprocessError(
                "a localiser needs one bias and dilation per layer and one multiplier per "
                "hidden layer."
            )

    def heatmap(self, x: np.ndarray) -> np.ndarray:
        """int64 logits per block of :func:`localiser_input`'s grid."""
        last = len(self.weights) - 1
        for k, (w, b, d) in enumerate(zip(self.weights, self.biases, self.dilations, strict=True)):
            x = conv_int(x, w, b, d)
            if k < last:
                x = np.clip((x * self.multipliers[k] + (1 << (SHIFT - 1))) >> SHIFT, 0, 255)
        return x[0]

    def locate(self, gray: np.ndarray) -> tuple[int, int]:
        """The anchor ``(row, col)`` in the print's pixels (may lie outside it, by up to
        ``PAD`` blocks): :func:`block_centre` of the heatmap."""
        return block_centre(self.heatmap(localiser_input(gray)))

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {
            "dilations": np.asarray(self.dilations, np.int64),
            "multipliers": np.asarray(self.multipliers, np.int64),
        }
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"w{k}"] = w.astype(np.int8)
            arrays[f"b{k}"] = b.astype(np.int64)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Localiser:
        with np.load(io.BytesIO(data)) as z:
            n = len(z["dilations"])
            return cls(
                weights=tuple(z[f"w{k}"].astype(np.int64) for k in range(n)),
                biases=tuple(z[f"b{k}"].astype(np.int64) for k in range(n)),
                dilations=tuple(int(d) for d in z["dilations"]),
                multipliers=tuple(int(m) for m in z["multipliers"]),
            )


@functools.cache
def shipped(path: Path = WEIGHTS) -> Localiser:
    """The localiser that ships with this module (read once)."""
    if not path.exists():
        raise PreprocessError(
            f"{path} is missing: the learned anchor needs its weights "
            "(python -m pretrain localiser writes them)."
        )
    return Localiser.from_bytes(path.read_bytes())


@functools.cache
def weights_sha256(path: Path = WEIGHTS) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


PIN = "localiser_sha256"  # the artifact manifest's ``input`` key naming the weights it needs


def pin(spec: PreprocessSpec) -> dict[str, str]:
    """What an artifact's ``input`` records so that a device with other localiser weights
    refuses it instead of cutting other windows: ``{PIN: sha256}`` for ``crop="anchor"``."""
    return {PIN: weights_sha256()} if spec.crop == "anchor" else {}


def check_pin(input_manifest: dict[str, Any]) -> None:
    """Raises :class:`devices.contract.ArtifactError` when the artifact pins localiser weights
    other than the ones shipped here."""
    pinned = input_manifest.get(PIN)
    if pinned is not None and pinned != weights_sha256():
        raise ArtifactError(
            f"the artifact was exported with localiser weights {pinned[:12]}, this device has "
            f"{weights_sha256()[:12]} (devices/localiser.npz): install the pocketfit it was "
            "exported with, or export it again."
        )


def anchor_pose(image: np.ndarray, localiser: Localiser | None = None) -> Pose:
    """The learned anchor as a :class:`devices.registration.Pose` (no rotation)."""
    gray = to_gray_u8(image)
    row, col = (localiser or shipped()).locate(gray)
    return Pose(row, col, 0, 0, True)


def anchor_window(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``crop="anchor"``: the uint8 ``size`` window with the learned anchor where
    :func:`devices.registration.core_window` puts the core (``CORE_ABOVE_CENTRE`` px above the
    centre)."""
    return warp_window(gray, anchor_pose(gray), framed(size))


def anchor_hypotheses(
    gray: np.ndarray, below: int, localiser: Localiser | None = None
) -> list[tuple[int, int]]:
    """``(row, col)`` px of the anchor, then, when the heatmap's best logit beats the second
    peak's (:func:`peaks`) by less than ``below``, of that second peak (``below`` 0: never)."""
    found = peaks((localiser or shipped()).heatmap(localiser_input(gray)))
    points = [cell_centre(i, j) for i, j, _ in found]
    if len(found) < 2 or found[0][2] - found[1][2] >= below:
        return points[:1]
    return points


def anchor_windows(gray: np.ndarray, size: tuple[int, int], below: int) -> list[np.ndarray]:
    """The uint8 ``size`` windows of :func:`anchor_hypotheses` (the first is
    :func:`anchor_window`'s)."""
    return [
        warp_window(gray, Pose(row, col, 0, 0, True), framed(size))
        for row, col in anchor_hypotheses(gray, below)
    ]


CROP_FUNCTIONS["anchor"] = anchor_window
VIEW_FUNCTIONS["anchor"] = anchor_windows

ANCHOR_SPEC = PreprocessSpec(
    modality="fingerprint", input_size=(128, 128), crop="anchor", crop_size=(256, 256)
)
"""``CORE_SPEC`` with the learned anchor in place of the symmetry filter's core."""

# Chosen on synthetic dev prints only (notebooks/results/fingerprint_ablation.md, "A second
# window where the heatmap is flat"): the 10th percentile of these weights' heatmap margins on the mixed
# generator's validation prints (ids 0-99 x 8), best of the 5/10/20/30% gates there; confirmed on
# ids 5000-5099. Tied to the weights it was chosen for (a test checks the shipped ones are
# those): new weights need it chosen again.
SECOND_ANCHOR_BELOW = 4816
SECOND_ANCHOR_WEIGHTS = "4397e31c073e77142e2b762fe05ff3276d46616d82b82de130817efaa1d486bb"
ANCHOR_VIEWS_SPEC = dataclasses.replace(ANCHOR_SPEC, second_anchor_below=SECOND_ANCHOR_BELOW)
"""``ANCHOR_SPEC`` whose flat-heatmap prints also give the second peak's window."""
