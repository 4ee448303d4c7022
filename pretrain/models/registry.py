"""Models are chosen by name through one registry."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any, TypeVar

import flax.linen as nn

M = TypeVar("M", bound=type[nn.Module])

_MODELS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[M], M]:
    """Class decorator adding a Flax module to the registry under ``name``."""

    def add(cls: M) -> M:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered ({_MODELS[name].__name__}).")
        _MODELS[name] = cls
        return cls

    return add


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def _options_of(cls: type[nn.Module]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")]


def build_model(name: str, **options: Any) -> nn.Module:
    """Builds the registered model ``name`` with ``options`` (its dataclass fields).

    Raises:
      ValueError: unknown model or option; the message lists the valid ones.
    """
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(model_names())}.{hint}")
    cls = _MODELS[name]
    valid = _options_of(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; valid: {', '.join(valid)}."
        )
    # Sequences from JSON/CLI arrive as lists; modules hold tuples so they stay hashable.
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return cls(**options)
