"""Epoch checkpoints with Orbax: the whole run state plus JSON metadata, for exact resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or does not match the run resuming from it."""


class Checkpointer:
    """Saves and restores ``(state pytree, metadata dict)`` pairs keyed by epoch.

    Args:
      directory: where checkpoints live (created if missing).
      keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest(self) -> int | None:
        """The newest saved epoch, or None."""
        return self._manager.latest_step()

    def epochs(self) -> list[int]:
        """The saved epochs, oldest first."""
        return sorted(self._manager.all_steps())

    def save(self, epoch: int, state: Any, meta: dict[str, Any]) -> None:
        """Writes the checkpoint of ``epoch`` (atomically: Orbax renames a finished temp dir)."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._manager.save(epoch, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, epoch: int, target: Any) -> tuple[Any, dict[str, Any]]:
        """Restores ``epoch`` into the structure, dtypes and shardings of ``target``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        )
        try:
            restored = self._manager.restore(epoch, args=args)
        except (ValueError, KeyError, FileNotFoundError) as err:
            raise CheckpointError(
                f"checkpoint {epoch} in {self.directory} does not match this run's state: {err}"
            ) from err
        return restored.state, dict(restored.meta)

    def restore_saved(self, epoch: int) -> tuple[Any, dict[str, Any]]:
        """Restores ``epoch`` as saved (nested dicts of host arrays), without a run to match:
        for reading a checkpoint outside the run that wrote it."""
        args = ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore())
        try:
            restored = self._manager.restore(epoch, args=args)
        except (ValueError, KeyError, FileNotFoundError) as err:
            raise CheckpointError(f"checkpoint {epoch} in {self.directory}: {err}") from err
        return restored.state, dict(restored.meta)

    def close(self) -> None:
        self._manager.close()
