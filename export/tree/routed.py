"""A conditional network -> one LiteRT file with a signature per node (float32, builtins only).

``trunk`` maps images to the trunk's features and the router's logits; ``branch_<i>`` maps those
features to branch i's scores (names in :mod:`devices.routed`). The device runs ``trunk``, then the
argmax's branch alone (:class:`personalize.RoutedClassifier`). :func:`flat_tflite` converts a plain
classifier the same way (one ``infer`` signature), the baseline a bench times beside it. The weights
are constants (nothing trains on the device here), the batch axis is symbolic.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devices.contract import FEATURES, IMAGES, INFER, SCORES
from devices.routed import ROUTE, TRUNK, branch_signature
from export.artifact.convert import check_builtins


def _poly(shape: Sequence[int], batch: int | None) -> str:
    return f"({'b' if batch is None else batch}, " + ", ".join(str(d) for d in shape) + ")"


def _signature(
    tf: Any,
    fn: Callable[[Any], dict[str, Any]],
    name: str,
    shape: Sequence[int],
    batch: int | None,
) -> Any:
    """``fn`` (JAX, one float32 input) as a ``tf.function`` (``batch`` None: symbolic)."""
    from jax.experimental import jax2tf

    converted = jax2tf.convert(fn, with_gradient=False, polymorphic_shapes=[_poly(shape, batch)])
    spec = tf.TensorSpec([batch, *shape], tf.float32, name=name)

    @tf.function(autograph=False, input_signature=[spec])
    def run(x):
        return converted(x)

    return run


def _convert(tf: Any, signatures: Mapping[str, Any]) -> bytes:
    holder = tf.Module()
    for key, fn in signatures.items():
        setattr(holder, key, fn)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(holder, tmp, signatures=dict(signatures))
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(signatures))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        blob = bytes(converter.convert())
    check_builtins(blob)
    return blob


def routed_tflite(
    module: Any,
    variables: Mapping[str, Any],
    input_shape: Sequence[int],
    *,
    batch: int | None = None,
) -> bytes:
    """The flatbuffer of a routed model (e.g. ``lenet5_tree``) with ``trunk`` and ``branch_<i>``.

    Args:
      module: a Flax module with ``trunk`` and ``branch(features, index)`` methods and a
        ``branches`` attribute.
      variables: its variables (``{"params": ...}``).
      input_shape: one image's shape, e.g. ``(28, 28, 1)``.
      batch: a fixed batch size (a phone classifies one image: 1), or None for any batch.
    """
    import jax
    import tensorflow as tf

    def trunk(x: Any) -> dict[str, Any]:
        features, route = module.apply(variables, x, method="trunk")
        return {FEATURES: features, ROUTE: route}

    example = jax.ShapeDtypeStruct((1, *input_shape), "float32")
    fshape = jax.eval_shape(lambda x: module.apply(variables, x, method="trunk"), example)[0].shape
    sigs = {TRUNK: _signature(tf, trunk, IMAGES, input_shape, batch)}
    for i in range(module.branches):

        def branch(f: Any, i: int = i) -> dict[str, Any]:
            return {SCORES: module.apply(variables, f, i, method="branch")}

        sigs[branch_signature(i)] = _signature(tf, branch, FEATURES, fshape[1:], batch)
    return _convert(tf, sigs)


def flat_tflite(
    module: Any,
    variables: Mapping[str, Any],
    input_shape: Sequence[int],
    *,
    batch: int | None = None,
) -> bytes:
    """The flatbuffer of a plain classifier with one ``infer`` signature (images -> scores)."""
    import tensorflow as tf

    def infer(x: Any) -> dict[str, Any]:
        return {SCORES: module.apply(variables, x)}

    return _convert(tf, {INFER: _signature(tf, infer, IMAGES, input_shape, batch)})
