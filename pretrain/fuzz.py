"""Fuzz targets of the server's readers of outside bytes (run by :func:`devices.fuzz.fuzz`).

``read_image``: image files as :func:`pretrain.data.read_image` reads a dataset's.
``config_set``: ``--set`` values (``key=value`` lines) through ``parse_overrides`` and
``make_config``. ``config_file``: config files (Python, executed as ``python -m pretrain`` does)
mutated from the committed ones, through ``load_config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devices.fuzz import Target, image_file_runner, seed_images
from pretrain.config import ConfigError, load_config, make_config, parse_overrides
from pretrain.data import DataError, read_image

CONFIGS = Path(__file__).resolve().parent / "configs"
SET_SEEDS = (
    b"epochs=3\nlearning_rate=0.05\nmodel=lenet5",
    b"model_options.hidden=[30, 10]\nbatch_size=64\nmomentum=0.9",
    b"dataset_options.identities=(1, 2)\nweight_decay=5e-4\nplateau_factor=0.1",
    b"task=softmax\ntask_options.scale={'a': 1.5}\nearly_stop_patience=4",
)


def _overrides(data: bytes) -> Any:
    return make_config(parse_overrides(data.decode("utf-8", "replace").splitlines()))


def _config_file(workdir: Path) -> Any:
    def run(data: bytes) -> Any:
        file = workdir / "fuzzed_config.py"
        file.write_bytes(data)
        return load_config(file)

    return run


def targets(workdir: Path) -> dict[str, Target]:
    """The server-side targets, built in ``workdir``."""
    configs = [p.read_bytes() for p in sorted(CONFIGS.glob("*.py")) if p.name != "__init__.py"]
    images = [s for s in seed_images() if not s.startswith(b".npy")]
    return {
        "read_image": Target(images, image_file_runner(workdir, read_image), (DataError,)),
        "config_set": Target(SET_SEEDS, _overrides, (ConfigError,)),
        "config_file": Target(configs, _config_file(workdir), (ConfigError,)),
    }
