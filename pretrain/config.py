"""Training configs: Python files whose ``get_config()`` returns a dict of overrides.

A config file's docstring gives the exact command, the expected result and how long it takes.
Keys are checked against :class:`TrainConfig`; an unknown key is an error that lists the valid
ones. Command-line ``--set key=value`` overrides go through the same check.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import os
import traceback
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, get_type_hints


class ConfigError(ValueError):
    """A config file or override is invalid; the message says which key and why."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a supervised pretraining run depends on.

    Attributes:
      model: registered model name (see ``pretrain.models.model_names()``).
      model_options: keyword options of the model (e.g. ``init_std``, ``bias_init`` per layer).
      dataset: registered dataset name (see ``pretrain.train.datasets``).
      train_size: use only the first ``train_size`` training examples (0 = all); for tiny runs.
      val_size: training examples held out for plateau detection and early stopping.
      batch_size: global batch size, split over all devices of all processes.
      eval_batch_size: global batch size for evaluation.
      epochs: maximum number of epochs.
      learning_rate: base SGD learning rate.
      momentum: SGD momentum.
      nesterov: Nesterov momentum.
      weight_decay: L2 coefficient added to the gradient (the update includes it).
      decay_biases: whether biases decay too (weights only by default).
      plateau_factor: learning rate multiplier when validation error stops improving.
      plateau_patience: epochs without improvement before the learning rate is cut.
      plateau_rtol: relative decrease of the validation error that counts as an improvement.
      min_lr_scale: stop once the learning rate has been cut below this fraction of the base.
      early_stop_patience: stop after this many epochs without a new best validation error.
      seed: the one seed; keys for init, data order and the validation split derive from it.
      keep_checkpoints: how many epoch checkpoints to keep in the workdir.
      task: registered training task (see ``pretrain.train.task_names()``): what the loss is and
        how held-out data is scored. ``"classification"`` (cross-entropy, error rate) is the
        default; the embedding tasks are ``"contrastive"`` and ``"margin_softmax"``.
      task_options: keyword options of the task (e.g. ``margin``, ``temperature``, ``augment``).
      dataset_options: keyword options of the dataset loader (e.g. how many identities).
      init_from: a model directory written by ``save_model`` whose parameters initialise the
        model ("" = random initialisation); a later stage starts from an earlier one this way.
      init_new: top-level model parameters the ``init_from`` model lacks (a part grown on a
        trained model, e.g. EmbedNet's ``ridge`` and ``ridge_gate``): they start as a fresh
        run's; every other parameter must be the saved model's, shape for shape.
      init_new_lr_scale: the ``init_new`` parameters' rate as a multiple of ``learning_rate``
        (1: the same rate), so a grown part can learn at a fresh run's rate while the trained
        rest continues at a continuation's.
    """

    model: str = "lenet300"
    model_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "mnist"
    train_size: int = 0
    val_size: int = 5000
    batch_size: int = 64
    eval_batch_size: int = 1000
    epochs: int = 40
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    decay_biases: bool = False
    plateau_factor: float = 0.1
    plateau_patience: int = 3
    plateau_rtol: float = 1e-4
    min_lr_scale: float = 1e-3
    early_stop_patience: int = 8
    seed: int = 0
    keep_checkpoints: int = 2
    task: str = "classification"
    task_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dataset_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    init_from: str = ""
    init_new: tuple[str, ...] = ()
    init_new_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.init_new and not self.init_from:
            raise ConfigError("init_new names parameters init_from lacks; set init_from too.")
        if not self.init_new_lr_scale > 0:
            raise ConfigError(f"init_new_lr_scale must be positive, got {self.init_new_lr_scale}.")
        if self.init_new_lr_scale != 1.0 and not self.init_new:
            raise ConfigError("init_new_lr_scale scales the init_new parameters; name them.")
        positive = ("batch_size", "eval_batch_size", "epochs", "learning_rate", "keep_checkpoints")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}.")
        for name in ("train_size", "val_size", "weight_decay", "plateau_patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}.")
        if not self.plateau_rtol > 0:
            raise ConfigError(f"plateau_rtol must be positive, got {self.plateau_rtol!r}.")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}.")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ConfigError(f"plateau_factor must be in (0, 1), got {self.plateau_factor!r}.")
        if not 0.0 < self.min_lr_scale <= 1.0:
            raise ConfigError(f"min_lr_scale must be in (0, 1], got {self.min_lr_scale!r}.")
        if self.early_stop_patience < 1:
            raise ConfigError(f"early_stop_patience must be >= 1, got {self.early_stop_patience}.")
        for name in NESTED:
            if not isinstance(getattr(self, name), Mapping):
                raise ConfigError(f"{name} must be a dict, got {type(getattr(self, name))}.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["init_new"] = list(self.init_new)
        for name in NESTED:
            out[name] = _jsonable(dict(getattr(self, name)))
        return out


# Config keys holding a dict of options; ``--set <key>.<option>=value`` sets one option.
NESTED = ("model_options", "task_options", "dataset_options")


def _jsonable(value: Any) -> Any:
    """Tuples become lists and mappings dicts, at any depth (JSON has no tuples)."""
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def field_names() -> list[str]:
    """The valid config keys."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _unknown_key(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, field_names(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"{where}: unknown config key {key!r}.{hint} Valid keys: {', '.join(field_names())}."
    )


def _coerce(key: str, value: Any, where: str) -> Any:
    """Checks ``value`` against the field's type; ints are accepted where floats are expected."""
    expected = get_type_hints(TrainConfig)[key]
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif expected is str:
        ok = isinstance(value, str)
    elif expected == tuple[str, ...]:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, Mapping)
    if not ok:
        name = getattr(expected, "__name__", str(expected))
        raise ConfigError(f"{where}: {key} must be {name}, got {value!r}.")
    return value


def make_config(values: Mapping[str, Any], *, where: str = "config") -> TrainConfig:
    """Builds a validated :class:`TrainConfig` from a dict of overrides on the defaults."""
    checked = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: config keys are strings, got {key!r}.")
        if key not in field_names():
            raise _unknown_key(key, where)
        checked[key] = _coerce(key, value, where)
    try:
        return TrainConfig(**checked)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        # A bare word is a string (model=lenet5); so is what is no literal ({[]: 1}, deep nests).
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parses ``key=value`` strings (values as Python literals); ``model_options.k=v`` nests."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}.")
        value = _parse_value(text)
        head, dot, sub = key.partition(".")
        if dot:
            if head not in NESTED:
                raise ConfigError(
                    f"--set {item!r}: only model_options.<name>, task_options.<name> or "
                    f"dataset_options.<name> may be nested."
                )
            out.setdefault(head, {})[sub] = value
        else:
            out[key] = value
    return out


def load_module(path: str | os.PathLike[str]) -> types.ModuleType:
    """Executes a config file as a module and returns it."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist.")
    spec = importlib.util.spec_from_file_location(f"pocketfit_config_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{file} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # a config file is a program: any error of its own is reported
        raise ConfigError(f"{file} fails to run: {_where(err, file)}") from None
    return module


def _where(err: BaseException, file: Path) -> str:
    """``Type: message (line n)`` of an error raised while running config ``file``."""
    line = getattr(err, "lineno", None)
    for frame in traceback.extract_tb(err.__traceback__):
        if Path(frame.filename) == file:
            line = frame.lineno
    return f"{type(err).__name__}: {err}"[:300] + (f" (line {line})" if line else "")


def load_config(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> TrainConfig:
    """Loads a config file (its ``get_config()`` dict) and applies ``key=value`` overrides.

    Example:
      >>> cfg = load_config("pretrain/configs/lenet300.py", ["epochs=1"])
    """
    module = load_module(path)
    get = getattr(module, "get_config", None)
    if not callable(get):
        raise ConfigError(f"{path} defines no get_config() function.")
    try:
        values = dict(get())
    except Exception as err:  # as above: the config's own code
        raise ConfigError(f"{path}: get_config() fails: {_where(err, Path(path))}") from None
    if STAGES_KEY in values:
        raise ConfigError(
            f"{path} is a staged config (it has {STAGES_KEY!r}); load it with load_run()."
        )
    return make_config(merge_overrides(values, parse_overrides(overrides)), where=str(path))


def merge_overrides(values: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` updated by ``extra``; option dicts are merged key by key, not replaced."""
    out = dict(values)
    for key, value in extra.items():
        if key in NESTED and isinstance(value, Mapping):
            out[key] = {**out.get(key, {}), **value}
        else:
            out[key] = value
    return out


# A staged config's get_config() has this key: {stage name: {TrainConfig keys}} in order.
STAGES_KEY = "stages"
