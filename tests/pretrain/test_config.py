"""Config files, validation and --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from pretrain.config import ConfigError, TrainConfig, load_config, make_config, parse_overrides

CONFIGS = Path(__file__).parents[2] / "pretrain" / "configs"


@pytest.mark.parametrize("name", ["lenet300", "lenet5"])
def test_shipped_configs_load_and_document_themselves(name: str) -> None:
    path = CONFIGS / f"{name}.py"
    config = load_config(path)
    assert config.model == name
    doc = path.read_text().split('"""')[1]
    assert f"python -m pretrain --config pretrain/configs/{name}.py" in doc
    assert "Expected" in doc and "Time here" in doc


def test_unknown_key_lists_valid_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("def get_config():\n    return {'learning_rat': 0.1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "unknown config key 'learning_rat'" in message
    assert "Did you mean 'learning_rate'" in message
    assert "batch_size" in message and "weight_decay" in message


def test_overrides_are_typed_and_nested() -> None:
    config = load_config(
        CONFIGS / "lenet300.py",
        ["epochs=3", "learning_rate=1", "model_options.bias_init=(1, 0, 0)", "model=lenet300"],
    )
    assert config.epochs == 3
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.model_options["bias_init"] == (1, 0, 0)
    assert config.model_options["init_std"] == (0.05, 0.08, 0.14)  # kept from the file


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": "ten"}, "epochs must be int"),
        ({"epochs": 0}, "epochs must be positive"),
        ({"momentum": 1.5}, "momentum must be in"),
        ({"plateau_factor": 1.0}, "plateau_factor must be in"),
        ({"nesterov": 1}, "nesterov must be bool"),
    ],
)
def test_invalid_values(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(values)


def test_bad_override_syntax_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ConfigError, match="only model_options"):
        parse_overrides(["optimizer.lr=1"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.py")
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="no get_config"):
        load_config(tmp_path / "empty.py")


def test_to_dict_round_trips() -> None:
    config = make_config({"model_options": {"init_std": (0.1, 0.2, 0.3)}})
    assert make_config(config.to_dict()).to_dict() == config.to_dict()
    assert config.to_dict()["model_options"] == {"init_std": [0.1, 0.2, 0.3]}
    assert TrainConfig().to_dict()["model"] == "lenet300"
