"""Fixtures of the export tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pretrain
from pretrain.train.artifacts import SavedModel


@pytest.fixture(scope="session")
def save_embednet() -> Callable[..., SavedModel]:
    """``save(folder, options, *, info, seed=0)``: a random-init EmbedNet with ``options``,
    saved at ``folder`` (64x64x1 input) with ``info``, and read back."""

    def save(folder: Path, options: dict[str, Any], *, info: dict, seed: int = 0) -> SavedModel:
        module = pretrain.build_model("embednet", **options)
        # jitted: an eager init compiles each op of the random initialisers on its own (3x slower)
        params = jax.jit(module.init)(jax.random.key(seed), jnp.zeros((1, 64, 64, 1)))["params"]
        pretrain.save_model(
            folder, model="embednet", model_options=options, params=params, info=info
        )
        return pretrain.load_model(folder)

    return save


# float32 machine epsilon: the rounding of one stored weight.
F32_EPS = float(np.finfo(np.float32).eps)


def _assert_steps_follow_jax(
    interpreter: Any,
    signature: str,
    step: Callable[..., tuple[dict[str, Any], Any]],
    jax_vars: dict[str, Any],
    tensors: dict[str, str],
    inputs: dict[str, np.ndarray],
    *,
    steps: int,
    lr: np.float32,
    weight_decay: np.float32,
) -> list[float]:
    """Each LiteRT train step from JAX's weights matches the JAX step from the same weights.

    A trajectory compared end to end amplifies rounding: two CPUs that sum in another order
    drift apart by more than any fixed tolerance after a few steps. So every step starts both
    from the same weights (JAX's, written into the interpreter with ``set_weights``), and the
    update each makes is compared at a tolerance of 1e-3 of the update's size plus a few float32
    roundings of the weights: what reordered sums can produce, and far below what a wrong
    gradient (a missing term, a wrong sign or scale: 1% off the learning rate fails) would.

    Args:
      interpreter: the artifact's LiteRT interpreter.
      signature: the train signature to run (``train``, ``train_last_block``, ...).
      step: the jitted JAX step ``(vars, *inputs, lr, wd) -> (new vars of the scope, loss)``,
        called with ``inputs``' values in order.
      jax_vars: JAX variables by manifest name (updated in place).
      tensors: manifest name -> the interpreter's weight tensor name.
      inputs: the signature's data inputs (features or embeddings, labels) by name.
      steps: how many steps to compare.
      lr, weight_decay: the step's hyperparameters.

    Returns:
      The LiteRT step's loss at each step.
    """
    train = interpreter.get_signature_runner(signature)
    get = interpreter.get_signature_runner("get_weights")
    put = interpreter.get_signature_runner("set_weights")
    losses = []
    for _ in range(steps):
        before = {n: np.asarray(v) for n, v in jax_vars.items()}
        current = get(unused=np.int32(0))
        put(**{**current, **{tensors[n]: v for n, v in before.items()}})
        loss = train(**inputs, lr=lr, weight_decay=weight_decay)["loss"]
        new, jax_loss = step(jax_vars, *inputs.values(), lr, weight_decay)
        jax_vars.update(new)
        np.testing.assert_allclose(loss, jax_loss, rtol=1e-4, atol=1e-6)
        losses.append(float(loss))
        got = get(unused=np.int32(0))
        for name, tensor in tensors.items():
            want = np.asarray(jax_vars[name]) - before[name]
            tol = 1e-3 * np.abs(want).max() + 4 * F32_EPS * np.abs(before[name]).max()
            np.testing.assert_allclose(
                got[tensor] - before[name], want, rtol=0, atol=tol, err_msg=name
            )
    return losses


@pytest.fixture(scope="session")
def steps_follow_jax() -> Callable[..., list[float]]:
    """``check(interpreter, signature, step, jax_vars, tensors, inputs, *, steps, lr,
    weight_decay)``: each LiteRT train step matches JAX's from the same weights (see
    :func:`_assert_steps_follow_jax`)."""
    return _assert_steps_follow_jax
