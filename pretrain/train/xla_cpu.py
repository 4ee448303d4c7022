"""The XLA:CPU settings pretraining runs with, set before JAX starts its backend.

XLA reads ``XLA_FLAGS`` once, when JAX creates its first backend, so ``import pretrain`` adds these
defaults to the environment (:func:`apply_cpu_defaults`); a flag the user already put in
``XLA_FLAGS`` is left as the user set it.

``--xla_cpu_experimental_ynn_fusion_type=`` (empty: no YNNPACK fusions). XLA 0.10 hands matrix
products, convolutions and elementwise chains to YNNPACK by default; those fusions run
synchronously on the calling thread and were the slower choice on every model measured here
(train steps compiled both ways in one process, alternating rounds, 2026-12-01: without them
LeNet-5 1.19x with JAX's own pooling, 1.46x with :func:`pretrain.models.lenet_ops.max_pool_2x2`;
LeNet-300-100 1.12x).
"""

from __future__ import annotations

import os
import shlex
import warnings
from collections.abc import MutableMapping

CPU_DEFAULTS: dict[str, str] = {"--xla_cpu_experimental_ynn_fusion_type": ""}


def _flag_names(xla_flags: str) -> set[str]:
    return {token.split("=", 1)[0] for token in shlex.split(xla_flags)}


def with_cpu_defaults(xla_flags: str) -> str:
    """``xla_flags`` plus every default in :data:`CPU_DEFAULTS` whose flag it does not set.

    >>> with_cpu_defaults("--xla_force_host_platform_device_count=2")
    '--xla_force_host_platform_device_count=2 --xla_cpu_experimental_ynn_fusion_type='
    """
    present = _flag_names(xla_flags)
    added = [f"{flag}={value}" for flag, value in CPU_DEFAULTS.items() if flag not in present]
    return " ".join([xla_flags.strip(), *added]).strip()


def apply_cpu_defaults(environ: MutableMapping[str, str] | None = None) -> bool:
    """Puts :data:`CPU_DEFAULTS` into ``XLA_FLAGS`` unless JAX's backend already started.

    Returns:
      True if the flags in ``XLA_FLAGS`` will be the ones XLA reads (JAX has no backend yet);
      False, with a warning, if JAX started its backend before ``import pretrain``.
    """
    from jax._src import xla_bridge  # no public way to ask whether the backend started

    environ = os.environ if environ is None else environ
    wanted = with_cpu_defaults(environ.get("XLA_FLAGS", ""))
    if wanted == environ.get("XLA_FLAGS", "").strip():
        return True
    if xla_bridge.backends_are_initialized():
        warnings.warn(
            f"JAX started its backend before `import pretrain`, so pretraining runs without "
            f"{' '.join(f'{k}={v}' for k, v in CPU_DEFAULTS.items())} (up to 1.5x slower on "
            f"CPU); import pretrain first or put it in XLA_FLAGS.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    environ["XLA_FLAGS"] = wanted
    return True
