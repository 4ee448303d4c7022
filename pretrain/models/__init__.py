"""Flax models, chosen by name."""

from pretrain.models.conditional import ConditionalLeNet5
from pretrain.models.embednet import DepthwiseConv, EmbedNet, PointwiseConv, SeparableBlock
from pretrain.models.lenet import LeNet5, LeNet300, count_params
from pretrain.models.mobilefacenet import MobileFaceNet
from pretrain.models.registry import build_model, model_names, register

__all__ = [
    "ConditionalLeNet5",
    "DepthwiseConv",
    "EmbedNet",
    "LeNet5",
    "LeNet300",
    "MobileFaceNet",
    "PointwiseConv",
    "SeparableBlock",
    "build_model",
    "count_params",
    "model_names",
    "register",
]
