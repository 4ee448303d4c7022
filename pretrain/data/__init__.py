"""Datasets for server pretraining: loaders, splits and sharded batches."""

from pretrain.data.dataset import ArrayDataset, split_off
from pretrain.data.errors import DataError, DataNotFoundError
from pretrain.data.idx import read_idx, read_idx_bytes
from pretrain.data.mnist import load_mnist
from pretrain.data.paths import ENV_VAR, data_root, dataset_dir
from pretrain.data.pipeline import epoch_order, eval_batches, steps_per_epoch, train_batches

__all__ = [
    "ENV_VAR",
    "ArrayDataset",
    "DataError",
    "DataNotFoundError",
    "data_root",
    "dataset_dir",
    "epoch_order",
    "eval_batches",
    "load_mnist",
    "read_idx",
    "read_idx_bytes",
    "split_off",
    "steps_per_epoch",
    "train_batches",
]
