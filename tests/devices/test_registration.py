"""Fingerprint registration: exact integer warps, core found where the generator put it,
poses that turn exactly with the print."""

from __future__ import annotations

import numpy as np
import pytest

from devices.preprocess import PreprocessError, PreprocessSpec, preprocess_image
from devices.registration import (
    BLOCK,
    CORE_SPEC,
    UNIT,
    WINDOW_SPEC,
    Pose,
    RegistrationConfig,
    estimate_pose,
    register_print,
    register_views,
    registered_inputs,
    symmetry_filter,
    symmetry_response,
    warp_window,
)
from pretrain.data.fingerprint import FingerprintGenerator

LOOPS = ("left_loop", "right_loop")
TURNING = RegistrationConfig(rotate=True)


@pytest.fixture(scope="module")
def masters():
    gen = FingerprintGenerator(seed=0, cache_size=0)
    return [gen.master(i) for i in range(12)]


def test_warp_without_rotation_is_a_crop() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (100, 90), dtype=np.uint8)
    config = RegistrationConfig(size=(32, 40), core_at=(10, 20))
    out = warp_window(image, Pose(row=50, col=45, degrees=0, strength=0, found=True), config)
    np.testing.assert_array_equal(out, image[40:72, 25:65])


def test_warp_by_a_right_angle_is_exact() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (100, 90), dtype=np.uint8)
    config = RegistrationConfig(size=(32, 32), core_at=(16, 16))
    out = warp_window(image, Pose(row=50, col=45, degrees=90, strength=0, found=True), config)
    # Output (r, c) samples source (row 50 + (c - 16), col 45 - (r - 16)) = A[c, 31 - r].
    np.testing.assert_array_equal(out, np.rot90(image[34:66, 30:62]))


def test_warp_fills_outside_the_print_with_its_background() -> None:
    image = np.full((64, 64), 230, np.uint8)
    image[16:48, 16:48] = np.tile(np.array([40, 200], np.uint8), (32, 16))  # ridges
    config = RegistrationConfig(size=(32, 32), core_at=(0, 0))
    out = warp_window(image, Pose(row=56, col=56, degrees=0, strength=0, found=True), config)
    assert out[0, 0] == 230 and out[-1, -1] == 230  # beyond the source: background level


def test_core_is_found_where_the_generator_put_it(masters) -> None:
    loops = [m for m in masters if m.fp_class in LOOPS]
    assert len(loops) >= 5
    for master in loops:
        pose = estimate_pose(master.image())
        ((x, y),) = master.points.cores
        assert pose.found
        assert np.hypot(pose.col - x, pose.row - y) <= 1.5 * BLOCK, (pose, (x, y))


def test_pose_turns_exactly_with_the_print(masters) -> None:
    for master in masters[:6]:
        image = master.image()  # 384 x 320: whole blocks, so the block grid turns with it
        pose = estimate_pose(image, TURNING)
        turned = estimate_pose(np.rot90(image), TURNING)  # (x, y) -> (y, W - 1 - x): -90 deg
        assert turned.found == pose.found
        if not pose.found:
            continue
        assert (turned.degrees - pose.degrees + 90) % 360 in (0, 1, 359)
        w = image.shape[1]
        assert abs(turned.col - pose.row) <= BLOCK and abs(turned.row - (w - pose.col)) <= BLOCK


def test_registered_windows_agree_across_turned_copies(masters) -> None:
    # The same print turned by 90 degrees registers to (nearly) the same window.
    master = next(m for m in masters if m.fp_class in LOOPS)
    a = register_print(master.image(), TURNING).astype(np.int64)
    b = register_print(np.rot90(master.image()), TURNING).astype(np.int64)
    inner = (slice(64, 192), slice(64, 192))
    corr = np.corrcoef(a[inner].ravel(), b[inner].ravel())[0, 1]
    assert corr > 0.8, corr


def test_perfect_core_field_gives_full_strength() -> None:
    # An ideal core: the doubled-angle field turns once around the centre.
    y, x = np.mgrid[-20:21, -20:21]
    angle = np.arctan2(y, x)
    vx, vy = np.rint(UNIT * np.cos(angle)).astype(np.int64), np.rint(UNIT * np.sin(angle))
    vx[20, 20] = 0
    re, im = symmetry_response(vx, vy.astype(np.int64), 10)
    power = re * re + im * im
    assert np.unravel_index(np.argmax(power), power.shape) == (20, 20)
    assert abs(np.degrees(np.arctan2(im[20, 20], re[20, 20]))) < 0.5  # phase 0 for this field


def test_without_rotate_the_pose_keeps_the_print_angle(masters) -> None:
    image = masters[1].image()
    assert estimate_pose(image).degrees == 0
    assert estimate_pose(image, TURNING)[:2] == estimate_pose(image)[:2]


def test_flat_image_falls_back_to_the_centre() -> None:
    pose = estimate_pose(np.full((200, 160), 128, np.uint8))
    assert pose == Pose(row=100, col=80, degrees=0, strength=0, found=False)


def test_registered_inputs_shape_and_repeatability(masters) -> None:
    images = [m.image() for m in masters[:2]]
    first = registered_inputs(images)
    assert first.shape == (2, *WINDOW_SPEC.shape) and first.dtype == np.float32
    np.testing.assert_array_equal(first, registered_inputs(images))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"size": (8, 8)}, "at least"),
        ({"smooth": 2}, "odd"),
        ({"filter_order": 7}, "even"),
        ({"min_strength": (3, 2)}, "num/den"),
    ],
)
def test_bad_config_is_refused(options, match) -> None:
    with pytest.raises(PreprocessError, match=match):
        RegistrationConfig(**options)


def test_views_start_with_the_plain_window(masters) -> None:
    image = masters[1].image()
    views = register_views(image, shifts=((0, 0), (0, 16)), turns=(0, 10))
    assert views.shape == (4, 256, 256) and views.dtype == np.uint8
    np.testing.assert_array_equal(views[0], register_print(image))
    # A shift of the core's place in the window moves the content by exactly that much.
    np.testing.assert_array_equal(views[1][:, 16:], views[0][:, :-16])


def test_largest_filter_response_fits_int64() -> None:
    # Every vector aligned with the filter: the largest response the config allows.
    hx, hy = symmetry_filter(10)
    norm = np.sqrt(hx * hx + hy * hy)
    vx = np.rint(UNIT * np.divide(hx, norm, out=np.zeros(norm.shape), where=norm > 0))
    vy = np.rint(UNIT * np.divide(hy, norm, out=np.zeros(norm.shape), where=norm > 0))
    re, im = symmetry_response(vx.astype(np.int64), vy.astype(np.int64), 10)
    exact = sum(
        int(a) * int(b) + int(c) * int(d)
        for a, b, c, d in zip(vx.ravel(), hx.ravel(), vy.ravel(), hy.ravel(), strict=True)
    )
    assert int(re[5, 5]) == exact and int(im[5, 5]) == 0
    assert int(re[5, 5]) ** 2 < np.iinfo(np.int64).max // 2


def test_core_crop_is_registration_then_the_window_spec() -> None:
    """``crop="core"`` (what the artifact's spec tells the device) gives the same bytes as
    registering first and preprocessing the window, on whole impressions as on masters."""
    gen = FingerprintGenerator(seed=0, cache_size=1)
    for identity, impression in ((3, 0), (3, 5), (8, 2)):
        image = gen.impression(identity, impression)
        expected = preprocess_image(register_print(image), WINDOW_SPEC)
        np.testing.assert_array_equal(preprocess_image(image, CORE_SPEC), expected)
    assert PreprocessSpec.from_dict(CORE_SPEC.to_dict()) == CORE_SPEC  # travels in artifacts
    with pytest.raises(PreprocessError, match="crop_size"):
        PreprocessSpec(modality="fingerprint", input_size=(128, 128), crop="core")
