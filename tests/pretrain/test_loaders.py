"""Image loaders: ORL faces, FVC sets, folder-per-identity trees, and their error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from devices.preprocess import (
    FACE_SPEC,
    FINGERPRINT_SPEC,
    SENSOR_DPI,
    PreprocessError,
    PreprocessSpec,
)
from pretrain.data import (
    DataError,
    DataNotFoundError,
    fvc_sets,
    impression_numbers,
    load_folder,
    load_fvc,
    load_orl,
    read_folder,
    read_fvc,
    read_image,
    read_orl,
)
from pretrain.data.fvc import SET_DPI, SET_SIZES


@pytest.fixture(scope="module")
def fvc_root(data_root: Path) -> Path:
    if not (data_root / "fvc").is_dir():
        pytest.skip(f"FVC sets not found: put them in {data_root / 'fvc'}/<set>/.")
    return data_root


@pytest.mark.data
def test_orl_faces(orl_root: Path) -> None:
    raw = read_orl(orl_root)
    assert len(raw) == 400 and {im.shape for im in raw.images} == {(112, 92)}
    assert np.bincount(raw.labels).tolist() == [10] * 40
    assert raw.identities[0] == "s1" and raw.paths[-1].name == "10.pgm"
    faces = load_orl(orl_root)
    assert faces.images.shape == (400, *FACE_SPEC.shape) and faces.images.dtype == np.float32


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(SET_SIZES))
def test_fvc_sets(fvc_root: Path, name: str) -> None:
    if name not in fvc_sets(fvc_root):
        pytest.skip(f"{name} not present")
    raw = read_fvc(name, fvc_root)
    scale = SENSOR_DPI / SET_DPI.get(name, SENSOR_DPI)  # read at 500 dpi
    size = tuple(round(side * scale) for side in SET_SIZES[name])
    assert len(raw) == 80 and {im.shape for im in raw.images} == {size}
    assert np.bincount(raw.labels).tolist() == [8] * 10
    assert raw.identities == tuple(str(f) for f in range(101, 111))
    prints = load_fvc(name, fvc_root)
    assert prints.images.shape == (80, *FINGERPRINT_SPEC.shape)
    assert np.all(np.isfinite(prints.images))


def write_images(folder: Path, count: int, ext: str, *, rgb: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for k in range(count):
        shape = (40, 30, 3) if rgb else (40, 30)
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        if ext == ".tif":
            tifffile.imwrite(folder / f"{k}{ext}", array)
        else:
            Image.fromarray(array).save(folder / f"{k}{ext}")


def test_folder_per_identity_all_formats(tmp_path: Path) -> None:
    for ident, ext in enumerate((".png", ".jpg", ".pgm", ".tif", ".bmp")):
        write_images(tmp_path / f"person{ident}", 2 + ident, ext, rgb=ext in (".png", ".jpg"))
    raw = read_folder(tmp_path)
    assert raw.identities == tuple(f"person{i}" for i in range(5))
    assert np.bincount(raw.labels).tolist() == [2, 3, 4, 5, 6]
    assert all(im.dtype == np.uint8 and im.shape == (40, 30) for im in raw.images)
    data = load_folder(tmp_path, FACE_SPEC)
    assert data.images.shape == (20, 64, 64, 1)


def test_read_image_converts_rgb_to_gray(tmp_path: Path) -> None:
    Image.fromarray(np.full((4, 4, 3), (255, 0, 0), np.uint8)).save(tmp_path / "red.png")
    assert read_image(tmp_path / "red.png").tolist() == [[76] * 4] * 4


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20),
        ("bad.tif", b"II*\x00" + b"\x00" * 10),
        ("bad.jpg", b"not a jpeg at all"),
        ("empty.pgm", b""),
    ],
)
def test_corrupt_image_names_the_file(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=rf"{name}: cannot read image"):
        read_image(tmp_path / name)


def test_truncated_png_names_the_file(tmp_path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)).save(
        tmp_path / "t.png"
    )
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t\.png: cannot read image"):
        read_image(tmp_path / "t.png")


def test_folder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="not a folder"):
        read_folder(tmp_path / "missing")
    write_images(tmp_path / "flat", 2, ".png")
    with pytest.raises(DataError, match=r"unknown layout.*2 loose image files \(e\.g\. 0\.png\)"):
        read_folder(tmp_path / "flat")
    write_images(tmp_path / "tree" / "alice", 2, ".png")
    (tmp_path / "tree" / "bob").mkdir()
    with pytest.raises(DataError, match=r"bob: identity 'bob' has 0 image\(s\)"):
        read_folder(tmp_path / "tree")
    (tmp_path / "tree" / "bob" / "x.png").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"bob/x\.png: cannot read image"):
        read_folder(tmp_path / "tree")


def test_orl_missing_files_are_listed(tmp_path: Path) -> None:
    write_images(tmp_path / "orl_faces" / "s1", 3, ".pgm")
    with pytest.raises(DataNotFoundError) as err:
        read_orl(tmp_path)
    message = str(err.value)
    assert (
        "POCKETFIT_DATA/orl_faces" in message and "s1/1.pgm" not in message.split("missing")[1][:5]
    )
    assert "s1/10.pgm" in message or "s1/4.pgm" in message


def test_orl_wrong_size_names_the_file(tmp_path: Path) -> None:
    for s in range(1, 41):
        folder = tmp_path / "orl_faces" / f"s{s}"
        folder.mkdir(parents=True)
        for k in range(1, 11):
            Image.fromarray(np.zeros((112, 92) if s < 40 else (10, 10), np.uint8)).save(
                folder / f"{k}.pgm"
            )
    with pytest.raises(DataError, match=r"s40/1\.pgm: ORL images are 92x112.*10x10"):
        read_orl(tmp_path)


def test_fvc_errors(tmp_path: Path) -> None:
    folder = tmp_path / "fvc" / "mine"
    folder.mkdir(parents=True)
    tifffile.imwrite(folder / "1_1.tif", np.zeros((50, 40), np.uint8))
    assert fvc_sets(tmp_path) == ["mine"]
    with pytest.raises(DataNotFoundError, match=r"'nope' not found.*sets present: mine"):
        read_fvc("nope", tmp_path)
    tifffile.imwrite(folder / "finger1.tif", np.zeros((50, 40), np.uint8))
    with pytest.raises(DataError, match=r"finger1\.tif: unknown layout"):
        read_fvc("mine", tmp_path)
    (folder / "finger1.tif").unlink()
    (folder / "1_2.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError, match=r"1_2\.tif: cannot read image"):
        read_fvc("mine", tmp_path)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataNotFoundError, match="No 'fvc' folder"):
        read_fvc("mine", tmp_path / "elsewhere")


def test_impression_numbers_from_file_names() -> None:
    assert impression_numbers([Path("a/101_3.tif"), Path("102_8.TIF")]).tolist() == [3, 8]
    with pytest.raises(DataError, match="<finger>_<impression>"):
        impression_numbers([Path("101-3.tif")])


def test_fvc_sensor_sets_name_each_prints_finger(tmp_path: Path) -> None:
    """Pooled as identities, FVC2000 DB1 and DB2 (one set of fingers on two sensors) keep a
    label per set and share an owner per finger; DB3's fingers are others."""
    from pretrain.embedding import fvc_sensor_sets

    yy, xx = np.mgrid[:120, :100]
    for name in ("2000_DB1_B", "2000_DB2_B", "2000_DB3_B"):
        for finger in (101, 102):
            for impression in (1, 2):
                ridges = 127 + 100 * np.sin((xx + 3 * impression + finger) / 3.0 + yy / 7.0)
                folder = tmp_path / "fvc" / name
                folder.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(folder / f"{finger}_{impression}.tif", ridges.astype(np.uint8))
    prints = fvc_sensor_sets(str(tmp_path), ("2000_DB1_B", "2000_DB2_B", "2000_DB3_B"))
    assert prints.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert prints.impressions.tolist() == [1, 2] * 6
    assert (
        prints.owners.tolist()
        == ["2000_DB1_B/101"] * 2
        + ["2000_DB1_B/102"] * 2
        + ["2000_DB1_B/101"] * 2
        + ["2000_DB1_B/102"] * 2
        + ["2000_DB3_B/101"] * 2
        + ["2000_DB3_B/102"] * 2
    )
    assert prints.images.shape[0] == 12 and prints.set_of[4] == "2000_DB2_B"


def test_fvc_sensor_sets_name_the_print_that_fails(tmp_path: Path, monkeypatch) -> None:
    """A print the preprocessing refuses is named as its file is (set, finger, impression)."""
    from pretrain.embedding import fvc_sensor_sets, suites

    yy, xx = np.mgrid[:120, :100]
    folder = tmp_path / "fvc" / "2000_DB1_B"
    folder.mkdir(parents=True)
    for finger in (101, 102):
        for impression in (1, 2):
            ridges = 127 + 100 * np.sin((xx + 3 * impression + finger) / 3.0 + yy / 7.0)
            tifffile.imwrite(folder / f"{finger}_{impression}.tif", ridges.astype(np.uint8))
    calls = []

    def refuse_the_third(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
        calls.append(image)
        if len(calls) == 3:
            raise PreprocessError("a stand-in refusal.")
        return np.zeros(spec.shape, np.float32)

    monkeypatch.setattr(suites, "preprocess_image", refuse_the_third)
    with pytest.raises(DataError, match=r"^fvc/2000_DB1_B/102_1: a stand-in refusal\.$"):
        fvc_sensor_sets(str(tmp_path), ("2000_DB1_B",))
