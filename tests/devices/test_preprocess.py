"""Device-side preprocessing: the spec round-trips through JSON, resizing is exact, output is
bit-identical on every call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from devices.preprocess import (
    FACE_FRAMES,
    FACE_SPEC,
    FINGERPRINT_SPEC,
    LFW_FRAME,
    SENSOR_DPI,
    YALE_B_FRAME,
    FaceFrame,
    PreprocessError,
    PreprocessSpec,
    border_mean,
    crop,
    foreground_centre,
    frame_face,
    preprocess_batch,
    preprocess_batch_views,
    preprocess_image,
    resize,
    resize_taps,
    to_gray_u8,
    to_sensor_dpi,
)


@pytest.mark.parametrize("spec", [FINGERPRINT_SPEC, FACE_SPEC])
def test_spec_round_trips_through_json(spec: PreprocessSpec) -> None:
    again = PreprocessSpec.from_dict(json.loads(spec.to_json()))
    assert again == spec


def test_documented_input_sizes() -> None:
    assert FINGERPRINT_SPEC.shape == (128, 128, 1) and FINGERPRINT_SPEC.crop_size == (256, 256)
    assert FACE_SPEC.shape == (64, 64, 1) and FACE_SPEC.crop == "centre_square"


def test_bad_specs_say_which_field() -> None:
    with pytest.raises(PreprocessError, match=r"unknown preprocessing key.*bogus"):
        PreprocessSpec.from_dict({**FACE_SPEC.to_dict(), "bogus": 1})
    with pytest.raises(PreprocessError, match="resize must be one of"):
        PreprocessSpec("face", (64, 64), resize="cubic")
    with pytest.raises(PreprocessError, match="positive crop_size"):
        PreprocessSpec("fingerprint", (128, 128), crop="foreground")
    with pytest.raises(PreprocessError, match="input_size"):
        PreprocessSpec("face", (0, 64))


@pytest.mark.parametrize(("n_in", "n_out"), [(256, 128), (92, 64), (112, 64), (7, 3), (5, 11)])
@pytest.mark.parametrize("method", ["area", "bilinear"])
def test_resize_weights_sum_to_one(n_in: int, n_out: int, method: str) -> None:
    index, weight = resize_taps(n_in, n_out, method)
    np.testing.assert_allclose(weight.sum(axis=0), 1.0, rtol=1e-12)
    assert index.min() >= 0 and index.max() < n_in


def test_area_halving_is_the_block_mean() -> None:
    image = np.random.default_rng(0).integers(0, 256, (256, 256)).astype(np.uint8)
    blocks = image.reshape(128, 2, 128, 2).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(resize(image, (128, 128), "area"), blocks)


def test_bilinear_keeps_a_ramp_linear() -> None:
    ramp = np.tile(np.arange(10, dtype=np.float64), (4, 1))
    out = resize(ramp, (4, 20), "bilinear")
    inner = out[0, 1:-1]
    np.testing.assert_allclose(np.diff(inner), 0.5, rtol=1e-12)


def test_a_569_dpi_print_comes_to_500_dpi_ridges() -> None:
    # FVC2002 DB2's sensor: 296 x 560 at 569 dpi; ridges of a 9 px period at 500 dpi span
    # 9 * 569 / 500 px there, and 9 px again once resampled.
    cols = np.arange(296)
    ridges = 128 + 100 * np.sin(2 * np.pi * cols / (9 * 569 / 500))
    capture = np.tile(np.rint(ridges), (560, 1)).astype(np.uint8)
    out = to_sensor_dpi(capture, 569)
    assert out.dtype == np.uint8 and out.shape == (492, 260)
    row = out[246].astype(np.float64) - out[246].mean()
    spectrum = np.abs(np.fft.rfft(row))
    assert 260 / np.argmax(spectrum) == pytest.approx(9.0, rel=0.03)


def test_sensor_dpi_keeps_500_and_halves_1000_by_block_means() -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 48)).astype(np.uint8)
    assert np.array_equal(to_sensor_dpi(image, SENSOR_DPI), image)
    assert np.array_equal(to_sensor_dpi(image, np.int64(SENSOR_DPI)), image)  # numpy numbers too
    halved = to_sensor_dpi(image, 2 * SENSOR_DPI)
    blocks = image.reshape(32, 2, 24, 2).astype(np.float64).mean(axis=(1, 3))
    assert np.array_equal(halved, np.rint(blocks).astype(np.uint8))


@pytest.mark.parametrize("dpi", [0, -500, float("nan"), float("inf"), "500", True])
def test_sensor_dpi_refuses_what_is_not_a_resolution(dpi: object) -> None:
    with pytest.raises(PreprocessError, match="positive number of dpi"):
        to_sensor_dpi(np.zeros((8, 8), np.uint8), dpi)  # type: ignore[arg-type]


@pytest.mark.parametrize("dpi", [1, 249.9, 1500.1, 1e9])
def test_sensor_dpi_refuses_a_resolution_no_sensor_has(dpi: float) -> None:
    """``dpi=1`` once asked for a 270 GiB array; refused before anything is allocated."""
    with pytest.raises(PreprocessError, match=r"outside 250\.\.1500 dpi"):
        to_sensor_dpi(np.zeros((300, 300), np.uint8), dpi)


def test_gray_conversion_is_integer_exact() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    assert to_gray_u8(rgb).tolist() == [[76, 150, 29, 18]]  # (299 R + 587 G + 114 B + 500) // 1000
    assert to_gray_u8(np.array([[0, 65535]], np.uint16)).tolist() == [[0, 255]]
    assert to_gray_u8(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 128, 255]]
    with pytest.raises(PreprocessError, match="NaN"):
        to_gray_u8(np.array([[np.nan]]))
    with pytest.raises(PreprocessError, match=r"\(h, w\)"):
        to_gray_u8(np.zeros((2, 2, 2)))


def striped_print(shape=(300, 280), centre=(200, 90), half=60) -> np.ndarray:
    """A flat background with a striped square (a 'print') centred at ``centre`` (row, col)."""
    image = np.full(shape, 220, np.uint8)
    r, c = centre
    cols = np.arange(c - half, c + half)
    stripes = (128 + 100 * np.sin(2 * np.pi * cols / 9)).astype(np.uint8)
    image[r - half : r + half, c - half : c + half] = stripes[None, :]
    return image


def test_foreground_crop_centres_the_print() -> None:
    image = striped_print()
    row, col = foreground_centre(image, FINGERPRINT_SPEC)
    assert abs(row - 200) <= 8 and abs(col - 90) <= 8
    patch = crop(image, FINGERPRINT_SPEC)
    assert patch.shape == (256, 256)
    # Padding uses the background level, so nothing new looks like ridges.
    assert patch[0, 0] == 220 and patch[-1, -1] == 220


@pytest.mark.parametrize("spec", [FINGERPRINT_SPEC, FACE_SPEC])
def test_preprocess_shape_and_standardisation(spec: PreprocessSpec) -> None:
    image = striped_print()
    x = preprocess_image(image, spec)
    assert x.shape == spec.shape and x.dtype == np.float32
    assert abs(float(x.mean())) < 0.1 and 0.8 < float(x.std()) < 1.2


def test_preprocess_is_bit_identical_and_batches_match() -> None:
    images = [striped_print(), striped_print((320, 240), (150, 120))]
    a = preprocess_batch(images, FINGERPRINT_SPEC)
    b = np.stack([preprocess_image(im, FINGERPRINT_SPEC) for im in images])
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() == preprocess_batch(images, FINGERPRINT_SPEC).tobytes()


@pytest.mark.parametrize("batch", [preprocess_batch, preprocess_batch_views])
def test_a_batch_names_the_image_it_refuses(batch) -> None:
    images = [striped_print(), striped_print(), np.zeros((4, 4, 4, 4), np.uint8), striped_print()]
    with pytest.raises(PreprocessError, match=r"^image 2: ") as caught:
        batch(images, FINGERPRINT_SPEC)
    with pytest.raises(PreprocessError) as alone:
        preprocess_image(images[2], FINGERPRINT_SPEC)
    assert str(caught.value) == f"image 2: {alone.value}"  # the image's own reason, numbered


def test_unit_normalisation_and_flat_images() -> None:
    spec = PreprocessSpec("face", (8, 8), normalise="unit")
    x = preprocess_image(np.full((16, 16), 255, np.uint8), spec)
    assert np.all(x == 1.0)
    flat = preprocess_image(np.full((16, 16), 7, np.uint8), PreprocessSpec("face", (8, 8)))
    assert np.all(flat == 0.0)  # no division by zero on a flat image


def test_preprocess_imports_only_numpy() -> None:
    """The device has numpy and the LiteRT interpreter; Pillow, scipy and JAX may be absent."""
    import ast

    import devices.preprocess
    import devices.registration

    allowed = {"__future__", "dataclasses", "json", "collections", "typing", "math", "numpy"}
    for module in (devices.preprocess, devices.registration):  # crop="core" registers
        tree = ast.parse(Path(module.__file__).read_text())
        roots = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots.add(node.module)
        outside = {r for r in roots if r.split(".")[0] not in allowed}
        assert outside <= {"devices.preprocess", "devices.registration"}, (module, outside)


@pytest.mark.parametrize("frame", list(FACE_FRAMES.values()), ids=list(FACE_FRAMES))
def test_face_frames_have_orl_aspect(frame: FaceFrame) -> None:
    # ORL is 92 wide by 112 high; a frame off by more than one pixel distorts the face.
    assert abs(frame.width - frame.height * 92 / 112) <= 1.0


def test_lfw_frame_cuts_the_box_exactly() -> None:
    image = np.random.default_rng(0).integers(0, 256, LFW_FRAME.source).astype(np.uint8)
    out = frame_face(image, LFW_FRAME)
    assert out.shape == (LFW_FRAME.height, LFW_FRAME.width) and out.dtype == np.uint8
    f = LFW_FRAME
    np.testing.assert_array_equal(out, image[f.top : f.top + f.height, f.left : f.left + f.width])


def test_yale_b_frame_pads_with_the_border_mean() -> None:
    image = np.random.default_rng(1).integers(0, 256, YALE_B_FRAME.source).astype(np.uint8)
    out = frame_face(image, YALE_B_FRAME)
    f = YALE_B_FRAME
    assert out.shape == (f.height, f.width)
    # The whole image sits inside the frame at (-top, -left); everything else is the fill.
    r, c = -f.top, -f.left
    np.testing.assert_array_equal(out[r : r + image.shape[0], c : c + image.shape[1]], image)
    ring = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    assert border_mean(image) == int(np.floor(ring.astype(np.float64).mean() + 0.5))
    assert out[0, 0] == out[-1, -1] == border_mean(image)


def test_frame_refuses_another_size_with_the_sizes() -> None:
    with pytest.raises(PreprocessError, match=r"fits 250x250 .* got 92x112"):
        frame_face(np.zeros((112, 92), np.uint8), LFW_FRAME)


def test_framed_face_preprocesses_bit_identically() -> None:
    image = np.random.default_rng(2).integers(0, 256, LFW_FRAME.source).astype(np.uint8)
    spec = PreprocessSpec("face", (96, 80), crop="none")
    a = preprocess_image(frame_face(image, LFW_FRAME), spec)
    b = preprocess_image(frame_face(image.copy(), LFW_FRAME), spec)
    assert a.shape == (96, 80, 1) and a.tobytes() == b.tobytes()
