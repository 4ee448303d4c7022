"""Reading capture files and folders of them, with one clear error per bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devices.imagefile import ImageReadError, read_folder, read_images


def _png(path: Path, value: int, shape: tuple[int, int] = (20, 30)) -> None:
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def test_a_folder_is_read_in_name_order_and_other_files_skipped(tmp_path: Path) -> None:
    _png(tmp_path / "b.png", 2)
    _png(tmp_path / "a.png", 1)
    np.save(tmp_path / "c.npy", np.full((2, 20, 30), 3, np.uint8))  # a batch of two
    (tmp_path / "notes.txt").write_text("not a capture\n")
    (tmp_path / "sub").mkdir()
    images = read_folder(tmp_path)
    assert [int(x[0, 0]) for x in images] == [1, 2, 3, 3]
    assert all(x.shape == (20, 30) for x in images)
    assert [int(x[0, 0]) for x in read_folder(tmp_path / "c.npy")] == [3, 3]  # one file


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such folder or file"),
        ("empty", "no capture files"),
        ("corrupt", "cannot read"),
        ("badarray", "is not an image or batch"),
    ],
)
def test_bad_folders_are_one_clear_error(tmp_path: Path, case: str, message: str) -> None:
    folder = tmp_path / "captures"
    if case != "missing":
        folder.mkdir()
    if case == "empty":
        (folder / "readme.txt").write_text("no images here\n")
    elif case == "corrupt":
        (folder / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(10))
    elif case == "badarray":
        np.save(folder / "x.npy", np.zeros((2, 3, 4, 5, 6)))
    with pytest.raises(ImageReadError, match=message):
        read_folder(folder)


def test_unknown_file_types_name_the_expected_ones(tmp_path: Path) -> None:
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(ImageReadError, match=r"unknown image type; expected one of \.png"):
        read_images(tmp_path / "x.gif")


def test_a_huge_claimed_size_is_one_error_and_no_library_warning(tmp_path: Path) -> None:
    import struct
    import warnings
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0)  # 1e8 px: Pillow warns
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail here
        with pytest.raises(ImageReadError, match="claims 100,000,000 values"):
            read_images(path)
