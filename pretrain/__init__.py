"""pocketfit server side: data, models and pretraining in JAX.

Example:
  >>> import pretrain
  >>> config = pretrain.load_config("pretrain/configs/lenet300.py", ["epochs=1"])
  >>> result = pretrain.fit(config, "runs/lenet300")

``import pretrain`` sets XLA:CPU's training defaults (:mod:`pretrain.train.xla_cpu`) unless the
user's ``XLA_FLAGS`` sets those flags.
"""

# Importing embedding registers its tasks, datasets and evaluation suites.
# Importing tree registers the routed_classification task (conditional networks).
from pretrain import embedding, tree
from pretrain.config import ConfigError, TrainConfig, load_config, make_config
from pretrain.data import ArrayDataset, DataError, DataNotFoundError, load_mnist
from pretrain.models import build_model, count_params, model_names
from pretrain.staged_config import StagedConfig, load_run, make_staged
from pretrain.train import (
    CheckpointError,
    FitResult,
    SavedModel,
    StagedResult,
    Trainer,
    fit,
    fit_stages,
    initialize_distributed,
    load_model,
    save_model,
)
from pretrain.train.xla_cpu import apply_cpu_defaults

# XLA reads XLA_FLAGS once, when JAX starts its backend (importing does not start it).
apply_cpu_defaults()

__all__ = [
    "ArrayDataset",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DataNotFoundError",
    "FitResult",
    "SavedModel",
    "StagedConfig",
    "StagedResult",
    "TrainConfig",
    "Trainer",
    "build_model",
    "count_params",
    "embedding",
    "fit",
    "fit_stages",
    "initialize_distributed",
    "load_config",
    "load_mnist",
    "load_model",
    "load_run",
    "make_config",
    "make_staged",
    "model_names",
    "save_model",
    "tree",
]
