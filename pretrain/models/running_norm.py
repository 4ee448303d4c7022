"""Running standardisation: batch normalisation's centring and scaling by running statistics
of the training batches, used in training too, so training, evaluation and export compute one
function of one image; a linear map of each feature that export folds into the layer before.

References:
  Ioffe, Szegedy, "Batch normalization", ICML 2015 (running statistics).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _tracked(stat: jax.Array, target: jax.Array, rate: float) -> jax.Array:
    """``stat``, whose gradient is ``rate * (stat - target)`` whatever the loss: an SGD step on
    it moves it towards ``target`` (an exponential moving average kept by the optimizer)."""
    del target, rate
    return stat


def _tracked_fwd(
    stat: jax.Array, target: jax.Array, rate: float
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    del rate
    return stat, (stat, target)


def _tracked_bwd(
    rate: float, residuals: tuple[jax.Array, jax.Array], cotangent: jax.Array
) -> tuple[jax.Array, jax.Array]:
    del cotangent
    stat, target = residuals
    return rate * (stat - target), jnp.zeros_like(target)


_tracked.defvjp(_tracked_fwd, _tracked_bwd)


class RunningStandardize(nn.Module):
    """Each feature centred and scaled by running means and variances of the training batches:
    batch normalisation without its learned scale and shift, using the running statistics in
    training too, so training, evaluation and export compute one function of one image. The
    gradient is batch normalisation's centring: what reaches the input has its batch mean
    removed, so no step moves every image's features the same way.

    The trainer keeps no batch statistics, so the running ``mean`` and ``var`` are parameters
    whose gradient is ``rate * (value - batch statistic)`` (:func:`_tracked`): the optimizer's
    SGD step (learning rate ``lr``, momentum ``m``) keeps each an exponential average with rate
    about ``lr * rate / (1 - m)`` per step, and the loss never moves them. They are 1-D, so
    weight decay leaves them alone. A linear map of each feature: the models' folds
    (:func:`~pretrain.models.mobilefacenet.fold_mobilefacenet`,
    :func:`~pretrain.models.embednet.fold_standardization`) fold it into the layer before.

    Why: from random weights every face's embedding shares a large component (pooled ReLU6
    features are positive), and CosFace pushed all of them further along it: the classifier's
    weights move away from the embeddings' common direction, which makes that direction the
    nearest to no wrong class for every face. The MobileFaceNet run collapsed so (dev EER at
    chance, mean cosine 0.997 between different people; ``pretrain/configs/embed_face_mfn.py``).
    Centring by running statistics alone did not stop it (the features ran away from their
    running mean faster than it followed); the centred gradient does.
    """

    rate: float = 0.5
    eps: float = 1e-3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        mean = self.param("mean", nn.initializers.zeros, (channels,))
        var = self.param("var", nn.initializers.ones, (channels,))
        batch = jax.lax.stop_gradient(x.reshape(-1, channels))
        batch_mean = jnp.mean(batch, axis=0)
        batch_var = jnp.mean(jnp.square(batch - batch_mean), axis=0)
        m = _tracked(mean, batch_mean, self.rate)
        v = _tracked(var, batch_var, self.rate)
        # Exactly 0, but its gradient takes each input's share of the batch mean: the gradient
        # reaching x is centred over the batch, as batch normalisation's is.
        centring = jnp.mean(x.reshape(-1, channels), axis=0)
        centring = centring - jax.lax.stop_gradient(centring)
        return (x - m - centring) * running_scale(v, self.eps)


def running_scale(var: jax.Array, eps: float = 1e-3) -> jax.Array:
    """``1 / sqrt(var)``, with ``var`` floored at ``eps`` (a running estimate may dip below 0
    while its momentum settles)."""
    return jax.lax.rsqrt(jnp.maximum(var, eps))
