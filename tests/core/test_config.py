import dataclasses
import json
from typing import ClassVar

import pytest

from core.config import TrainConfig, build, parse, save
from core.errors import UsageError


@dataclasses.dataclass
class DemoConfig(TrainConfig):
    PRESETS: ClassVar[dict] = {"default": {}, "fast": {"lr": 0.5, "max_steps": 7}}
    recipe: str = "default"
    width: int = 8
    """Hidden width."""


def test_flags_are_kebab_case_and_typed():
    cfg = parse(DemoConfig, ["--max-steps", "3", "--data-dir", "/x", "--amp", "--width", "4"], "p")
    assert (cfg.max_steps, cfg.data_dir, cfg.amp, cfg.width) == (3, "/x", True, 4)


def test_round_trip_through_config_file(tmp_path):
    cfg = parse(DemoConfig, ["--lr", "0.25", "--schedule", "cosine"], "p")
    save(cfg, tmp_path / "config.json")
    again = parse(DemoConfig, ["--config", str(tmp_path / "config.json")], "p")
    assert dataclasses.replace(again, config=None) == cfg


def test_precedence_defaults_recipe_file_flags(tmp_path):
    (tmp_path / "c.yaml").write_text("max-steps: 11\n")
    cfg = parse(
        DemoConfig, ["--recipe", "fast", "--config", str(tmp_path / "c.yaml"), "--seed", "3"], "p"
    )
    assert (cfg.lr, cfg.max_steps, cfg.seed) == (0.5, 11, 3)
    assert build(DemoConfig, recipe="fast", seed=2).lr == 0.5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--no-such-flag"], "Unrecognized options: --no-such-flag"),
        (["--max-steps", "many"], "--max-steps"),
        (["--recipe", "slow"], "unknown recipe 'slow'"),
        (["--config", "/does/not/exist.yaml"], "does not exist"),
    ],
)
def test_usage_errors_are_one_line(argv, message):
    with pytest.raises(UsageError) as info:
        parse(DemoConfig, argv, "p")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_config_file_with_unknown_key(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"learning_rate": 1}))
    with pytest.raises(UsageError, match="unknown config key"):
        parse(DemoConfig, ["--config", str(tmp_path / "c.json")], "p")


def test_help_lists_every_field(capsys):
    with pytest.raises(SystemExit) as info:
        parse(DemoConfig, ["--help"], "showcase demo train")
    assert info.value.code == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(DemoConfig):
        assert "--" + field.name.replace("_", "-") in text
    assert "Hidden width." in text
