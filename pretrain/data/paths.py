"""Where the real datasets live: one setting, ``POCKETFIT_DATA``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pretrain.data.errors import DataNotFoundError

ENV_VAR = "POCKETFIT_DATA"


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Returns the datasets folder: ``root`` if given, else ``$POCKETFIT_DATA``.

    Raises:
      DataNotFoundError: the setting is unset or names no folder.
    """
    if root is None:
        value = os.environ.get(ENV_VAR)
        if not value:
            raise DataNotFoundError(
                f"{ENV_VAR} is not set. Point it at the datasets folder, e.g. "
                f"`export {ENV_VAR}=$(realpath ../shared/datasets)`; see README 'Data'."
            )
        root = value
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(
            f"{ENV_VAR}={path} is not a folder. Point it at the datasets folder."
        )
    return path


def dataset_dir(
    name: str, expected: Sequence[str], root: str | os.PathLike[str] | None = None
) -> Path:
    """Returns ``<root>/<name>``, or raises one message listing every expected file.

    Args:
      name: sub-folder of the datasets root, e.g. ``"mnist"``.
      expected: file names that must be present, for the error message.
      root: override for ``$POCKETFIT_DATA``.
    """
    base = data_root(root) / name
    if not base.is_dir():
        files = ", ".join(expected)
        raise DataNotFoundError(
            f"No '{name}' folder under {ENV_VAR} ({base.parent}). Put these files in "
            f"{base}/: {files}."
        )
    return base
