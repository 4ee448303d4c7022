"""The quality gate: each bad sample is refused with its index and reason; nothing changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.preprocess import FINGERPRINT_SPEC, PreprocessSpec, preprocess_batch
from personalize import Device, EnrollmentError, QualityError, check_samples

SPEC = PreprocessSpec(modality="digit", input_size=(28, 28), normalise="unit")


def _good(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)


def _with(bad: np.ndarray, at: int = 2) -> list[np.ndarray]:
    images = list(_good())
    images[at] = bad
    return images


BAD = {
    "blank": (np.zeros((28, 28), np.uint8), "blank or constant"),
    "constant": (np.full((28, 28), 0.5, np.float32), "blank or constant"),
    "saturated": (
        np.where(np.arange(784).reshape(28, 28) % 20 == 0, 128, 255).astype(np.uint8),
        "saturated",
    ),
    "nan": (np.where(np.eye(28) > 0, np.nan, 0.5).astype(np.float32), "NaN or infinite"),
    "inf": (np.where(np.eye(28) > 0, np.inf, 0.5), "NaN or infinite"),
    "0-255 floats": (np.random.default_rng(1).random((28, 28)) * 255, "expected intensities"),
    "int64": (np.zeros((28, 28), np.int64), "dtype int64 not accepted"),
    "bool": (np.ones((28, 28), bool), "dtype bool not accepted"),
    "too small": (np.random.default_rng(2).random((25, 28)), "smaller than the model input"),
    "5 channels": (np.random.default_rng(3).random((28, 28, 5)), r"is not \(h, w\)"),
    "1-d": (np.random.default_rng(4).random(784), r"is not \(h, w\)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_samples_are_named_with_the_reason(case: str) -> None:
    bad, reason = BAD[case]
    with pytest.raises(QualityError, match=reason) as info:
        check_samples(_with(bad), SPEC)
    assert info.value.index == 2 and str(info.value).startswith("sample 2: ")


def test_near_duplicates_are_refused() -> None:
    images = list(_good())
    images.append(np.clip(images[1] + 0.002, 0, 1))  # the same capture, slightly brighter
    with pytest.raises(QualityError, match=r"sample 4: near-duplicate of sample 1 \(correlation"):
        check_samples(images, SPEC)


def test_good_samples_pass_in_every_accepted_form() -> None:
    floats = _good()
    as_u8 = np.round(floats * 255).astype(np.uint8)  # within half a step of the floats
    out = check_samples(floats, SPEC)
    assert out.shape == (4, 28, 28, 1) and out.dtype == np.float32
    np.testing.assert_allclose(check_samples(list(as_u8), SPEC), out, atol=1 / 255)
    rgb = np.repeat(as_u8[..., None], 3, axis=-1)
    np.testing.assert_array_equal(check_samples(rgb, SPEC), check_samples(as_u8, SPEC))
    assert check_samples(as_u8.astype(np.uint16) * 257, SPEC).shape == (4, 28, 28, 1)


def test_a_capture_slightly_smaller_than_the_input_is_enlarged() -> None:
    """ORL's 112x92 faces and the 112x96 face model: within MAX_UPSCALE a side passes."""
    small = [np.random.default_rng(k).random((26, 28), dtype=np.float32) for k in range(4)]
    assert check_samples(small, SPEC).shape == (4, 28, 28, 1)
    with pytest.raises(QualityError, match="smaller than the model input"):
        check_samples([*small[:3], small[3][:25]], SPEC)


def test_a_real_fingerprint_with_a_white_background_passes(data_root: Path) -> None:
    import tifffile

    files = sorted((data_root / "fvc").glob("*/10[1-3]_[12].tif"))
    if not files:
        pytest.skip(f"no FVC prints under {data_root / 'fvc'}")
    prints = [tifffile.imread(f) for f in files]
    assert check_samples(prints, FINGERPRINT_SPEC).shape == (len(prints), 128, 128, 1)


@pytest.mark.parametrize("spec", [SPEC, FINGERPRINT_SPEC], ids=["digit", "fingerprint"])
def test_the_gate_gives_the_model_input_and_crops_once(
    spec: PreprocessSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devices.preprocess
    import personalize.quality as quality

    crops = [0]
    real = devices.preprocess.crop

    def counting(gray: np.ndarray, s: PreprocessSpec) -> np.ndarray:
        crops[0] += 1
        return real(gray, s)

    for module in (quality, devices.preprocess):  # wherever the gate may crop
        monkeypatch.setattr(module, "crop", counting)
    rng = np.random.default_rng(5)
    size = (300, 300) if spec is FINGERPRINT_SPEC else (28, 28)
    images = [(rng.random(size) * 255).astype(np.uint8) for _ in range(3)]
    out = check_samples(images, spec)
    assert crops[0] == len(images)  # a fingerprint's crop registers it: tens of ms each
    np.testing.assert_array_equal(out, preprocess_batch(images, spec))  # the same bits


@pytest.mark.parametrize("images", [[], np.zeros((28, 28)), "x.png"])
def test_bad_batches(images) -> None:
    with pytest.raises(QualityError, match="samples: "):
        check_samples(images, SPEC)


def test_refused_enrollment_changes_nothing(toy_artifact, tmp_path: Path) -> None:
    dev = Device(toy_artifact["dir"], tmp_path, trusted_key=toy_artifact["pub"])
    dev.enroll("owner", toy_artifact["owner"], scope="head", measure_memory=False)
    record = dev.store.path("owner")
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    owner = list(toy_artifact["owner"])
    for bad in (np.zeros_like(owner[0]), np.full_like(owner[0], np.nan), owner[1]):
        with pytest.raises(EnrollmentError, match=r"sample 5: .*nothing was changed"):
            dev.enroll("owner", [*owner, bad], measure_memory=False)
        with pytest.raises(EnrollmentError, match="sample 5"):
            dev.enroll("newcomer", [*owner, bad], measure_memory=False)
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before and dev.users() == ["owner"] and record.is_file()
