"""Trees in the network: conditional networks (a learned router, one branch runs) and the tree
over an enrolled gallery for 1:N identification.

Importing this package registers the ``routed_classification`` task.
"""

from pretrain.tree.gallery import fit_gallery_tree, spherical_kmeans
from pretrain.tree.groups import class_groups, class_means, groups_from_model, lenet5_trunk_features
from pretrain.tree.identify import (
    Gallery,
    TreeShape,
    build_gallery,
    choose_tree,
    flat_figures,
    tree_figures,
)
from pretrain.tree.task import RoutedClassification, routed_loss, temperature

__all__ = [
    "Gallery",
    "RoutedClassification",
    "TreeShape",
    "build_gallery",
    "choose_tree",
    "class_groups",
    "class_means",
    "fit_gallery_tree",
    "flat_figures",
    "groups_from_model",
    "lenet5_trunk_features",
    "routed_loss",
    "spherical_kmeans",
    "temperature",
    "tree_figures",
]
