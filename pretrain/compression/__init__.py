"""Deep Compression on parameter pytrees: pruning, OBD, trained quantization, deduplication,
fixed point; composable like ``optax.chain``; retraining on the pretraining pipeline.

Example:
  >>> import pretrain.compression as pc
  >>> prune = pc.magnitude_pruning({"fc1": 0.92, "fc2": 0.91, "fc3": 0.74})
  >>> state = prune.init(params)
  >>> params, state = prune.apply(params, state)
  >>> both = pc.chain(prune, pc.weight_sharing(5))

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016.
  LeCun, Denker, Solla, "Optimal Brain Damage", NeurIPS 1989.
"""

from pretrain.compression.base import (
    Compressor,
    Packed,
    chain,
    kernels,
    layer_of,
    named_leaves,
    replace_leaves,
    selected,
    to_numpy,
)
from pretrain.compression.dedup import DedupLeaf, DedupState, deduplicate, distinct_slices
from pretrain.compression.fixed_point import (
    FixedLeaf,
    FixedPointState,
    activation_ranges,
    clip_activations,
    fake_quantize,
    fixed_point,
)
from pretrain.compression.obd import (
    gauss_newton_diagonal,
    hessian_diagonal,
    obd_pruning,
    obd_saliency,
)
from pretrain.compression.pipeline import (
    CompressionResult,
    Recipe,
    cosine,
    deep_compression,
    prune_stage,
    recipe,
    recipe_names,
    register_recipe,
)
from pretrain.compression.pruning import (
    PruneState,
    SparseLeaf,
    magnitude,
    magnitude_pruning,
    saliency_masks,
    saliency_pruning,
    sparsity_of,
)
from pretrain.compression.quantization import (
    CodebookLeaf,
    SharingState,
    kmeans_1d,
    weight_sharing,
)
from pretrain.compression.retrain import (
    CompressedTrainer,
    RetrainResult,
    iterative_pruning,
    retrain,
    retrain_config,
    sensitivity,
)
from pretrain.compression.schedules import constant, polynomial, steps
from pretrain.compression.search import CANDIDATES, SearchResult, Trial, choose, search_recipes
from pretrain.compression.sharing import group_means, tie

__all__ = [
    "CANDIDATES",
    "CodebookLeaf",
    "CompressedTrainer",
    "CompressionResult",
    "Compressor",
    "DedupLeaf",
    "DedupState",
    "FixedLeaf",
    "FixedPointState",
    "Packed",
    "PruneState",
    "Recipe",
    "RetrainResult",
    "SearchResult",
    "SharingState",
    "SparseLeaf",
    "Trial",
    "activation_ranges",
    "chain",
    "choose",
    "clip_activations",
    "constant",
    "cosine",
    "deduplicate",
    "deep_compression",
    "distinct_slices",
    "fake_quantize",
    "fixed_point",
    "gauss_newton_diagonal",
    "group_means",
    "hessian_diagonal",
    "iterative_pruning",
    "kernels",
    "kmeans_1d",
    "layer_of",
    "magnitude",
    "magnitude_pruning",
    "named_leaves",
    "obd_pruning",
    "obd_saliency",
    "polynomial",
    "prune_stage",
    "recipe",
    "recipe_names",
    "register_recipe",
    "replace_leaves",
    "retrain",
    "retrain_config",
    "saliency_masks",
    "saliency_pruning",
    "search_recipes",
    "selected",
    "sensitivity",
    "sparsity_of",
    "steps",
    "tie",
    "to_numpy",
    "weight_sharing",
]
