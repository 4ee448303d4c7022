"""pocketfit server side: data, models and pretraining in JAX.

Example:
  >>> import pretrain
  >>> config = pretrain.load_config("pretrain/configs/lenet300.py", ["epochs=1"])
  >>> result = pretrain.fit(config, "runs/lenet300")
"""

from pretrain.config import ConfigError, TrainConfig, load_config, make_config
from pretrain.data import ArrayDataset, DataError, DataNotFoundError, load_mnist
from pretrain.models import build_model, count_params, model_names
from pretrain.train import (
    CheckpointError,
    FitResult,
    SavedModel,
    Trainer,
    fit,
    initialize_distributed,
    load_model,
    save_model,
)

__all__ = [
    "ArrayDataset",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DataNotFoundError",
    "FitResult",
    "SavedModel",
    "TrainConfig",
    "Trainer",
    "build_model",
    "count_params",
    "fit",
    "initialize_distributed",
    "load_config",
    "load_mnist",
    "load_model",
    "make_config",
    "model_names",
    "save_model",
]
