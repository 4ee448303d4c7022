"""The device steps of a backbone written in TensorFlow ops: ``train*`` (forward, backward and
the SGD update), ``refine`` and ``infer``, for a batch axis the runtime resizes.

Why not ``jax2tf`` (nor ``tf.GradientTape``): under a symbolic batch jax2tf broadcasts every bias
and ReLU6 bound with a runtime shape (SHAPE / CONCATENATION / BROADCAST_TO, dynamic
STRIDED_SLICE), and TensorFlow's own gradients of broadcasting ops reduce over axes computed at
run time (SHAPE + BroadcastGradientArgs) or need kernels TFLite lacks (the depthwise kernel's
gradient). The backward pass is therefore written out, with ops that broadcast natively
(``bias_add``, ``relu6``, keepdims reductions, reshapes with -1): the same math as the JAX step
in :mod:`export.artifact.scopes` (cosine head with its scale, weight decay on kernels only,
``w <- w - lr * (g + wd * w)``), checked against it at build time (:func:`check_against_jax`).

A builder is chosen by registered model name (:func:`register_steps`); models without one (the
LeNets) keep the jax2tf path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from devices.registry import Registry
from export.artifact.head import EPS, HeadConfig
from export.artifact.scopes import HEAD, LAST, infer_fn, refine_fn, train_fn, trained
from export.artifact.split import Backbone
from export.artifact.tfnative import embednet_of

# Same signatures as the JAX functions of export.artifact.scopes, over tf tensors.
TfVariables = dict[str, Any]


class Steps(NamedTuple):
    """TensorFlow device steps: ``train[scope](variables, inputs, labels, lr, wd) -> (updated
    variables of the scope, loss)``, ``infer(variables, embeddings) -> scores`` and
    ``refine(variables, features) -> embeddings`` (None when only the head is exported)."""

    train: dict[str, Callable[..., tuple[TfVariables, Any]]]
    infer: Callable[[TfVariables, Any], Any]
    refine: Callable[[TfVariables, Any], Any] | None


StepsBuilder = Callable[[Backbone, HeadConfig, tuple[str, ...]], Steps]
STEPS_BUILDERS: Registry[StepsBuilder] = Registry("TensorFlow steps builder")
register_steps = STEPS_BUILDERS.register  # decorator: @register_steps("embednet")
steps_builder = STEPS_BUILDERS.get  # the builder of a model, or None


def native_steps(backbone: Backbone, head: HeadConfig, scopes: Sequence[str]) -> Steps | None:
    """The TensorFlow steps of ``backbone``'s scopes, checked against the JAX steps
    (:func:`check_against_jax`), or None when its model has no registered builder."""
    builder = steps_builder(backbone.name)
    if builder is None:
        return None
    steps = builder(backbone, head, tuple(scopes))
    check_against_jax(backbone, head, scopes, steps)
    return steps


def check_against_jax(
    backbone: Backbone,
    head: HeadConfig,
    scopes: Sequence[str],
    steps: Steps,
    *,
    tolerance: float = 1e-4,
) -> float:
    """Runs every TensorFlow step (eagerly) and its JAX reference on one random batch (features
    of random images, random labels and head, weight decay on); returns the largest difference
    of loss, updated variables, scores and refined embeddings, relative to max(1, |JAX value|).

    The JAX side is jitted: run eagerly, each of its ops compiles on its own (about 5 s an
    export of a small EmbedNet).

    Raises:
      ValueError: a difference above ``tolerance`` (a builder out of step with the JAX step).
    """
    import jax
    import jax.numpy as jnp
    import tensorflow as tf

    from export.artifact.scopes import initial_variables

    rng = np.random.default_rng(0)
    images = rng.normal(size=(6, *backbone.input_shape)).astype(np.float32)
    features = np.asarray(jax.jit(backbone.front())(jnp.asarray(images)))
    embeddings = np.asarray(jax.jit(backbone.embed())(jnp.asarray(images)))
    labels = (np.arange(6) % head.classes).astype(np.int32)
    kernel = rng.normal(size=(head.embedding_dim, head.classes)).astype(np.float32)
    kernel[:, -1] = 0.0  # an empty class slot
    values = {k: np.asarray(v) for k, v in initial_variables(backbone, kernel, scopes).items()}
    lr, wd = np.float32(0.5), np.float32(0.01)
    as_tf = {k: tf.constant(v) for k, v in values.items()}
    as_jax = {k: jnp.asarray(v) for k, v in values.items()}
    pairs: list[tuple[str, Any, Any]] = []
    for scope in scopes:
        source = embeddings if scope == "head" else features
        new, loss = steps.train[scope](as_tf, tf.constant(source), tf.constant(labels), lr, wd)
        want, want_loss = jax.jit(train_fn(backbone, head, scope))(
            as_jax, jnp.asarray(source), jnp.asarray(labels), jnp.asarray(lr), jnp.asarray(wd)
        )
        if set(new) != set(trained(backbone, scope)):
            raise ValueError(f"{backbone.name}: the TensorFlow {scope} step updates {sorted(new)}.")
        pairs.append((f"{scope} loss", loss, want_loss))
        pairs.extend((f"{scope} {n}", new[n], want[n]) for n in want)
    pairs.append(
        (
            "infer",
            steps.infer(as_tf, tf.constant(embeddings)),
            jax.jit(infer_fn(head))(as_jax, jnp.asarray(embeddings)),
        )
    )
    if steps.refine is not None:
        got = steps.refine(as_tf, tf.constant(features))
        want_refined = jax.jit(refine_fn(backbone))(as_jax, jnp.asarray(features))
        pairs.append(("refine", got, want_refined))
    worst, where = 0.0, ""
    for name, tf_value, jax_value in pairs:
        a, b = np.asarray(tf_value), np.asarray(jax_value)
        err = float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))
        if not err <= worst:  # also catches NaN
            worst, where = err, name
            if err != err:
                break
    if not worst <= tolerance:
        raise ValueError(
            f"{backbone.name}: the TensorFlow step differs from the JAX step by {worst:.3g} "
            f"(> {tolerance}) in {where}; its builder in export.artifact.tftrain is out of step."
        )
    return worst


def _normalize(tf: Any, x: Any, axis: int, eps: float) -> tuple[Any, Any, Any]:
    """``(x / max(||x||, eps), 1 / max(||x||, eps), ||x|| > eps)`` along ``axis`` (keepdims)."""
    norm = tf.sqrt(tf.reduce_sum(x * x, axis=axis, keepdims=True))
    clipped = tf.maximum(norm, eps)
    return x / clipped, 1.0 / clipped, tf.cast(norm > eps, x.dtype)


def _normalize_grad(tf: Any, u: Any, inv: Any, mask: Any, g: Any, axis: int) -> Any:
    """Gradient through ``u = x / max(||x||, eps)``: ``(g - u <u, g>) / ||x||`` where the norm
    is above eps, ``g / eps`` where the clip holds (no gradient flows through the norm there)."""
    return (g - u * (tf.reduce_sum(u * g, axis=axis, keepdims=True) * mask)) * inv


def _relu6_mask(tf: Any, z: Any) -> Any:
    """``relu6'(z)`` as JAX defines it: 1 on the open interval (0, 6), else 0."""
    return tf.cast(tf.logical_and(z > 0.0, z < 6.0), z.dtype)


def _head_forward(tf: Any, head: HeadConfig, kernel: Any, embeddings: Any) -> dict[str, Any]:
    en, e_inv, e_mask = _normalize(tf, embeddings, -1, EPS)
    wn, w_inv, w_mask = _normalize(tf, kernel, 0, EPS)
    logits = tf.matmul(head.scale * en, wn)  # (s * e) @ w, the JAX order
    return {
        "en": en,
        "e_inv": e_inv,
        "e_mask": e_mask,
        "wn": wn,
        "w_inv": w_inv,
        "w_mask": w_mask,
        "logits": logits,
    }


def _sgd(w: Any, g: Any, lr: Any, wd: Any | None) -> Any:
    """``w - lr * (g + wd * w)`` (the JAX step's order); biases have no decay."""
    return w - lr * (g + wd * w) if wd is not None else w - lr * g


class _LastBlock(NamedTuple):
    """The shapes and variable names of an EmbedNet's last block (depthwise 3x3, pointwise 1x1,
    mean pool or GDC, optional feature standardisation, embedding Dense, optional L2
    normalisation)."""

    names: dict[str, str]  # leaf ("depthwise/kernel", ...) -> variable name
    stride: int
    pads: list[list[int]]  # SAME padding of the depthwise conv: [[top, bottom], [left, right]]
    h_out: int
    w_out: int
    c_in: int
    c_out: int
    feature_norm: bool
    normalize: bool
    gdc: bool  # the pool is a learned (h, w, c) weighting (EmbedNet pool="gdc"), trained too


def _last_block(backbone: Backbone) -> _LastBlock:
    net = embednet_of(backbone, "steps")
    widths, strides = tuple(net.widths), tuple(net.strides)
    block = f"{LAST}block{len(widths)}/"
    leaves = ("depthwise/kernel", "depthwise/bias", "pointwise/kernel", "pointwise/bias")
    names = {k: block + k for k in leaves}
    names.update({"embed/kernel": LAST + "embed/kernel", "embed/bias": LAST + "embed/bias"})
    gdc = net.pool == "gdc"
    if gdc:
        names["gdc"] = LAST + "gdc"
    stride = int(strides[-1])
    h_in, w_in, c_in = backbone.features_shape
    h_out, w_out = -(-h_in // stride), -(-w_in // stride)
    pads = []
    for size, out in ((h_in, h_out), (w_in, w_out)):
        total = max((out - 1) * stride + 3 - size, 0)
        pads.append([total // 2, total - total // 2])
    c_out = int(backbone.last_params[f"block{len(widths)}"]["pointwise"]["kernel"].shape[-1])
    return _LastBlock(
        names, stride, pads, h_out, w_out, c_in, c_out, net.feature_norm, net.normalize, gdc
    )


class _EmbedNetSteps:
    """The written-out forward and backward passes of an EmbedNet's last block and the head."""

    def __init__(self, tf: Any, block: _LastBlock, head: HeadConfig) -> None:
        self.tf, self.b, self.head = tf, block, head

    def last_forward(self, v: TfVariables, features: Any) -> dict[str, Any]:
        """The last block's outputs and what its backward pass reads."""
        tf, b, n = self.tf, self.b, self.b.names
        dk = tf.reshape(v[n["depthwise/kernel"]], (3, 3, b.c_in, 1))
        z1 = tf.nn.bias_add(
            tf.nn.depthwise_conv2d(features, dk, (1, b.stride, b.stride, 1), "SAME"),
            v[n["depthwise/bias"]],
        )
        a1 = tf.nn.relu6(z1)
        pk = tf.reshape(v[n["pointwise/kernel"]], (b.c_in, b.c_out))
        z2 = tf.nn.bias_add(
            tf.reshape(
                tf.matmul(tf.reshape(a1, (-1, b.c_in)), pk), (-1, b.h_out, b.w_out, b.c_out)
            ),
            v[n["pointwise/bias"]],
        )
        a2 = tf.nn.relu6(z2)
        if b.gdc:
            m = tf.reduce_sum(a2 * v[n["gdc"]], axis=(1, 2))
        else:
            m = tf.reduce_mean(a2, axis=(1, 2))
        out = {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "pk": pk}
        if b.feature_norm:
            c = m - tf.reduce_mean(m, axis=-1, keepdims=True)
            r = tf.math.rsqrt(tf.reduce_mean(c * c, axis=-1, keepdims=True) + 1e-6)
            out.update(c=c, r=r)
            m = c * r
        z3 = tf.nn.bias_add(tf.matmul(m, v[n["embed/kernel"]]), v[n["embed/bias"]])
        out["pooled"] = m
        if b.normalize:
            z3, inv, mask = _normalize(tf, z3, -1, 1e-12)
            out.update(inv=inv, mask=mask)
        out["embeddings"] = z3
        return out

    def last_backward(
        self, v: TfVariables, features: Any, fw: dict[str, Any], g: Any, kernels: bool
    ) -> dict[str, Any]:
        """Gradients of the last block's leaves (kernels only when ``kernels``) given
        ``g = dloss/dembeddings``."""
        tf, b, n = self.tf, self.b, self.b.names
        grads: dict[str, Any] = {}
        if b.normalize:
            g = _normalize_grad(tf, fw["embeddings"], fw["inv"], fw["mask"], g, -1)
        grads[n["embed/bias"]] = tf.reduce_sum(g, axis=0)
        if kernels:
            grads[n["embed/kernel"]] = tf.matmul(fw["pooled"], g, transpose_a=True)
        g = tf.matmul(g, v[n["embed/kernel"]], transpose_b=True)
        if b.feature_norm:
            c, r = fw["c"], fw["r"]
            g = r * g - (r * r * r) * c * tf.reduce_mean(g * c, axis=-1, keepdims=True)
            g = g - tf.reduce_mean(g, axis=-1, keepdims=True)
        if b.gdc:
            g = tf.reshape(g, (-1, 1, 1, b.c_out))
            if kernels:
                grads[n["gdc"]] = tf.reduce_sum(fw["a2"] * g, axis=0)
            g = g * v[n["gdc"]]
        else:
            g = tf.reshape(g * (1.0 / (b.h_out * b.w_out)), (-1, 1, 1, b.c_out))
        g = g * _relu6_mask(tf, fw["z2"])
        grads[n["pointwise/bias"]] = tf.reduce_sum(g, axis=(0, 1, 2))
        flat = tf.reshape(g, (-1, b.c_out))
        if kernels:
            pk = tf.matmul(tf.reshape(fw["a1"], (-1, b.c_in)), flat, transpose_a=True)
            grads[n["pointwise/kernel"]] = tf.reshape(pk, (1, 1, b.c_in, b.c_out))
        g = tf.reshape(tf.matmul(flat, fw["pk"], transpose_b=True), (-1, b.h_out, b.w_out, b.c_in))
        g = g * _relu6_mask(tf, fw["z1"])
        grads[n["depthwise/bias"]] = tf.reduce_sum(g, axis=(0, 1, 2))
        if kernels:
            grads[n["depthwise/kernel"]] = self._depthwise_kernel_grad(features, g)
        return grads

    def _depthwise_kernel_grad(self, features: Any, g: Any) -> Any:
        """The 3x3 taps' gradients: each the sum of the strided, padded input times ``g``."""
        tf, b = self.tf, self.b
        padded = tf.pad(features, [[0, 0], b.pads[0], b.pads[1], [0, 0]])
        hi, wi = b.stride * (b.h_out - 1) + 1, b.stride * (b.w_out - 1) + 1
        s = b.stride
        taps = [
            tf.reduce_sum(padded[:, i : i + hi : s, j : j + wi : s, :] * g, axis=(0, 1, 2))
            for i in range(3)
            for j in range(3)
        ]
        return tf.reshape(tf.stack(taps), (3, 3, 1, b.c_in))

    def train(self, updated: list[str], scope: str) -> Callable[..., tuple[TfVariables, Any]]:
        """One SGD step on ``scope`` (updating ``updated``), as the JAX step."""
        tf, head = self.tf, self.head

        def step(v: TfVariables, inputs: Any, labels: Any, lr: Any, wd: Any) -> Any:
            fw = self.last_forward(v, inputs) if scope != "head" else None
            embeddings = inputs if fw is None else fw["embeddings"]
            hf = _head_forward(tf, head, v[HEAD], embeddings)
            logp = tf.nn.log_softmax(hf["logits"], axis=-1)
            onehot = tf.one_hot(labels, head.classes, dtype=tf.float32)
            loss = -tf.reduce_mean(tf.reduce_sum(logp * onehot, axis=-1))
            # d loss / d logits = (softmax - onehot) / n; n counted without a SHAPE op.
            count = tf.reduce_sum(tf.cast(labels, tf.float32) * 0.0 + 1.0)
            g = (tf.exp(logp) - onehot) * (head.scale / count)
            dwn = tf.matmul(hf["en"], g, transpose_a=True)
            grads = {HEAD: _normalize_grad(tf, hf["wn"], hf["w_inv"], hf["w_mask"], dwn, 0)}
            if fw is not None:
                den = tf.matmul(g, hf["wn"], transpose_b=True)
                de = _normalize_grad(tf, hf["en"], hf["e_inv"], hf["e_mask"], den, -1)
                grads.update(self.last_backward(v, inputs, fw, de, scope == "last_block"))
            new = {
                n: _sgd(v[n], grads[n], lr, wd if n.endswith("kernel") else None) for n in updated
            }
            return new, loss

        return step

    def infer(self, v: TfVariables, embeddings: Any) -> Any:
        return _head_forward(self.tf, self.head, v[HEAD], embeddings)["logits"]

    def refine(self, v: TfVariables, features: Any) -> Any:
        return self.last_forward(v, features)["embeddings"]


@register_steps("embednet")
def _embednet(backbone: Backbone, head: HeadConfig, scopes: tuple[str, ...]) -> Steps:
    import tensorflow as tf

    steps = _EmbedNetSteps(tf, _last_block(backbone), head)
    return Steps(
        train={scope: steps.train(trained(backbone, scope), scope) for scope in scopes},
        infer=steps.infer,
        refine=steps.refine if len(scopes) > 1 else None,
    )
