"""Supervised pretraining: data-parallel steps, plateau schedule, checkpoints, the fit loop."""

from pretrain.train.artifacts import SavedModel, load_model, save_model
from pretrain.train.checkpoint import Checkpointer, CheckpointError
from pretrain.train.datasets import Splits, dataset_names, load_splits, register_dataset
from pretrain.train.loop import FitResult, fit
from pretrain.train.optim import make_optimizer, make_plateau, plateau_step
from pretrain.train.parallel import (
    batch_sharded,
    data_mesh,
    global_batch,
    initialize_distributed,
    replicated,
)
from pretrain.train.stages import StagedResult, fit_stages
from pretrain.train.steps import (
    TrainState,
    cross_entropy,
    init_state,
    make_eval_step,
    make_train_step,
    train_step_fn,
)
from pretrain.train.tasks import (
    Classification,
    EmbeddingEval,
    Task,
    build_task,
    register_task,
    task_names,
)
from pretrain.train.trainer import EpochStats, EvalStats, Trainer

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "Classification",
    "EmbeddingEval",
    "EpochStats",
    "EvalStats",
    "FitResult",
    "SavedModel",
    "Splits",
    "StagedResult",
    "Task",
    "TrainState",
    "Trainer",
    "batch_sharded",
    "build_task",
    "cross_entropy",
    "data_mesh",
    "dataset_names",
    "fit",
    "fit_stages",
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
    "register_task",
    "replicated",
    "save_model",
    "task_names",
    "train_step_fn",
]
