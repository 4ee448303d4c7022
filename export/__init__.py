"""pocketfit export: Deep Compression bundles (``.pfb``) and, later, LiteRT artifacts.

Importing ``export`` loads numpy only; evaluating a bundle imports ``pretrain`` and JAX on demand.

Example:
  >>> import export
  >>> bundle = export.read_bundle("notebooks/results/bundles/lenet300.pfb")
  >>> print(export.render(export.summary(bundle)))
"""

from export.bundle import (
    Bundle,
    BundleError,
    Coded,
    SignatureError,
    build_bundle,
    default_public_key,
    generate_key,
    load_private_key,
    load_public_key,
    read_bundle,
    render,
    stage_sizes,
    summary,
    write_bundle,
)
from export.evaluate import evaluate_bundle, measure_error

__all__ = [
    "Bundle",
    "BundleError",
    "Coded",
    "SignatureError",
    "build_bundle",
    "default_public_key",
    "evaluate_bundle",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "measure_error",
    "read_bundle",
    "render",
    "stage_sizes",
    "summary",
    "write_bundle",
]
