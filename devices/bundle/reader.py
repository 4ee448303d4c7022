"""Reading whole bundles: signed ``.pfb`` bytes in, verified parameters out (numpy only).

The writer is :mod:`export.bundle.io` (server side); everything a reader needs lives here, in
the leaf package a device may import.

Example:
  >>> bundle = read_bundle(data, public_key=key.public_key())
  >>> bundle.params["fc1"]["kernel"].shape
  (784, 300)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import devices.bundle.container as container
from devices.bundle.codec import TensorInfo, decode_record
from devices.bundle.errors import BundleError


class Bundle(NamedTuple):
    """A verified, decoded bundle.

    Attributes:
      model: registered model name.
      options: the model's options.
      params: nested dict of float32 arrays (``params["fc1"]["kernel"]``).
      tensors: one :class:`TensorInfo` per tensor, in file order.
      nbytes: the file's size, every header, table, codebook and the signature included.
      key_id: hex id of the key that signed it.
    """

    model: str
    options: dict[str, Any]
    params: dict[str, Any]
    tensors: list[TensorInfo]
    nbytes: int
    key_id: str

    @property
    def reference_bytes(self) -> int:
        """Bytes of the same network dense in float32, biases included (the paper's reference)."""
        return 4 * sum(t.size for t in self.tensors)

    @property
    def ratio(self) -> float:
        """``reference_bytes / nbytes``."""
        return self.reference_bytes / self.nbytes


def _nest(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in flat.items():
        node = out
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise BundleError(f"tensor {name} clashes with another tensor's path.")
        if leaf in node:
            raise BundleError(f"tensor {name} appears twice.")
        node[leaf] = value
    return out


def read_bundle(
    source: bytes | str | os.PathLike[str],
    *,
    public_key: Any = None,
    verify: bool = True,
) -> Bundle:
    """Verifies and decodes a bundle.

    Args:
      source: the file's bytes or its path.
      public_key: the trusted key that must have signed it (path, PEM bytes or key object),
        named by the caller: a key found beside the bundle is never trusted, since whoever can
        replace the bundle can replace that key too.
      verify: check the signature (checksums are always checked); False only for debugging.

    Raises:
      BundleError: unreadable, truncated, corrupt or malformed.
      SignatureError: signed by another key, or modified after signing.
    """
    if isinstance(source, bytes | bytearray):
        data, where = bytes(source), "bundle"
    else:
        file = Path(source).expanduser()
        if file.is_dir():
            raise BundleError(f"{file} is a directory; give a bundle file (.pfb).")
        if not file.is_file():
            raise BundleError(f"{file} not found.")
        data, where = file.read_bytes(), str(file)
    key = None
    if verify:
        if public_key is None:
            raise BundleError(
                f"{where}: no trusted public key given to verify its signature; pass --key "
                "PUBLIC.pem (python -m export) or public_key= (a key beside a bundle is never "
                "trusted)."
            )
        key = container.load_public_key(public_key)
    parsed = container.read(data, key, where=where)
    flat, infos = {}, []
    for record in parsed.records:
        try:
            array, info = decode_record(record, parsed.record_bytes[record.name])
        except BundleError as err:
            raise BundleError(f"{where}: {err}") from None
        flat[record.name] = array
        infos.append(info)
    return Bundle(
        parsed.model, parsed.options, _nest(flat), infos, parsed.nbytes, parsed.key_id.hex()
    )
