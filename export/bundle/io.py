"""Writing whole bundles: parameters in, signed ``.pfb`` bytes out (the reader is
:mod:`devices.bundle.reader`, which a device may import).

Example:
  >>> data = build_bundle(tensors, model="lenet300", options={}, private_key=key)
  >>> bundle = read_bundle(data, public_key=key.public_key())
  >>> bundle.params["fc1"]["kernel"].shape
  (784, 300)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import devices.bundle.container as container
from devices.bundle.codec import AUTO, encode_tensor, per_tensor
from devices.bundle.reader import Bundle as Bundle  # re-exported: the writer's counterpart
from devices.bundle.reader import read_bundle as read_bundle
from devices.files import atomic_write

SUFFIX = ".pfb"


def build_bundle(
    tensors: Mapping[str, Any],
    *,
    model: str,
    options: Mapping[str, Any],
    private_key: Any,
    index_bits: int | str | Mapping[str, int | str] = AUTO,
    order: str | Mapping[str, str] = AUTO,
    dedup: int | str | Mapping[str, int | str] = AUTO,
    codebook_dtype: str = "float32",
    raw_dtype: str = "float32",
) -> bytes:
    """Encodes and signs a bundle.

    Args:
      tensors: leaf path -> array (stored raw) or anything with ``codebook`` and ``codes``
        (stored coded, e.g. :class:`~devices.bundle.codec.Coded` or a quantizer's packed leaf), in
        parameter-tree order.
      model: registered model name; ``options``: its options (for rebuilding it).
      private_key: Ed25519 private key (see :mod:`export.bundle.signing`).
      index_bits: relative index width, ``"auto"``, or per layer / leaf.
      order: code layout, ``"auto"``, or per layer / leaf.
      dedup: store distinct rows / columns once (0 no, 1 rows, 2 columns, 3 both), ``"auto"``, or
        per layer / leaf.
      codebook_dtype: ``"float32"`` or ``"float16"`` codebook entries.
      raw_dtype: ``"float32"`` or ``"float16"`` for raw tensors (biases).

    Returns:
      The file's bytes.
    """
    records = []
    for name, value in tensors.items():
        record = encode_tensor(
            name,
            value,
            index_bits=per_tensor(index_bits, name),
            order=per_tensor(order, name),
            dedup=per_tensor(dedup, name),
            codebook_dtype=codebook_dtype,
            raw_dtype=raw_dtype,
        )
        records.append(record)
    return container.write(model, dict(options), records, private_key)


def write_bundle(path: str | os.PathLike[str], data: bytes) -> Path:
    """Writes bundle bytes to ``path`` (atomically: :func:`devices.files.atomic_write`)."""
    return atomic_write(path, data)
