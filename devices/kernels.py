"""Kernel classes: the share of the peak a convolution reaches depends on its shape, not only on
its precision.

XNNPACK's kernels differ by kind: a dense convolution with one or a few input channels (an image
stem: grey, RGB) cannot fill the vector lanes along its reduction axis, a 3x3 depthwise convolution does
nine multiply-accumulates per output element and is bound by loads, a 1x1 (pointwise)
convolution is a matrix product like a fully connected layer. One efficiency per precision
cannot explain all of them: on this machine an int8 stem with one input channel reaches a few
percent of the int8 peak that a fully connected layer reaches. So the roofline uses, for a
forward layer of a known class, the efficiency measured on single-layer models of that class
(:func:`devices.server.probes.measure_kernel_probes`), and for the rest (pooling, normalisation, fully connected:
memory bound, or the peak itself) the profile's ``forward`` figure.

Classes (:func:`kernel_class`): ``conv_thin`` (a conv with at most ``THIN_CHANNELS`` input
channels: grey images), ``conv_narrow`` (at most ``NARROW_CHANNELS``: colour), ``depthwise``, ``pointwise`` (a conv whose kernel is ``Cin x Cout``: 1x1), ``conv``
(any other conv). Profile keys: ``compute_efficiency.forward_<class>`` for float and
``forward_<class>_int8`` for int8 layers. In a train step a conv whose kernel trains has a
variable filter, which XNNPACK does not take: its forward runs the builtin kernel
(``forward_conv_variable``), and so does its kernel gradient (``weight_gradient``), both
measured on probes of their own (``TRAIN_PROBES``).

The probe models and their timing are server side (:mod:`devices.server.probes`).
"""

from __future__ import annotations

from devices.graph import LayerSpec

KERNEL_CLASSES = ("conv_thin", "conv_narrow", "depthwise", "pointwise", "conv")
THIN_CHANNELS = 2
NARROW_CHANNELS = 4


def kernel_class(layer: LayerSpec) -> str | None:
    """The kernel class of a layer (see the module docstring), or None for other layers."""
    if layer.op == "depthwise_conv" and layer.kernel_params:
        return "depthwise"
    if layer.op != "conv" or not layer.kernel_params:
        return None
    cin, cout = layer.input_shape[-1], layer.output_shape[-1]
    if cin <= THIN_CHANNELS:
        return "conv_thin"
    if cin <= NARROW_CHANNELS:
        return "conv_narrow"
    if layer.kernel_params == cin * cout:
        return "pointwise"
    return "conv"


def efficiency_key(cls: str, precision: str) -> str:
    """The profile's ``compute_efficiency`` key of a kernel class at a precision."""
    if cls in GRADIENT_KEYS:
        return GRADIENT_KEYS[cls]
    return f"forward_{cls}_int8" if precision == "int8" else f"forward_{cls}"


# Probe classes of gradients -> their profile keys.
GRADIENT_KEYS = {
    "kernel_gradient": "weight_gradient",
    "matmul_backward": "backward_matmul",
    "matmul_kernel_gradient": "weight_gradient_matmul",
}
# Profile keys of the TRAIN_PROBES: the estimator charges their passes op_overhead_s (the
# trained part's dispatch), not XNNPACK's per-node cost.
VARIABLE_KEYS = frozenset(
    {
        "forward_conv_variable",
        "weight_gradient",
        "forward_matmul_variable",
        "backward_matmul",
        "weight_gradient_matmul",
    }
)
