"""Export of tree-shaped models: a signature per node of a conditional network."""

from export.tree.routed import flat_tflite, routed_tflite

__all__ = ["flat_tflite", "routed_tflite"]
