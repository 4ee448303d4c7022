"""The learned minutiae detector: its truth, targets, decoding, training and command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pretrain.__main__ import main
from pretrain.data.fingerprint.synthetic import (
    FingerprintGenerator,
    GeneratorConfig,
)
from pretrain.data.minutiae import master_minutiae, minutiae_array, print_mask
from pretrain.data.minutiae_maps import impression_minutiae
from pretrain.minutiae_detector import (
    BINS,
    CELL,
    DetectorConfig,
    decode,
    hits,
    impression_truth,
    load_weights,
    mirrored,
    save_weights,
    targets,
    train_detector,
)

CONFIG = GeneratorConfig()


def _truth(identity: int, impression: int) -> tuple[np.ndarray, np.ndarray]:
    gen = FingerprintGenerator(seed=0, config=CONFIG, cache_size=1)
    master = gen.master(identity)
    image = gen.impression(identity, impression)
    truth = impression_truth(
        master, master_minutiae(master), identity, impression, seed=0, config=CONFIG, image=image
    )
    return image, truth


def test_truth_follows_the_skin_distortion_near_the_rigid_placement() -> None:
    image, truth = _truth(300, 0)
    _, rigid = impression_minutiae(300, 0, seed=0, config=CONFIG)
    rigid = minutiae_array(rigid)
    assert len(truth) >= 10
    readable = print_mask(image)
    assert readable[truth[:, 1].astype(int), truth[:, 0].astype(int)].all()
    # the same minutiae, moved by the distortion only (at most its 12 px shift)
    count, turns = hits(truth, rigid)
    assert count >= 0.8 * min(len(truth), len(rigid))
    assert max(turns) < np.radians(1)


def test_targets_mark_the_cell_its_offset_and_ignore_the_ring() -> None:
    truth = np.array([[10.0, 21.0, 0.5, 0.0]])
    t = targets(truth, (32, 32))
    assert t.shape == (8, 8, 5)
    assert t[5, 2, 0] == 1 and t[..., 0].sum() == 1
    assert t[5, 2, 2:4] == pytest.approx([0.5, 0.25])
    assert t[5, 2, 4] == pytest.approx(0.5)
    assert t[..., 1].sum() == 8 and t[4:7, 1:4, 1].sum() == 8
    # mirrored: the cell, its offset and the direction mirror; twice is the same
    _, m = mirrored(np.zeros((1, 32, 32)), t[None])
    assert m[0, 5, 8 - 1 - 2, 0] == 1
    assert m[0, 5, 5, 2] == pytest.approx(0.5) and m[0, 5, 5, 4] == pytest.approx(np.pi - 0.5)
    _, back = mirrored(np.zeros((1, 32, 32)), m)
    assert back[0] == pytest.approx(t)


def test_decode_reads_a_peak_its_offset_and_direction() -> None:
    out = np.full((1, 8, 8, 3 + BINS), -10.0, np.float32)
    out[0, 3, 5, 0] = 5.0
    out[0, 3, 4, 0] = 2.0  # a weaker neighbour is not a peak
    out[0, 3, 5, 1:3] = 0.0  # offsets 0.5, 0.5
    bins = (np.arange(BINS) + 0.5) * 2 * np.pi / BINS - np.pi
    out[0, 3, 5, 3:] = -10.0
    out[0, 3, 5, 3 + int(np.argmin(np.abs(bins - 1.0)))] = 10.0
    (found,) = decode(out, 0.5)
    assert found.shape == (1, 4)
    assert found[0, :2] == pytest.approx([(5 + 0.5) * CELL, (3 + 0.5) * CELL])
    assert found[0, 2] == pytest.approx(bins[np.argmin(np.abs(bins - 1.0))], abs=1e-3)
    assert decode(out, 0.999)[0].shape == (0, 4)


def test_hits_pair_one_to_one_within_reach() -> None:
    truth = np.array([[0.0, 0.0, 0.0, 0.0], [20.0, 0.0, 1.0, 0.0]])
    found = np.array([[1.0, 0.0, 0.2, 0.0], [2.0, 0.0, 0.0, 0.0], [40.0, 0.0, 0.0, 0.0]])
    count, turns = hits(found, truth)
    assert count == 1 and turns == pytest.approx([0.2])
    assert hits(np.zeros((0, 4)), truth) == (0, [])


def test_training_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    prints = [_truth(300 + i, 0) for i in range(3)]
    images = np.stack([p[0] for p in prints])
    truth = [p[1] for p in prints]
    config = DetectorConfig(steps=4, batch_size=2, crop=64, eval_every=2)
    checkpoint = tmp_path / "c.pkl"
    params, history = train_detector(
        (images, truth), (images[:1], truth[:1]), config, checkpoint=checkpoint
    )
    assert [row["step"] for row in history] == [2, 4]
    assert all(np.isfinite(row["loss"]) for row in history)
    longer = dataclasses.replace(config, steps=6)
    _, more = train_detector(
        (images, truth), (images[:1], truth[:1]), longer, checkpoint=checkpoint
    )
    assert [row["step"] for row in more] == [2, 4, 6]
    assert more[:2] == history
    save_weights(tmp_path / "w.npz", params, 0.45)
    loaded, threshold = load_weights(tmp_path / "w.npz")
    assert threshold == pytest.approx(0.45)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(params, loaded, strict=True))


def test_cli_refuses_bad_input_in_one_line(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.py"
    config.write_text("X = 1\n")
    assert main(["minutiae-detector", "--generator-config", str(config)]) == 2
    assert "defines no GENERATOR" in capsys.readouterr().err
    good = Path(__file__).parents[2] / "pretrain" / "configs" / "embed_fingerprint_flowmix.py"
    with pytest.raises(SystemExit) as exit_:
        main(["minutiae-detector", "--generator-config", str(good), "--steps", "0"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "argument --steps: must be >= 1, got 0" in err
    with pytest.raises(ValueError, match="must all be >= 1"):
        DetectorConfig(batch_size=0)
    help_text = _help(["minutiae-detector", "-h"], capsys)
    assert "default: devices/minutiae_detector.npz" in help_text


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(argv)
    return " ".join(capsys.readouterr().out.split())  # argparse wraps help lines


def test_the_device_detector_repeats_the_trained_network(tmp_path: Path) -> None:
    """devices.minutiae_detector (numpy, float32) gives the JAX network's outputs and minutiae."""
    import jax

    from devices.minutiae_detector import MinutiaeDetector
    from pretrain.minutiae_detector import init, outputs

    params = [(np.asarray(w), np.asarray(b)) for w, b in init(jax.random.PRNGKey(3))]
    images = np.stack([_truth(300 + i, 1)[0] for i in range(2)])
    save_weights(tmp_path / "w.npz", params, 0.5)
    device = MinutiaeDetector.load(tmp_path / "w.npz")
    ref = outputs(params, images)
    for image, expected in zip(images, ref, strict=True):
        got = device.outputs(image)
        assert got.shape == expected.shape
        # float32 sums in another order: a tolerance no CPU's rounding reaches
        assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max()))
    logits = ref.copy()
    logits[..., 0] = np.where(logits[..., 0] > np.quantile(logits[..., 0], 0.99), 5.0, -5.0)
    assert [len(m) for m in decode(logits, 0.5)] == [
        len(decode(logits[k : k + 1], 0.5)[0]) for k in range(2)
    ]
