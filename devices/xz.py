"""XZ streams that a device inflates in little memory: the dictionary is sized to the data.

An XZ stream names its LZMA2 dictionary, and a decoder allocates all of it before the first byte.
Preset 9's dictionary is 64 MiB, which a phone would spend to inflate a 1.9 MB model skeleton
(measured: reading the face download, 326 KB, peaked at 75 MB of Python heap). A dictionary at
least as large as the data finds every match preset 9 would, so the stream is as small, and the
decoder's dictionary is at most twice the data. Inflating holds that dictionary beside the output
as CPython's lzma builds it (its blocks, then the joined bytes): about 4.5 times the output at the
peak (tracemalloc: 28.6 MB to inflate the face artifact's 6.1 MB of feature codes).
"""

from __future__ import annotations

import lzma

MIN_DICTIONARY = 1 << 12  # LZMA2's smallest


def compress(data: bytes) -> bytes:
    """``data`` as one XZ stream (LZMA2, strongest preset, dictionary sized to the data)."""
    dictionary = max(MIN_DICTIONARY, 1 << max(0, len(data) - 1).bit_length())
    lzma2 = {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": dictionary}
    return lzma.compress(data, format=lzma.FORMAT_XZ, filters=[lzma2])


def decompress(data: bytes, limit: int) -> bytes:
    """One XZ stream inflated, never past ``limit`` bytes (no bomb).

    Raises:
      ValueError: not an XZ stream, more than ``limit`` bytes, or not exactly one whole stream
        (truncated, or bytes after it).
    """
    stream = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        out = stream.decompress(data, max_length=limit + 1)
    except lzma.LZMAError as err:
        raise ValueError(f"not an XZ stream ({err})") from None
    whole = stream.eof and not stream.unused_data
    del stream  # and its dictionary
    if len(out) > limit:
        raise ValueError(f"inflates to more than {limit} bytes")
    if not whole:
        raise ValueError("not exactly one XZ stream (truncated, or bytes after it)")
    return out
