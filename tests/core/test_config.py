import dataclasses
import json
import re
from typing import ClassVar

import pytest

from core.config import TrainConfig, save
from core.errors import UsageError
from core.parse import build, coerce, parse


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


@dataclasses.dataclass
class CheckedConfig(TrainConfig):
    """A preset whose fields are valid only under its own name (as recsys's bpr sets --lr, which
    its default method, Gibbs sampling, refuses)."""

    PRESET_FIELD: ClassVar[str] = "method"
    PRESETS: ClassVar[dict] = {"plain": {}, "tuned": {"lr": 0.05}}
    method: str = "plain"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method == "plain" and self.lr != 1e-3:
            raise UsageError("--lr is not supported by --method plain")


def test_a_preset_is_checked_with_its_own_name():
    assert parse(CheckedConfig, ["--method", "tuned"], "p").lr == 0.05
    assert parse(CheckedConfig, ["--method", "tuned", "--max-steps", "5"], "p").method == "tuned"
    with pytest.raises(UsageError, match="not supported by --method plain"):
        parse(CheckedConfig, ["--lr", "0.1"], "p")


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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--batch-size", "0"], "--batch-size must be > 0, got 0"),
        (["--batch-size", "-4"], "--batch-size must be > 0"),
        (["--grad-accum", "0"], "--grad-accum must be > 0"),
        (["--log-every", "0"], "--log-every must be > 0"),
        (["--eval-every", "-1"], "--eval-every must be >= 0"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--lr", "-1e-3"], "--lr must be > 0"),
        (["--max-steps", "0"], "--max-steps must be > 0"),
        (["--ema", "1.5"], "--ema is a decay in [0, 1)"),
    ],
)
def test_out_of_range_flags_are_one_line_usage_errors(argv, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parse(DemoConfig, argv, "p")


def test_config_file_values_are_typed_by_the_dataclass(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nmax_steps: '12'\nwidth: 4.0\nseed: 2\n")
    cfg = parse(DemoConfig, ["--config", str(tmp_path / "c.yaml")], "p")
    assert (cfg.lr, cfg.max_steps, cfg.width) == (0.001, 12, 4)
    assert isinstance(cfg.lr, float) and isinstance(cfg.max_steps, int)


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr: fast\n", "config key lr: expected a number, got 'fast'"),
        ("width: 2.5\n", "config key width: expected a whole number"),
        ("amp: 'yes'\n", "config key amp: expected true or false"),
        ("schedule: exponential\n", "config key schedule: 'exponential' is not one of"),
        ("batch_size: 0\n", "--batch-size must be > 0"),
    ],
)
def test_bad_config_file_values_name_the_key(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)):
        parse(DemoConfig, ["--config", str(tmp_path / "c.yaml")], "p")


def test_coerce_handles_tuples_and_optionals():
    from typing import Literal

    assert coerce("k", [16, 48, 96], tuple[int, int, int]) == (16, 48, 96)
    assert coerce("k", [1, 2], tuple[int, ...]) == (1, 2)
    assert coerce("k", None, str | None) is None and coerce("k", "x", str | None) == "x"
    assert coerce("k", "a", Literal["a", "b"]) == "a"
    for value in ("4", 4.0, 4):  # YAML's string or float for an integer choice: the choice itself
        assert type(coerce("k", value, Literal[2, 4])) is int
    with pytest.raises(UsageError, match="'3' is not one of 2, 4"):
        coerce("k", "3", Literal[2, 4])
    with pytest.raises(UsageError, match="expected 3 values"):
        coerce("k", [1, 2], tuple[int, int, int])


@dataclasses.dataclass
class SamplerConfig(TrainConfig):
    DEMO: ClassVar[str] = "demo sampler"
    UNUSED: ClassVar[tuple[str, ...]] = ("amp", "grad_accum", "schedule")


@pytest.mark.parametrize("argv", [["--amp"], ["--grad-accum", "2"], ["--schedule", "cosine"]])
def test_a_shared_flag_a_demo_ignores_is_refused(argv):
    with pytest.raises(UsageError, match=f"{argv[0]} is not supported by demo sampler"):
        parse(SamplerConfig, argv, "p")
    assert parse(SamplerConfig, ["--lr", "0.1"], "p").lr == 0.1


@dataclasses.dataclass
class ChangedConfig(DemoConfig):
    DEFAULTS: ClassVar[dict] = {"max_steps": 40, "schedule": "cosine"}
    depth: int = 2
    """Layers."""


def test_changed_defaults_keep_the_fields_place_type_and_help(capsys):
    names = [f.name for f in dataclasses.fields(ChangedConfig)]
    assert names == [f.name for f in dataclasses.fields(DemoConfig)] + ["depth"]
    cfg = ChangedConfig()
    assert (cfg.max_steps, cfg.schedule, cfg.lr, cfg.width) == (40, "cosine", 1e-3, 8)
    assert TrainConfig().max_steps == 1000 and DemoConfig().schedule == "constant"
    with pytest.raises(SystemExit):
        parse(ChangedConfig, ["--help"], "p")
    text = " ".join(capsys.readouterr().out.split())
    assert "Optimizer steps to train for. (default: 40)" in text
    with pytest.raises(UsageError, match="--schedule"):
        parse(ChangedConfig, ["--schedule", "cubic"], "p")  # still Literal[...]


def test_a_changed_default_must_name_an_inherited_field():
    with pytest.raises(TypeError, match="max_stepz"):

        @dataclasses.dataclass
        class Typo(DemoConfig):
            DEFAULTS: ClassVar[dict] = {"max_stepz": 40}
