"""Which classes share a branch: the classes' mean features split into groups (numpy).

A conditional network's router is trained to send each class's images to its group's branch
(:class:`pretrain.tree.RoutedClassification` with ``groups``), so the groups should hold classes
whose images look alike to the trunk: the split minimises the within-group scatter of the class
means (k-means on the class means, each weighted by its number of images), with every group
holding at least ``min_share`` of the images so that every branch runs. With a few classes the
minimum is exact: every assignment of the classes to the groups is scored (``branches ** classes``
of them; 1,024 for 10 classes and 2 branches).

References:
  Z. Yan, H. Zhang, R. Piramuthu, V. Jagadeesh, D. DeCoste, W. Di, Y. Yu, "HD-CNN: Hierarchical
  Deep Convolutional Neural Networks for Large Scale Visual Recognition", ICCV 2015 (coarse
  categories from what a trained network finds alike, one fine classifier per group).
  Y. Ioannou et al., "Decision Forests, Convolutional Networks and the Models In-Between", 2016.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import jax
import numpy as np

from pretrain.config import load_config
from pretrain.models.lenet_ops import ValidConv, max_pool_2x2
from pretrain.train import load_model, load_splits

# Assignments scored at most (branches ** classes); beyond it the enumeration is refused.
MAX_ASSIGNMENTS = 2_000_000


def class_means(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean feature vector of each class ``0..C-1`` and its number of examples.

    Args:
      features: ``(N, ...)`` features (flattened per example).
      labels: ``(N,)`` integer labels; every class up to the largest must occur.
    """
    flat = np.asarray(features, np.float64).reshape((len(features), -1))
    labels = np.asarray(labels, np.int64)
    counts = np.bincount(labels)
    if np.any(counts == 0):
        missing = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"class_means: classes {missing} have no examples; pass more data.")
    sums = np.zeros((len(counts), flat.shape[1]))
    np.add.at(sums, labels, flat)
    return sums / counts[:, None], counts


def class_groups(
    features: np.ndarray, labels: np.ndarray, branches: int, *, min_share: float = 0.15
) -> tuple[int, ...]:
    """The group (branch) of each class: the split of the class means with the least scatter.

    Args:
      features: ``(N, ...)`` features of labelled examples (e.g. a trained trunk's output).
      labels: ``(N,)`` integer labels.
      branches: number of groups B.
      min_share: the least share of the examples every group must hold.

    Returns:
      ``groups[c]``, the group of class ``c``; groups are numbered in order of their smallest
      class (class 0 is in group 0).

    Raises:
      ValueError: too many assignments to enumerate, or no split meets ``min_share``.
    """
    means, counts = class_means(features, labels)
    classes = len(counts)
    if branches < 1 or branches**classes > MAX_ASSIGNMENTS:
        raise ValueError(
            f"class_groups: {branches} groups of {classes} classes is {branches**classes} "
            f"assignments (limit {MAX_ASSIGNMENTS:,}); use fewer groups or classes."
        )
    assign = np.array(list(itertools.product(range(branches), repeat=classes)), np.int64)
    onehot = np.eye(branches)[assign]  # (A, C, B)
    weight = onehot * counts[None, :, None]  # images of each class in each group
    size = weight.sum(axis=1)  # (A, B)
    feasible = np.all(size >= min_share * counts.sum(), axis=1)
    if not feasible.any():
        raise ValueError(
            f"class_groups: no split of {classes} classes into {branches} groups gives every "
            f"group >= {min_share:.0%} of the examples; lower min_share or the groups."
        )
    # Scatter = sum_c n_c |m_c|^2 - sum_b |sum_{c in b} n_c m_c|^2 / n_b; the first term is fixed.
    gram = means @ means.T
    sq = np.einsum("acb,cd,adb->ab", weight, gram, weight)
    between = np.sum(sq / np.maximum(size, 1.0), axis=1)
    best = assign[np.flatnonzero(feasible)[np.argmax(between[feasible])]]
    order = {g: i for i, g in enumerate(dict.fromkeys(best.tolist()))}
    return tuple(order[g] for g in best.tolist())


def lenet5_trunk_features(conv1: dict, images: np.ndarray, *, batch: int = 2000) -> np.ndarray:
    """LeNet-5's conv1 + max-pool (the conditional LeNet-5's trunk) on ``images`` ``(N, 28, 28[, 1])``.

    Args:
      conv1: the ``conv1`` parameters (``kernel`` ``(5, 5, 1, F)``, ``bias``) of a trained LeNet-5.
      images: the images.
      batch: images per call.
    """
    x = np.asarray(images, np.float32)
    if x.ndim == 3:
        x = x[..., None]
    conv = ValidConv(int(np.shape(conv1["kernel"])[-1]), (5, 5), padding="VALID")
    run = jax.jit(lambda v, b: max_pool_2x2(conv.apply({"params": v}, b)))
    return np.concatenate(
        [np.asarray(run(conv1, x[i : i + batch])) for i in range(0, len(x), batch)]
    )


def groups_from_model(
    model_dir: str | Path, branches: int, *, examples: int = 20_000, min_share: float = 0.15
) -> tuple[int, ...]:
    """:func:`class_groups` on a saved LeNet-5's trunk features of MNIST training images.

    The images are the first ``examples`` of the training split ``pretrain/configs/lenet5.py``
    trains on (validation and test held out); needs ``POCKETFIT_DATA``.
    """
    root = Path(__file__).resolve().parents[1]
    train = load_splits(load_config(root / "configs" / "lenet5.py")).train
    saved = load_model(model_dir)
    features = lenet5_trunk_features(saved.params["conv1"], train.images[:examples])
    return class_groups(features, train.labels[:examples], branches, min_share=min_share)
