"""Fuzz targets of the ``.pfb`` reader (run by :func:`devices.fuzz.fuzz`).

``pfb``: mutated bundles re-signed with the trusted key, so the parser and the decoders behind
the signature see every mutation (as they would from a compromised or buggy signer).
``pfb_decode``: the same with every checksum recomputed as well, so mutated sections reach the
decoders (Huffman, relative indices, codebooks, deduplication).
``pfb_signature``: mutated bundles as they are, which the signature check must refuse.
``download``: mutated download bundles (:mod:`devices.bundle.download`: coded kernels, an XZ
model skeleton with placements, the background, the manifest), checksums fixed and re-signed,
so the skeleton's inflation, the placements and the background decoder see every mutation.
Numpy and ``cryptography`` only.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

import devices.bundle.container as container
import export.bundle.signing as signing
from devices import npy
from devices.bundle import download as dl
from devices.bundle.codec import Coded
from devices.bundle.errors import BundleError
from devices.bundle.grid import snap
from devices.contract import BACKGROUND, MANIFEST, MODEL, SIGNATURE
from devices.fuzz import Target
from export.bundle.download import build_download
from export.bundle.io import build_bundle, read_bundle


def resign(data: bytes, private_key: Any) -> bytes:
    """``data`` with its trailer replaced by ``private_key``'s signature of what precedes it."""
    body = data[: max(0, len(data) - container.TRAILER_BYTES)]
    return body + signing.key_id(private_key.public_key()) + signing.sign(private_key, body)


def fix_checksums(data: bytes) -> bytes:
    """``data`` with its header and section CRC-32s recomputed, where the header can be walked."""
    pre = container.PREAMBLE
    try:
        header_len = pre.unpack_from(data)[4]
        out = bytearray(data)
        reader = container._Reader(data, pre.size + header_len)
        reader.pos = pre.size + 4
        reader.text("B")
        reader.text("H")
        offset = pre.size + header_len
        for _ in range(reader.take("H")[0]):
            reader.text("B")
            kind, _, ndim = reader.take("BBB")
            reader.take(f"{ndim}I")
            if kind == container.KINDS["coded"]:
                reader.take("BBHB")
            for _ in range(reader.take("B")[0]):
                length = reader.take("I")[0]
                struct.pack_into("<I", out, reader.pos, zlib.crc32(data[offset : offset + length]))
                reader.take("I")
                offset += length
        struct.pack_into("<I", out, pre.size, zlib.crc32(out[pre.size + 4 : pre.size + header_len]))
        return bytes(out)
    except (BundleError, struct.error):
        return data


def seed_bundles(private_key: Any) -> list[bytes]:
    """Small bundles covering every layout: raw float32/float16, coded with each order, index
    width and deduplication, 1- to 4-D."""
    rng = np.random.default_rng(0)
    book = np.concatenate([[0.0], np.sort(rng.standard_normal(15))]).astype(np.float32)
    out = []
    for bits, order, dedup in [(4, "row", 0), (5, "last-axis-first", 1), (3, "row", 3)]:
        codes = rng.integers(1, 16, (12, 10)) * (rng.random((12, 10)) < 0.3)
        conv = rng.integers(1, 8, (3, 3, 2, 4)) * (rng.random((3, 3, 2, 4)) < 0.6)
        tensors = {
            "fc/kernel": Coded(book, codes),
            "fc/bias": rng.standard_normal(10).astype(np.float32),
            "conv/kernel": Coded(book[:8], conv),
        }
        for dtype in ("float32", "float16"):
            out.append(
                build_bundle(
                    tensors,
                    model="lenet300",
                    options={"hidden": [10]},
                    private_key=private_key,
                    index_bits=bits,
                    order=order,
                    dedup=dedup,
                    codebook_dtype=dtype,
                    raw_dtype=dtype,
                )
            )
    return out


def seed_downloads(private_key: Any) -> list[bytes]:
    """Small download bundles: a stand-in model file holding two kernels' int8 bytes (once in
    each layout), a 5-bit background, a manifest and a signature."""
    rng = np.random.default_rng(1)
    out = []
    for rows in (40, 90):
        book = np.concatenate([[0.0], np.sort(rng.standard_normal(7))]).astype(np.float32)
        kernels = {
            "a/kernel": Coded(book, rng.integers(0, 8, (3, 3, 2, 8))),
            "b/kernel": Coded(book[:5], rng.integers(0, 5, (16, 6))),
        }
        q = {
            n: snap(k.codebook.astype(np.float16).astype(np.float32)[k.codes]).q
            for n, k in kernels.items()
        }
        model = b"TFL3" + bytes(rng.integers(0, 256, 64, dtype=np.uint8))
        model += dl.laid_out(q["a/kernel"], "last-axis-first").tobytes() + b"graph" * 20
        model += dl.laid_out(q["b/kernel"], "row").tobytes() + bytes(40)
        levels = 15
        background = dl.expand_background(
            *dl.compact_background(rng.standard_normal((rows, 8)), levels)
        )
        manifest = {"format": "pocketfit-artifact/1", "background": {"levels": levels}}
        files = {
            MODEL: model,
            BACKGROUND: npy.to_bytes(background),
            MANIFEST: json.dumps(manifest).encode(),
            SIGNATURE: bytes(72),
        }
        out.append(build_download(files, kernels, model="embednet", private_key=private_key))
    return out


def targets(workdir: Path) -> dict[str, Target]:
    """The bundle targets (``workdir`` is unused: bundles are read from bytes)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key()
    seeds = seed_bundles(key)
    return {
        "pfb": Target(
            seeds, lambda d: read_bundle(resign(d, key), public_key=public), (BundleError,)
        ),
        "pfb_decode": Target(
            seeds,
            lambda d: read_bundle(resign(fix_checksums(d), key), public_key=public),
            (BundleError,),
        ),
        "pfb_signature": Target(seeds, lambda d: read_bundle(d, public_key=public), (BundleError,)),
        "download": Target(
            seed_downloads(key),
            lambda d: dl.read_download(resign(fix_checksums(d), key), public_key=public),
            (BundleError,),
        ),
    }
