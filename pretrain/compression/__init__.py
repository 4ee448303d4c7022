"""Deep Compression on parameter pytrees: pruning, OBD, trained quantization, deduplication,
fixed point; composable like ``optax.chain``; retraining on the pretraining pipeline.

Example:
  >>> import pretrain.compression as pc
  >>> prune = pc.magnitude_pruning({"fc1": 0.92, "fc2": 0.91, "fc3": 0.74})
  >>> state = prune.init(params)
  >>> params, state = prune.apply(params, state)
  >>> both = pc.chain(prune, pc.weight_sharing(5))

Structured pruning (channels, kernels, intra-kernel strides chosen by particle filters; L1-norm
filter pruning as the baseline; ``shrink_module`` cuts the removed channels out of the arrays):
  >>> result = pc.structured_compression(saved, pc.structured_recipe("lenet5"), splits,
  ...                                    key=key, rng=np.random.default_rng(0))
  >>> module, params = pc.shrink_module(saved.module, result.params, result.structure)

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016.
  LeCun, Denker, Solla, "Optimal Brain Damage", NeurIPS 1989.
  Anwar, Hwang, Sung, "Structured Pruning of Deep Convolutional Neural Networks", ACM JETC 2017.
  Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017.
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
from pretrain.compression.distill import (
    Distillation,
    EmbeddingDistillation,
    distillation_teacher,
    distilled_task,
    soft_cross_entropy,
)
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
from pretrain.compression.particles import (
    FilterResult,
    FilterSettings,
    LayerPlan,
    particle_filter,
    select_structure,
    systematic_resample,
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
from pretrain.compression.separable import (
    l1_separable,
    select_separable,
    separable_chain,
    separable_masks,
    separable_pruning,
    shrink_separable,
    shrink_stem,
    stem_window,
)
from pretrain.compression.separable_pipeline import (
    FACE_SEPARABLE,
    SeparableRecipe,
    SeparableResult,
    channels_kept,
    dev_eer,
    embed_fn,
    finetune_config,
    folded,
    genuine_pairs,
    retrained_dev_eer,
    separable_compression,
    shaped_keep,
)
from pretrain.compression.sharing import group_means, tie
from pretrain.compression.shrink import shrink, shrink_module
from pretrain.compression.structured import (
    LENET5_CHAIN,
    Structure,
    filter_norms,
    l1_structure,
    macs,
    output_positions,
    strided_positions,
    structure_masks,
    structured_pruning,
)
from pretrain.compression.structured_compare import (
    Comparison,
    common_bits,
    compare_structures,
    mean_std,
    pf_vs_l1,
)
from pretrain.compression.structured_pipeline import (
    StructuredRecipe,
    StructuredResult,
    binomial_se,
    l1_compression,
    particle_structure,
    retrained_error,
    structured_compression,
    structured_recipe,
    word_length,
)

__all__ = [
    "CANDIDATES",
    "FACE_SEPARABLE",
    "LENET5_CHAIN",
    "CodebookLeaf",
    "Comparison",
    "CompressedTrainer",
    "CompressionResult",
    "Compressor",
    "DedupLeaf",
    "DedupState",
    "Distillation",
    "EmbeddingDistillation",
    "FilterResult",
    "FilterSettings",
    "FixedLeaf",
    "FixedPointState",
    "LayerPlan",
    "Packed",
    "PruneState",
    "Recipe",
    "RetrainResult",
    "SearchResult",
    "SeparableRecipe",
    "SeparableResult",
    "SharingState",
    "SparseLeaf",
    "Structure",
    "StructuredRecipe",
    "StructuredResult",
    "Trial",
    "activation_ranges",
    "binomial_se",
    "chain",
    "channels_kept",
    "choose",
    "clip_activations",
    "common_bits",
    "compare_structures",
    "constant",
    "cosine",
    "deduplicate",
    "deep_compression",
    "dev_eer",
    "distillation_teacher",
    "distilled_task",
    "distinct_slices",
    "embed_fn",
    "fake_quantize",
    "filter_norms",
    "finetune_config",
    "fixed_point",
    "folded",
    "gauss_newton_diagonal",
    "genuine_pairs",
    "group_means",
    "hessian_diagonal",
    "iterative_pruning",
    "kernels",
    "kmeans_1d",
    "l1_compression",
    "l1_separable",
    "l1_structure",
    "layer_of",
    "macs",
    "magnitude",
    "magnitude_pruning",
    "mean_std",
    "named_leaves",
    "obd_pruning",
    "obd_saliency",
    "output_positions",
    "particle_filter",
    "particle_structure",
    "pf_vs_l1",
    "polynomial",
    "prune_stage",
    "recipe",
    "recipe_names",
    "register_recipe",
    "replace_leaves",
    "retrain",
    "retrain_config",
    "retrained_dev_eer",
    "retrained_error",
    "saliency_masks",
    "saliency_pruning",
    "search_recipes",
    "select_separable",
    "select_structure",
    "selected",
    "sensitivity",
    "separable_chain",
    "separable_compression",
    "separable_masks",
    "separable_pruning",
    "shaped_keep",
    "shrink",
    "shrink_module",
    "shrink_separable",
    "shrink_stem",
    "soft_cross_entropy",
    "sparsity_of",
    "stem_window",
    "steps",
    "strided_positions",
    "structure_masks",
    "structured_compression",
    "structured_pruning",
    "structured_recipe",
    "systematic_resample",
    "tie",
    "to_numpy",
    "weight_sharing",
    "word_length",
]
