"""MNIST idx reading, loader errors, and the shuffled, sharded batch pipeline."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import jax
import numpy as np
import pytest

from pretrain.data import (
    ArrayDataset,
    DataError,
    DataNotFoundError,
    Later,
    epoch_order,
    eval_batches,
    load_mnist,
    now,
    read_idx,
    read_idx_bytes,
    split_off,
    train_batches,
)
from pretrain.data.mnist import load_raw


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.tobytes()


def write_mnist(folder: Path, n_images: int, n_labels: int, *, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n_labels, dtype=np.uint8)
        for stem, array in (
            (f"{prefix}-images-idx3-ubyte", images),
            (f"{prefix}-labels-idx1-ubyte", labels),
        ):
            data = idx_bytes(array)
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
        del split


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 28, 28)])
@pytest.mark.parametrize("dtype", [np.uint8, ">i4"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, shape, dtype, gz: bool) -> None:
    array = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    data = idx_bytes(array)
    path = tmp_path / ("a.gz" if gz else "a")
    path.write_bytes(gzip.compress(data) if gz else data)
    np.testing.assert_array_equal(read_idx(path), array)


def test_idx_bad_magic() -> None:
    with pytest.raises(DataError, match="bad idx magic number 0x504b0304"):
        read_idx_bytes(b"PK\x03\x04" + bytes(100), name="zip")


def test_idx_truncated_payload() -> None:
    data = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"shape \(5, 28, 28\).*truncated"):
        read_idx_bytes(data[:-10])


def test_idx_not_gzip(tmp_path: Path) -> None:
    (tmp_path / "x.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a valid gzip"):
        read_idx(tmp_path / "x.gz")


def test_loader_reads_raw_and_gz(tmp_path: Path) -> None:
    write_mnist(tmp_path / "gz" / "mnist", 12, 12, gz=True)
    write_mnist(tmp_path / "raw" / "mnist", 12, 12, gz=False)
    a = load_mnist("train", root=tmp_path / "gz")
    b = load_mnist("test", root=tmp_path / "raw")
    assert a.images.shape == (12, 28, 28, 1) and a.images.dtype == np.float32
    assert a.images.min() >= 0.0 and a.images.max() <= 1.0
    assert b.labels.dtype == np.int32 and len(b) == 12


def test_loader_count_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist", 12, 11)
    with pytest.raises(DataError, match=r"holds 12 images but .* holds 11 labels"):
        load_mnist("train", root=tmp_path)


def test_loader_missing_files_name_setting_and_files(tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    with pytest.raises(DataNotFoundError) as err:
        load_mnist("train", root=tmp_path)
    message = str(err.value)
    assert "POCKETFIT_DATA" in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert name in message


def test_loader_missing_folder_and_unset_setting(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DataNotFoundError, match="No 'mnist' folder"):
        load_mnist("train", root=tmp_path)
    monkeypatch.delenv("POCKETFIT_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="POCKETFIT_DATA is not set"):
        load_mnist("train")


def test_loader_wrong_kind_of_file(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist", 4, 4)
    labels = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8))))
    with pytest.raises(DataError, match=r"expected uint8 labels of shape \(n,\)"):
        load_mnist("train", root=tmp_path)


@pytest.mark.data
def test_real_mnist(mnist_dir: Path) -> None:
    raw_train, labels = load_raw("train", root=mnist_dir.parent)
    test = load_mnist("test", root=mnist_dir.parent)
    assert raw_train.shape == (60000, 28, 28) and len(test) == 10000
    # The published label histogram of the training set.
    assert np.bincount(labels).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    md5 = hashlib.md5((mnist_dir / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"


def dataset(n: int) -> ArrayDataset:
    return ArrayDataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n, dtype=np.int32))


def test_split_off_is_a_partition() -> None:
    rest, held = split_off(dataset(100), 20, seed=3)
    assert len(held) == 20 and len(rest) == 80
    assert sorted(np.concatenate([rest.labels, held.labels]).tolist()) == list(range(100))
    again, _ = split_off(dataset(100), 20, seed=3)
    np.testing.assert_array_equal(rest.labels, again.labels)


def test_a_later_part_is_drawn_when_first_read_and_once() -> None:
    from pretrain.train import Splits

    draws: list[str] = []

    def draw(name: str, n: int) -> Later[ArrayDataset]:
        return Later(lambda: draws.append(name) or dataset(n))

    held = draw("held", 3)
    splits = Splits(draw("train", 5), held, held)  # validation = test, one draw
    assert repr(splits) == "Splits(train=later, val=later, test=later)"  # and draws nothing
    assert draws == [] and not held.drawn
    assert len(splits.train) == 5 and splits.train is splits.train and draws == ["train"]
    assert splits.test is splits.val and draws == ["train", "held"] and held.drawn
    assert repr(splits) == "Splits(train=5 examples, val=3 examples, test=3 examples)"
    eager = dataset(2)
    assert now(eager) is eager and Splits(eager, None, eager).val is None


@pytest.mark.parametrize("processes", [1, 2, 4])
def test_train_batches_shard_the_same_global_batches(processes: int) -> None:
    data, key = dataset(103), jax.random.key(7)
    single = [y for _, y in train_batches(data, 8, key=key, epoch=2)]
    shards = [
        [
            y
            for _, y in train_batches(
                data, 8, key=key, epoch=2, process_index=p, process_count=processes
            )
        ]
        for p in range(processes)
    ]
    assert len(single) == 103 // 8
    for step, global_labels in enumerate(single):
        joined = np.concatenate([shards[p][step] for p in range(processes)])
        np.testing.assert_array_equal(joined, global_labels)


def test_epoch_order_is_a_fixed_permutation_per_epoch() -> None:
    key = jax.random.key(0)
    a, b, c = epoch_order(key, 0, 50), epoch_order(key, 0, 50), epoch_order(key, 1, 50)
    np.testing.assert_array_equal(a, b)
    assert sorted(a.tolist()) == list(range(50))
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, epoch_order(jax.random.key(1), 0, 50))


def test_eval_batches_cover_every_example_once() -> None:
    seen = []
    for _, y, mask in eval_batches(dataset(23), 10):
        seen.extend(y[mask > 0].tolist())
    assert seen == list(range(23))


def test_batch_that_does_not_split_is_refused() -> None:
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        next(train_batches(dataset(30), 8, key=jax.random.key(0), epoch=0, process_count=3))


def test_fvc2000_db1_and_db2_hold_the_same_fingers() -> None:
    from pretrain.data import SAME_FINGERS, SENSOR_SETS, finger_owner

    assert finger_owner("2000_DB2_B", "103") == finger_owner("2000_DB1_B", "103")
    assert finger_owner("2000_DB3_B", "103") != finger_owner("2000_DB1_B", "103")
    assert set(SAME_FINGERS) | set(SAME_FINGERS.values()) <= set(SENSOR_SETS)
