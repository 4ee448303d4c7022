"""Supervised pretraining: data-parallel steps, plateau schedule, checkpoints, the fit loop."""

from pretrain.train.artifacts import SavedModel, load_model, save_model
from pretrain.train.checkpoint import Checkpointer, CheckpointError
from pretrain.train.datasets import Splits, load_splits, register_dataset
from pretrain.train.loop import FitResult, fit
from pretrain.train.optim import make_optimizer, make_plateau, plateau_step
from pretrain.train.parallel import (
    batch_sharded,
    data_mesh,
    global_batch,
    initialize_distributed,
    replicated,
)
from pretrain.train.steps import (
    TrainState,
    cross_entropy,
    init_state,
    make_eval_step,
    make_train_step,
    train_step_fn,
)
from pretrain.train.trainer import EpochStats, EvalStats, Trainer

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "EpochStats",
    "EvalStats",
    "FitResult",
    "SavedModel",
    "Splits",
    "TrainState",
    "Trainer",
    "batch_sharded",
    "cross_entropy",
    "data_mesh",
    "fit",
    "global_batch",
    "init_state",
    "initialize_distributed",
    "load_model",
    "load_splits",
    "make_eval_step",
    "make_optimizer",
    "make_plateau",
    "make_train_step",
    "plateau_step",
    "register_dataset",
    "replicated",
    "save_model",
    "train_step_fn",
]
