"""pocketfit export: Deep Compression bundles (``.pfb``) and LiteRT artifacts, on the server.

``export`` itself offers the bundle: encode, sign, read, verify and summarise a ``.pfb``
(:mod:`export.bundle`; numpy and ``cryptography`` only, so importing ``export`` loads no JAX);
``evaluate_bundle`` decodes one into its model and measures it (imports ``pretrain`` and JAX on
demand). The artifact a phone downloads is built by :mod:`export.artifact` (JAX, and TensorFlow
while converting): ``export.artifact.export_model`` is ``python -m export build``. What an
artifact's files and names are is :mod:`devices.contract`.

Example:
  >>> import export
  >>> bundle = export.read_bundle("notebooks/results/bundles/lenet300.pfb",
  ...                             public_key="notebooks/results/bundles/signing.pub")
  >>> print(export.render(export.summary(bundle)))
"""

from export.bundle import (
    Bundle,
    BundleError,
    Coded,
    SignatureError,
    build_bundle,
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
