"""XLA:CPU's training defaults: set by `import pretrain`, in effect, the user's flags kept."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import pretrain
from pretrain.train import Trainer
from pretrain.train.xla_cpu import CPU_DEFAULTS, apply_cpu_defaults, with_cpu_defaults

YNN = "--xla_cpu_experimental_ynn_fusion_type"
# A matrix product, a convolution and an elementwise tail: XLA 0.10 gives each to YNNPACK.
PROBE = """
import sys
if sys.argv[1] == "pretrain":
    import pretrain
import jax, jax.numpy as jnp
f = jax.jit(lambda x, w, k: jnp.tanh(x @ w).sum() + jax.lax.conv(x[None, None], k, (1, 1), "VALID").sum())
text = f.lower(jnp.ones((64, 256)), jnp.ones((256, 256)), jnp.ones((8, 1, 3, 3))).compile().as_text()
print("ynn" if "ynn_fusion" in text else "none")
"""


def test_defaults_are_added_and_user_flags_kept() -> None:
    assert with_cpu_defaults("") == f"{YNN}="
    assert with_cpu_defaults("--xla_foo=1") == f"--xla_foo=1 {YNN}="
    assert with_cpu_defaults(f"{YNN}=dot --xla_foo=1") == f"{YNN}=dot --xla_foo=1"
    assert set(CPU_DEFAULTS) == {YNN}


def _probe(mode: str, xla_flags: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.slow
def test_import_pretrain_turns_ynn_fusions_off_unless_the_user_set_them() -> None:
    assert _probe("jax", None) == "ynn"  # XLA's default, which the project changes
    assert _probe("pretrain", None) == "none"
    assert _probe("pretrain", f"{YNN}=dot") == "ynn"


def test_in_effect_in_the_train_step() -> None:
    assert f"{YNN}=" in os.environ["XLA_FLAGS"].split()
    config = pretrain.make_config({"model": "lenet5", "batch_size": 8})
    images = np.zeros((8, 28, 28, 1), np.float32)
    trainer = Trainer(config, images)
    state = trainer.init_state(jax.random.key(0))
    compiled = trainer._train_step.lower(state, images, np.zeros(8, np.int32)).compile()
    text = compiled.as_text()
    assert "convolution" in text
    assert "ynn_fusion" not in text


def test_too_late_is_a_warning() -> None:
    jax.devices()  # the backend has started
    with pytest.warns(RuntimeWarning, match="before `import pretrain`"):
        assert apply_cpu_defaults({}) is False
    assert apply_cpu_defaults({"XLA_FLAGS": f"{YNN}=dot"}) is True  # nothing to add
