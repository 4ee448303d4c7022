"""Flax models, chosen by name."""

from pretrain.models.lenet import LeNet5, LeNet300, count_params
from pretrain.models.registry import build_model, model_names, register

__all__ = ["LeNet5", "LeNet300", "build_model", "count_params", "model_names", "register"]
