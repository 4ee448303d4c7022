"""Datasets for server pretraining: loaders, synthetic fingerprints, statistics, batches."""

from pretrain.data.dataset import ArrayDataset, Later, now, split_off
from pretrain.data.errors import DataError, DataNotFoundError
from pretrain.data.faces import load_orl, read_orl
from pretrain.data.fingerprint import (
    FingerprintGenerator,
    GeneratorConfig,
    generate_impression,
    generate_master,
    save_gallery,
    synthetic_fingerprints,
)
from pretrain.data.folders import ImageSet, load_folder, read_folder, read_image
from pretrain.data.fvc import (
    SAME_FINGERS,
    SENSOR_SETS,
    SensorPrints,
    finger_owner,
    fvc_sets,
    impression_numbers,
    load_fvc,
    read_fvc,
    read_sensor_sets,
)
from pretrain.data.idx import read_idx, read_idx_bytes
from pretrain.data.mnist import load_mnist
from pretrain.data.paths import ENV_VAR, data_root, dataset_dir
from pretrain.data.pipeline import epoch_order, eval_batches, steps_per_epoch, train_batches
from pretrain.data.stats import PrintStats, measure, summarise
from pretrain.data.stats_match import Alignment, aligned_correlation, best_alignment
from pretrain.data.stats_pairs import MISREGISTERED_PX, pair_stats
from pretrain.data.stats_report import format_table, plot_stats, source_stats

__all__ = [
    "ENV_VAR",
    "MISREGISTERED_PX",
    "SAME_FINGERS",
    "SENSOR_SETS",
    "Alignment",
    "ArrayDataset",
    "DataError",
    "DataNotFoundError",
    "FingerprintGenerator",
    "GeneratorConfig",
    "ImageSet",
    "Later",
    "PrintStats",
    "SensorPrints",
    "aligned_correlation",
    "best_alignment",
    "data_root",
    "dataset_dir",
    "epoch_order",
    "eval_batches",
    "finger_owner",
    "format_table",
    "fvc_sets",
    "generate_impression",
    "generate_master",
    "impression_numbers",
    "load_folder",
    "load_fvc",
    "load_mnist",
    "load_orl",
    "measure",
    "now",
    "pair_stats",
    "plot_stats",
    "read_folder",
    "read_fvc",
    "read_idx",
    "read_idx_bytes",
    "read_image",
    "read_orl",
    "read_sensor_sets",
    "save_gallery",
    "source_stats",
    "split_off",
    "steps_per_epoch",
    "summarise",
    "synthetic_fingerprints",
    "train_batches",
]
