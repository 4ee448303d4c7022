"""Staged configs: several training stages run in order, each from the previous stage's model.

A staged config file's ``get_config()`` returns::

    {"stages": {"contrastive": {...TrainConfig keys...}, "metric": {...}},
     "shared": {...keys every stage starts from...},
     "evaluation": "face", "evaluation_options": {...}}

Every stage is a :class:`~pretrain.config.TrainConfig`, checked key by key like a single config.
``--set`` overrides: ``key=value`` sets a key in every stage, ``<stage>.key=value`` in one stage
(``<stage>.task_options.margin=0.3`` nests), ``evaluation=...`` the suite. An unknown key is an
error that lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any

from pretrain.config import (
    NESTED,
    STAGES_KEY,
    ConfigError,
    TrainConfig,
    _jsonable,
    _parse_value,
    field_names,
    load_module,
    make_config,
    merge_overrides,
    parse_overrides,
)

TOP_KEYS = (STAGES_KEY, "shared", "evaluation", "evaluation_options")


@dataclasses.dataclass(frozen=True)
class StagedConfig:
    """Training stages run in order; stage ``k`` starts from the model stage ``k - 1`` wrote.

    Attributes:
      stages: ``(name, config)`` pairs in training order.
      evaluation: registered evaluation suite run on the final model ("" = none); see
        ``pretrain.embedding.suite_names()``.
      evaluation_options: keyword options of the suite.
    """

    stages: tuple[tuple[str, TrainConfig], ...]
    evaluation: str = ""
    evaluation_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("a staged config needs at least one stage.")
        names = [name for name, _ in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique, got {names}.")
        for name in names:
            if not name.isidentifier():
                raise ConfigError(f"stage name {name!r} must be an identifier (no dots).")

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.stages]

    def stage(self, name: str) -> TrainConfig:
        """The config of stage ``name``."""
        for stage_name, config in self.stages:
            if stage_name == name:
                return config
        raise KeyError(f"no stage {name!r}; stages: {', '.join(self.names)}.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            STAGES_KEY: {name: config.to_dict() for name, config in self.stages},
            "evaluation": self.evaluation,
            "evaluation_options": _jsonable(dict(self.evaluation_options)),
        }


def make_staged(values: Mapping[str, Any], *, where: str = "config") -> StagedConfig:
    """Builds a validated :class:`StagedConfig` from a ``get_config()``-style dict."""
    unknown = sorted(set(values) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown staged-config key(s) {', '.join(map(repr, unknown))}. Valid keys: "
            f"{', '.join(TOP_KEYS)}; stage keys: {', '.join(field_names())}."
        )
    stages = values.get(STAGES_KEY)
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError(f"{where}: {STAGES_KEY!r} must be a non-empty dict of stage configs.")
    shared = values.get("shared", {})
    built = []
    for name, stage in stages.items():
        if not isinstance(stage, Mapping):
            raise ConfigError(f"{where}: stage {name!r} must be a dict, got {type(stage)}.")
        merged = merge_overrides(shared, stage)
        built.append((str(name), make_config(merged, where=f"{where}: stage {name!r}")))
    evaluation = values.get("evaluation", "")
    options = values.get("evaluation_options", {})
    if not isinstance(evaluation, str) or not isinstance(options, Mapping):
        raise ConfigError(f"{where}: evaluation must be a name and evaluation_options a dict.")
    return StagedConfig(tuple(built), evaluation, dict(options))


def _set_path(target: dict[str, Any], path: list[str], value: Any, item: str) -> None:
    """Sets ``target[path[0]]...[path[-1]] = value``; only option dicts may be nested."""
    key = path[0]
    if len(path) == 1:
        target[key] = value
        return
    if key not in (*NESTED, "evaluation_options") or len(path) != 2:
        raise ConfigError(
            f"--set {item!r}: only {', '.join(NESTED)} and evaluation_options may be nested "
            f"(<stage>.<key>.<option>=value)."
        )
    nested = dict(target.get(key, {}))
    nested[path[1]] = value
    target[key] = nested


def apply_staged_overrides(values: Mapping[str, Any], items: Iterable[str]) -> dict[str, Any]:
    """Applies ``--set`` items to a staged ``get_config()`` dict (see the module docstring)."""
    out = dict(values)
    stages = {name: dict(stage) for name, stage in dict(out.get(STAGES_KEY, {})).items()}
    shared = dict(out.get("shared", {}))
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}.")
        value = _parse_value(text)
        path = key.split(".")
        if path[0] in stages:
            if len(path) < 2:
                raise ConfigError(f"--set {item!r}: say which key of stage {path[0]!r}.")
            if path[1] not in field_names():
                raise ConfigError(
                    f"--set {item!r}: stage configs have no key {path[1]!r}; valid: "
                    f"{', '.join(field_names())}."
                )
            _set_path(stages[path[0]], path[1:], value, item)
        elif path[0] in ("evaluation", "evaluation_options"):
            _set_path(out, path, value, item)
        elif path[0] in field_names():
            # A shared key overrides every stage, including keys a stage set itself.
            _set_path(shared, path, value, item)
            for stage in stages.values():
                if path[0] in stage or len(path) > 1:
                    _set_path(stage, path, value, item)
        else:
            raise ConfigError(
                f"--set {item!r}: unknown key {path[0]!r}. Valid: a stage name "
                f"({', '.join(stages)}), evaluation, evaluation_options, or a stage key "
                f"({', '.join(field_names())})."
            )
    out[STAGES_KEY] = stages
    out["shared"] = shared
    return out


def load_run(
    path: str | os.PathLike[str], overrides: Iterable[str] = ()
) -> TrainConfig | StagedConfig:
    """Loads a config file: a :class:`TrainConfig` or, if it has stages, a :class:`StagedConfig`.

    Example:
      >>> run = load_run("pretrain/configs/embed_face.py", ["metric.epochs=2"])
    """
    module = load_module(path)
    get = getattr(module, "get_config", None)
    if not callable(get):
        raise ConfigError(f"{path} defines no get_config() function.")
    values = dict(get())
    if STAGES_KEY not in values:
        return make_config(merge_overrides(values, parse_overrides(overrides)), where=str(path))
    return make_staged(apply_staged_overrides(values, overrides), where=str(path))
