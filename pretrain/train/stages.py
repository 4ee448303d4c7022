"""Staged training: each stage is a :func:`fit` run that starts from the previous stage's model.

``workdir/<stage>/`` holds each stage's checkpoints, metrics and model exactly as a single run's
workdir does; ``workdir/model/`` is the last stage's model (with every stage's summary and the
evaluation in its ``model.json``), and ``workdir/evaluation.json`` the evaluation suite's report.
``resume=True`` skips the stages whose model is already written and resumes the one in progress.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax

from pretrain.data.paths import data_root
from pretrain.staged_config import StagedConfig
from pretrain.train.artifacts import load_model, save_model
from pretrain.train.datasets import Splits
from pretrain.train.loop import _check_resumable, fit

log = logging.getLogger("pocketfit.pretrain")


class StagedResult(NamedTuple):
    """What a staged run produced.

    Attributes:
      stages: per stage, the summary kept in the final ``model.json`` (steps, epochs, errors,
        seconds).
      model_dir: the final model (the last stage's parameters).
      evaluation: the evaluation suite's report, or None when the config names no suite.
    """

    stages: dict[str, dict[str, Any]]
    model_dir: Path
    evaluation: dict[str, Any] | None


def fit_stages(
    run: StagedConfig,
    workdir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    splits: Mapping[str, Splits] | None = None,
    evaluate: bool = True,
) -> StagedResult:
    """Trains the stages of ``run`` in order, then evaluates the final model.

    Args:
      run: the stages; a stage without ``init_from`` starts from the previous stage's model.
      workdir: one sub-folder per stage, plus ``model/`` and ``evaluation.json``.
      resume: skip finished stages and resume the interrupted one.
      progress: progress bars.
      splits: preloaded data per stage name (others are loaded from their config).
      evaluate: run the config's evaluation suite (False: none, and ``evaluation`` is None; for
        runs a bench decides, which reports the suite's sets itself).

    Returns:
      A :class:`StagedResult`.

    Raises:
      DataNotFoundError: the config names an evaluation suite (they all read real datasets)
        and the datasets folder is not there: said before training, not after it.
    """
    suite = run.evaluation if evaluate else ""
    if suite:
        data_root(run.evaluation_options.get("root") or None)
    workdir = Path(workdir)
    primary = jax.process_index() == 0
    previous: Path | None = None
    summaries: dict[str, dict[str, Any]] = {}
    config = run.stages[0][1]
    for name, config in run.stages:
        if previous is not None and not config.init_from:
            config = dataclasses.replace(config, init_from=str(previous))
        stage_dir = workdir / name
        model_dir = stage_dir / "model"
        if resume and (model_dir / "model.json").is_file():
            info = load_model(model_dir).info["info"]
            _check_resumable(info.get("config", {}), config, stage_dir)
            log.info("stage %s finished earlier; continuing from %s", name, model_dir)
            seconds = info.get("wall_s")
        else:
            log.info("stage %s: task %s on %s", name, config.task, config.dataset)
            result = fit(
                config,
                stage_dir,
                resume=resume,
                progress=progress,
                splits=(splits or {}).get(name),
            )
            info = load_model(result.model_dir).info["info"]
            seconds = result.wall_s
        summaries[name] = {
            "task": config.task,
            "dataset": config.dataset,
            "epochs": info.get("epochs"),
            "steps": info.get("steps"),
            "error_kind": info.get("error_kind", "error"),
            "val_error_pct": info.get("val_error_pct"),
            "test_error_pct": info.get("test_error_pct"),
            "seconds": seconds,
        }
        previous = model_dir
    assert previous is not None
    final = load_model(previous)
    evaluation = None
    if suite:
        from pretrain.embedding import run_suite  # registers the suites; imports this package

        evaluation = run_suite(
            suite, final.module, final.params, config=config, **run.evaluation_options
        )
        if primary:
            text = json.dumps(evaluation, indent=2, default=float) + "\n"
            (workdir / "evaluation.json").write_text(text)
    out = workdir / "model"
    if primary:
        save_model(
            out,
            model=final.info["model"],
            model_options=final.info["model_options"],
            params=final.params,
            info={"staged_config": run.to_dict(), "stages": summaries, "evaluation": evaluation},
        )
    return StagedResult(summaries, out, evaluation)
