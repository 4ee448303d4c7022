"""One model and its training task on one mesh: initialise, train an epoch, evaluate."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import numpy as np
from tqdm.auto import tqdm

from pretrain.config import ConfigError, TrainConfig
from pretrain.data import ArrayDataset, eval_batches, steps_per_epoch, train_batches
from pretrain.models import build_model, count_params
from pretrain.train.artifacts import load_model
from pretrain.train.optim import make_optimizer
from pretrain.train.parallel import (
    MAX_IN_FLIGHT,
    batch_sharded,
    check_batch_size,
    data_mesh,
    global_batch,
    replicated,
)
from pretrain.train.steps import TrainState, init_state, make_eval_step, make_train_step
from pretrain.train.tasks import build_task


class EpochStats(NamedTuple):
    """Training figures of one epoch; ``images_per_s`` excludes the first (compiling) step."""

    loss: float
    error: float
    steps: int
    seconds: float
    images_per_s: float
    extra: dict[str, float]  # the means of a task's other step metrics (e.g. a side loss)


class EvalStats(NamedTuple):
    """Mean loss and error (0..1) over every example of a dataset.

    The error is what the task monitors: the error rate for classification, the verification
    EER for embedding tasks (whose loss is then NaN).
    """

    loss: float
    error: float
    examples: int


class Trainer:
    """Builds the model, optimizer and jitted steps of ``config`` on a data-parallel mesh.

    Args:
      config: the run's config (its ``task`` says what the loss is).
      example: one batch of inputs, to initialise parameter shapes.
      num_classes: identities in the training data, for tasks that train a classifier over them
        next to the model (ignored by plain classification, whose model has its own output).
      task: a built task instead of ``config.task`` (e.g. the config's task wrapped in
        :class:`pretrain.compression.EmbeddingDistillation`, whose teacher a config cannot name).
    """

    def __init__(
        self,
        config: TrainConfig,
        example: np.ndarray,
        *,
        num_classes: int = 0,
        task: Any = None,
    ) -> None:
        self.config = config
        self.mesh = data_mesh()
        check_batch_size(config.batch_size, self.mesh)
        check_batch_size(config.eval_batch_size, self.mesh)
        try:
            self.module = build_model(config.model, **config.model_options)
            self.task = task or build_task(config.task, config.task_options, seed=config.seed)
        except ValueError as err:  # unknown model, task or option: a config mistake
            raise ConfigError(str(err)) from None
        self.num_classes = num_classes
        self.tx = make_optimizer(config, self.task)
        self._example = example[:1]
        self._rep = replicated(self.mesh)
        self._bat = batch_sharded(self.mesh)
        self._train_step = make_train_step(self.module.apply, self.tx, self.mesh, self.task)
        self._eval_step = make_eval_step(self.module.apply, self.mesh, self.task)

    @property
    def process(self) -> tuple[int, int]:
        return jax.process_index(), jax.process_count()

    def init_state(self, key: jax.Array, train: ArrayDataset | None = None) -> TrainState:
        """Fresh replicated parameters from ``key`` and a zero optimizer state.

        With ``config.init_from``, the model's parameters come from that saved model instead
        (the task's own parameters, e.g. a classifier over identities, start fresh, or from
        the ``train`` data when the task has an ``init_from_data`` step).
        """
        params = self.fresh_params(key, self.num_classes)
        if self.config.init_from:
            params = self.task.with_model_params(params, self._initial_model(params))
            from_data = getattr(self.task, "init_from_data", None)
            if from_data is not None and train is not None:
                params = from_data(self.module, params, train.images, train.labels)
        return self.replicate(init_state(params, self.tx))

    def fresh_params(self, key: jax.Array, num_classes: int) -> Any:
        """The task's freshly initialised parameters (model and task heads) from ``key``.

        Compiled as one program: run op by op, a model's init dispatches every layer's sampling
        and takes 2-3x as long (12 s against 5 s for a 4-block EmbedNet at 128 px).
        """
        return jax.jit(
            lambda k: self.task.init(self.module, k, self._example, num_classes=num_classes)
        )(key)

    def _initial_model(self, params: Any) -> Any:
        """The parameters of ``config.init_from``, checked against this model's shapes."""
        saved = load_model(self.config.init_from)
        every = self.task.model_params(params)
        new = self.config.init_new
        missing = sorted(set(new) - set(every))
        if missing:
            raise ConfigError(
                f"init_new names {missing}, which {self.config.model!r} with "
                f"{dict(self.config.model_options)} does not have (it has {sorted(every)})."
            )
        fresh = {k: v for k, v in every.items() if k not in new}
        want: Any = jax.tree_util.tree_structure(fresh)
        same_tree = want == jax.tree_util.tree_structure(saved.params)
        shapes_ok = bool(same_tree) and all(
            np.shape(a) == np.shape(b)
            for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(saved.params), strict=True)
        )
        if not shapes_ok:
            raise ConfigError(
                f"init_from {self.config.init_from}: its {saved.info.get('model')!r} parameters "
                f"({count_params(saved.params)}) do not fit {self.config.model!r} with "
                f"{dict(self.config.model_options)} ({count_params(fresh)}"
                + (f" without init_new {list(new)}" if new else "")
                + ")."
            )
        loaded = jax.tree.map(
            lambda a, b: np.asarray(a, dtype=np.asarray(b).dtype), saved.params, fresh
        )
        return {**loaded, **{k: every[k] for k in new}}

    def replicate(self, tree: Any) -> Any:
        """Places a pytree on every device of the mesh."""
        return jax.device_put(tree, self._rep)

    def train_epoch(
        self,
        state: TrainState,
        dataset: ArrayDataset,
        *,
        key: jax.Array,
        epoch: int,
        progress: bool = True,
    ) -> tuple[TrainState, EpochStats]:
        """Runs one shuffled pass over ``dataset``; returns the new state and the epoch's figures."""
        index, count = self.process
        steps = steps_per_epoch(dataset, self.config.batch_size)
        if steps == 0:
            raise ValueError(
                f"{dataset.name}: {len(dataset)} examples make no full batch of "
                f"{self.config.batch_size}."
            )
        bar = tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            unit="step",
            disable=not progress or index != 0,
            leave=False,
            mininterval=0.5,
        )
        metrics = []
        start = first_done = time.perf_counter()
        batches = train_batches(
            dataset,
            self.config.batch_size,
            key=key,
            epoch=epoch,
            process_index=index,
            process_count=count,
        )
        for i, (images, labels) in enumerate(batches):
            x, y = global_batch(images, self._bat), global_batch(labels, self._bat)
            state, m = self._train_step(state, x, y)
            metrics.append(m)
            if i >= MAX_IN_FLIGHT:  # see pretrain.train.parallel: never far ahead of the devices
                jax.block_until_ready(metrics[i - MAX_IN_FLIGHT])
            if i == 0:
                jax.block_until_ready(state)
                first_done = time.perf_counter()
            if i % 100 == 99:
                bar.set_postfix(loss=f"{float(m['loss']):.4f}", refresh=False)
            bar.update()
        jax.block_until_ready(state)
        end = time.perf_counter()
        bar.close()
        host = jax.device_get(metrics)
        loss = float(np.mean([h["loss"] for h in host]))
        errors = float(np.sum([h["errors"] for h in host]))
        timed = (steps - 1) * self.config.batch_size
        rate = timed / (end - first_done) if steps > 1 else float("nan")
        extra = {
            k: float(np.mean([h[k] for h in host])) for k in host[0] if k not in ("loss", "errors")
        }
        stats = EpochStats(
            loss, errors / (steps * self.config.batch_size), steps, end - start, rate, extra
        )
        return state, stats

    def evaluate(self, params: Any, dataset: ArrayDataset) -> EvalStats:
        """Loss and error of ``params`` on every example of ``dataset``."""
        index, count = self.process
        outputs = []
        for images, labels, mask in eval_batches(
            dataset, self.config.eval_batch_size, process_index=index, process_count=count
        ):
            out = self._eval_step(
                params,
                global_batch(images, self._bat),
                global_batch(labels, self._bat),
                global_batch(mask, self._bat),
            )
            outputs.append(jax.device_get(out))
        return EvalStats(*self.task.eval_result(outputs))
