"""Optimal Brain Damage: delete the weights whose removal costs least, ``s_k = h_kk u_k^2 / 2``.

The curvature is the diagonal of the Gauss-Newton matrix of the softmax cross-entropy,
``G = J^T (diag(p) - p p^T) J`` averaged over examples (LeCun et al.'s Levenberg-Marquardt
approximation, computed exactly here rather than with their extra diagonal back-propagation).
It is never negative, so saliencies are too. For networks that are piecewise linear in every
single weight (ReLU, max-pooling, convolutions: each path through the network uses a weight at
most once) the Hessian's diagonal *is* the Gauss-Newton diagonal wherever the activation pattern
is locally constant, so on the LeNets this is the exact ``h_kk``; the tests check it against
``jax.hessian``. :func:`hessian_diagonal` gives the exact diagonal of any loss for small nets.

References:
  LeCun, Denker, Solla, "Optimal Brain Damage", NeurIPS 1989 (published 1990).
  Schraudolph, "Fast curvature matrix-vector products for second-order gradient descent", 2002.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

from pretrain.compression.base import Compressor, Params, Select, named_leaves
from pretrain.compression.pruning import Sparsity, saliency_pruning

ApplyFn = Callable[[Params, jax.Array], jax.Array]


def _per_example_diag(apply_fn: ApplyFn) -> Callable[[Params, jax.Array], Params]:
    """``(params, x) -> diag(J^T (diag p - p p^T) J)`` for one example ``x``."""

    def one(params: Params, x: jax.Array) -> Params:
        logits, vjp = jax.vjp(lambda p: apply_fn(p, x[None])[0], params)
        p = jax.nn.softmax(logits.astype(jnp.float32))
        # Rows u_y = sqrt(p_y) (e_y - p) factor the softmax Hessian: sum_y u_y u_y^T = diag p - pp^T.
        u = jnp.sqrt(p)[:, None] * (jnp.eye(p.shape[0]) - p[None, :])
        (rows,) = jax.vmap(vjp)(u.astype(logits.dtype))
        return jax.tree.map(lambda r: jnp.sum(jnp.square(r.astype(jnp.float32)), 0), rows)

    return one


def gauss_newton_diagonal(
    apply_fn: ApplyFn,
    params: Params,
    images: np.ndarray,
    *,
    chunk: int = 16,
    progress: bool = False,
) -> Params:
    """The diagonal of the Gauss-Newton matrix of the mean cross-entropy over ``images``.

    Args:
      apply_fn: ``(params, images) -> logits`` of a classifier.
      params: where the curvature is taken.
      images: ``(n, ...)`` inputs (labels are not needed: the curvature depends on ``p`` only).
      chunk: examples per jitted call (memory grows with ``chunk * classes * params``).
      progress: show a progress bar.

    Returns:
      A tree like ``params`` (float32): ``mean_x diag(J_x^T (diag p_x - p_x p_x^T) J_x)``.
    """
    n = len(images)
    if n == 0:
        raise ValueError("gauss_newton_diagonal needs at least one example.")
    one = _per_example_diag(apply_fn)

    @jax.jit
    def add(total: Params, params: Params, xs: jax.Array, w: jax.Array) -> Params:
        per = jax.vmap(one, in_axes=(None, 0))(params, xs)
        return jax.tree.map(lambda t, d: t + jnp.einsum("n,n...->...", w, d), total, per)

    total = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), jnp.float32), params)
    for start in tqdm(range(0, n, chunk), desc="curvature", disable=not progress, leave=False):
        xs = np.asarray(images[start : start + chunk])
        w = np.ones(len(xs), np.float32)
        if len(xs) < chunk:  # pad to one shape so the step compiles once
            pad = chunk - len(xs)
            xs = np.concatenate([xs, np.repeat(xs[:1], pad, 0)])
            w = np.concatenate([w, np.zeros(pad, np.float32)])
        total = add(total, params, xs, w)
    return jax.tree.map(lambda t: t / n, total)


def hessian_diagonal(
    loss_fn: Callable[[Params], jax.Array], params: Params, *, chunk: int = 64
) -> Params:
    """The exact diagonal of the Hessian of ``loss_fn`` by Hessian-vector products with unit vectors.

    One product per parameter: for small networks and for checking approximations.
    """
    flat, unravel = ravel_pytree(params)
    n = flat.shape[0]

    def hvp(v: jax.Array) -> jax.Array:
        grad = jax.grad(lambda f: loss_fn(unravel(f)))
        return jax.jvp(grad, (flat,), (v,))[1]

    @jax.jit
    def block(idx: jax.Array) -> jax.Array:
        basis = jax.nn.one_hot(idx, n, dtype=flat.dtype)
        return jax.vmap(hvp)(basis)[jnp.arange(idx.shape[0]), idx]

    parts = []
    for start in range(0, n, chunk):
        idx = np.minimum(np.arange(start, start + chunk), n - 1)
        parts.append(np.asarray(block(jnp.asarray(idx)))[: min(chunk, n - start)])
    return unravel(jnp.asarray(np.concatenate(parts)))


def obd_saliency(params: Params, curvature: Params) -> dict[str, np.ndarray]:
    """``s_k = h_kk u_k^2 / 2`` per leaf, by name: the estimated loss increase of deleting ``u_k``."""
    h = named_leaves(curvature)
    return {
        k: 0.5 * np.asarray(h[k], np.float64) * np.square(np.asarray(v, np.float64))
        for k, v in named_leaves(params).items()
    }


def obd_pruning(
    sparsity: Sparsity,
    curvature: Callable[[Params], Params],
    *,
    scope: str = "global",
    select: Select | None = None,
) -> Compressor:
    """OBD: deletes the lowest-saliency weights; the mask keeps them deleted while retraining.

    Args:
      sparsity: fraction deleted (global by default, as in OBD: saliencies are loss increases and
        compare across layers); ``{layer: fraction}`` with ``scope="layer"``.
      curvature: ``params -> diagonal of the Hessian`` (a tree like ``params``), e.g.
        ``lambda p: gauss_newton_diagonal(apply_fn, p, images)``; evaluated once per ``init``.
      scope: ``"global"`` or ``"layer"``.
      select: which leaves to prune (default: every kernel).

    Example:
      >>> curv = lambda p: gauss_newton_diagonal(apply_fn, p, train_images[:2000])
      >>> prune = obd_pruning(0.9, curv)

    References:
      LeCun, Denker, Solla, "Optimal Brain Damage", NeurIPS 1989.
    """

    def saliency(params: Params) -> Mapping[str, Any]:
        return obd_saliency(params, curvature(params))

    return saliency_pruning(sparsity, saliency, scope=scope, select=select)
