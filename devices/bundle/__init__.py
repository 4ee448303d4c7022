"""The ``.pfb`` format and its reader, numpy only: what the server writes and the phone decodes.

``container`` (layout, checksums, the signature check on the raw bytes), ``codec`` (one tensor's
record: raw, or codebook + sparse relative-index codes), ``huffman``, ``sparse`` and ``dedup``
(the streams), ``reader`` (a whole bundle -> parameters), ``grid`` (the int8 grid compressed
kernels are stored on) and ``download`` (the artifact a phone installs from one bundle). The
writers are in :mod:`export.bundle` and :mod:`export.artifact.download`.
"""

from devices.bundle.errors import BundleError, SignatureError
from devices.bundle.grid import Snapped, fixed_scales, snap
from devices.bundle.reader import Bundle, read_bundle

__all__ = [
    "Bundle",
    "BundleError",
    "SignatureError",
    "Snapped",
    "fixed_scales",
    "read_bundle",
    "snap",
]
