"""The ``.pfb`` bundle: Deep Compression's storage format, versioned, checksummed and signed.

The writer side (encoding, signing, the size report) lives here; the format and its reader
(numpy and ``cryptography`` only, so a device can decode it) live in :mod:`devices.bundle`, and
are re-exported.
"""

from devices.bundle.codec import Coded, TensorInfo, compact, decode_record, encode_tensor
from devices.bundle.container import VERSION, Container, Record
from devices.bundle.errors import BundleError, SignatureError
from devices.bundle.huffman import code_lengths
from devices.bundle.sparse import decode_relative, encode_relative
from export.bundle.io import (
    SUFFIX,
    Bundle,
    build_bundle,
    read_bundle,
    write_bundle,
)
from export.bundle.report import (
    LAYER_HEADER,
    SIZE_HEADER,
    layer_rows,
    layer_table,
    render,
    stage_sizes,
    summary,
)
from export.bundle.signing import (
    DEFAULT_PRIVATE_KEY,
    PUBLIC_KEY_NAME,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    replace_public_key,
    write_public_key,
)

__all__ = [
    "DEFAULT_PRIVATE_KEY",
    "LAYER_HEADER",
    "PUBLIC_KEY_NAME",
    "SIZE_HEADER",
    "SUFFIX",
    "VERSION",
    "Bundle",
    "BundleError",
    "Coded",
    "Container",
    "Record",
    "SignatureError",
    "TensorInfo",
    "build_bundle",
    "code_lengths",
    "compact",
    "decode_record",
    "decode_relative",
    "encode_relative",
    "encode_tensor",
    "generate_key",
    "key_id",
    "layer_rows",
    "layer_table",
    "load_private_key",
    "load_public_key",
    "read_bundle",
    "render",
    "replace_public_key",
    "stage_sizes",
    "summary",
    "write_bundle",
    "write_public_key",
]
