"""Tied values with summed gradients: the differentiable core of weight sharing and deduplication.

Members of a group share one value, the mean of the members (exactly the shared value once they
are equal). The gradient each member receives is the *sum* of the gradients of all members of its
group, so an SGD step on the members is an SGD step on the shared value with the summed gradient,
the centroid update of Deep Compression (section 3.2). Frozen groups (the zero of pruned weights)
stay zero and get no gradient.

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016, section 3.2 and figure 3.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def group_means(x: jax.Array, ids: jax.Array, groups: int) -> jax.Array:
    """Mean of the rows of ``x`` in each group (float32); empty groups give 0.

    Computed as ``first member + mean offset from it``, so a group of identical members gives
    exactly their value (a plain sum-then-divide can be one rounding off).

    Args:
      x: ``(n, ...)`` members.
      ids: ``(n,)`` group of each member, in ``[0, groups)``.
      groups: number of groups.

    Returns:
      ``(groups, ...)`` float32 means.
    """
    x32 = x.astype(jnp.float32)
    n = x.shape[0]
    first = jax.ops.segment_min(jnp.arange(n), ids, groups)
    rep = x32[jnp.clip(first, 0, max(n - 1, 0))]
    offsets = jax.ops.segment_sum(x32 - rep[ids], ids, groups)
    counts = jax.ops.segment_sum(jnp.ones(ids.shape, jnp.float32), ids, groups)
    shape = (groups,) + (1,) * (x.ndim - 1)
    empty = (counts == 0).reshape(shape)
    return jnp.where(empty, 0.0, rep + offsets / jnp.maximum(counts, 1.0).reshape(shape))


@jax.custom_vjp
def _gather_tied(x: jax.Array, ids: jax.Array, values: jax.Array, live: jax.Array) -> jax.Array:
    del x, live
    return values[ids]


def _fwd(x: jax.Array, ids: jax.Array, values: jax.Array, live: jax.Array) -> tuple[Any, Any]:
    return values[ids], (ids, live)


def _bwd(res: Any, g: jax.Array) -> tuple[Any, None, None, None]:
    ids, live = res
    groups = live.shape[0]
    summed = jax.ops.segment_sum(g.astype(jnp.float32), ids, groups)
    summed = summed * live.reshape((groups,) + (1,) * (g.ndim - 1))
    return summed[ids].astype(g.dtype), None, None, None


_gather_tied.defvjp(_fwd, _bwd)


def tie(x: jax.Array, ids: jax.Array, live: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Ties the rows of ``x`` within groups: forward the group value, backward the summed gradient.

    Args:
      x: ``(n, ...)`` members (any float dtype).
      ids: ``(n,)`` int group of each member.
      live: ``(groups,)`` 1.0 for trained groups, 0.0 for frozen ones (held at exactly zero).

    Returns:
      ``(tied, values)``: ``tied[i] == values[ids[i]]`` exactly, in ``x``'s dtype; ``values`` are
      the ``(groups, ...)`` shared values (group means, zero for frozen groups).
    """
    groups = live.shape[0]
    means = group_means(jax.lax.stop_gradient(x), ids, groups)
    values = (means * live.reshape((groups,) + (1,) * (x.ndim - 1))).astype(x.dtype)
    return _gather_tied(x, ids, values, live.astype(jnp.float32)), values
