"""Typed config dataclasses become the CLI (through tyro); files and recipes set defaults.

Precedence, lowest first: the dataclass defaults, a preset chosen by one field (`--recipe`,
or `--env` for RL), a config file (`--config run.yaml`), then flags on the command line.
"""

import contextlib
import dataclasses
import io
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import tyro
import yaml

from core.errors import UsageError
from core.files import write_text

C = TypeVar("C")


class ChangesDefaults:
    """A config subclass changes inherited defaults in one place, without restating a field:
    `DEFAULTS = {"max_steps": 1300, "schedule": "cosine"}` become the subclass's field defaults,
    with the parent's type and `--help` line."""

    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        changed = cls.__dict__.get("DEFAULTS", {})
        inherited = typing.get_type_hints(cls.__mro__[1])
        own = cls.__dict__.get("__annotations__", {})
        wrong = sorted(k for k in changed if k not in inherited or k in own)
        if wrong:
            raise TypeError(
                f"{cls.__name__}.DEFAULTS: {', '.join(wrong)} not inherited or restated"
            )
        cls.__annotations__ = {**own, **{k: inherited[k] for k in changed}}
        for name, value in changed.items():
            setattr(cls, name, value)


@dataclasses.dataclass
class TrainConfig(ChangesDefaults):
    """Fields every training demo shares; domains subclass it and change defaults (`DEFAULTS`)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    PRESET_FIELD: ClassVar[str] = "recipe"
    PRESETS_OPEN: ClassVar[bool] = False
    """True: a value of PRESET_FIELD without a preset keeps the plain defaults (else: an error)."""
    DEMO: ClassVar[str] = "this demo"
    """How messages name the demo, e.g. `rl dqn`."""
    UNUSED: ClassVar[tuple[str, ...]] = ()
    """Shared fields this demo does not honour: setting one is refused, never silently ignored."""
    RESUMABLE: ClassVar[tuple[str, ...]] = (
        "out_dir", "data_dir", "config", "device", "max_steps", "max_seconds", "resume", "log_every",
        "ckpt_every", "eval_every", "patience", "tensorboard", "compile",
    )  # fmt: skip
    """Fields a resumed run may change; any other change (seed, batch size, model shape) is refused."""

    data_dir: str | None = None
    """Data root (default: $SHOWCASE_DATA, else the user cache dir)."""
    out_dir: str = "runs/default"
    """Run directory: checkpoints, logs, metrics.json."""
    config: str | None = None
    """YAML or JSON file whose keys set config fields (flags still win)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N | mps."""
    seed: int = 0
    """Seed for Python, NumPy and torch."""
    deterministic: bool = False
    """Use deterministic algorithms only."""
    max_steps: int = 1000
    """Optimizer steps to train for."""
    max_seconds: float = 0.0
    """Also stop once training has taken this many seconds since the start or the --resume
    (0: no time limit)."""
    batch_size: int = 64
    """Samples per optimizer step, summed over processes and accumulation."""
    lr: float = 1e-3
    """Peak learning rate."""
    weight_decay: float = 0.0
    """Decoupled weight decay."""
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    """Learning-rate decay after warmup."""
    warmup_steps: int = 0
    """Linear warmup from 0 to --lr over this many steps."""
    grad_clip: float = 0.0
    """Clip the gradient norm to this value (0: off)."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    ema: float = 0.0
    """Decay of an exponential moving average of the weights, which is then evaluated and saved (0: off)."""
    amp: bool = False
    """Autocast to --amp-dtype."""
    amp_dtype: Literal["bf16", "fp16"] = "bf16"
    """bf16 (CPU, CUDA) or fp16 with gradient scaling (CUDA)."""
    compile: bool = False
    """torch.compile the model."""
    eval_every: int = 0
    """Evaluate every N steps (0: only at the end)."""
    ckpt_every: int = 0
    """Write a checkpoint every N steps (0: only at the end)."""
    log_every: int = 100
    """Log one line every N steps."""
    patience: int = 0
    """Stop after this many evaluations without improvement (0: never)."""
    resume: bool = False
    """Continue the run in --out-dir from its last checkpoint."""
    tensorboard: bool = False
    """Also log to TensorBoard in the run directory."""

    def __post_init__(self) -> None:
        positive(self, "max_steps", "batch_size", "grad_accum", "log_every", "lr")
        non_negative(self, "eval_every", "ckpt_every", "warmup_steps", "weight_decay",
                     "grad_clip", "patience", "max_seconds")  # fmt: skip
        if not 0 <= self.ema < 1:
            raise UsageError(f"--ema is a decay in [0, 1), got {self.ema}")
        refuse_unused(self)


def flag(name: str) -> str:
    """The command-line flag of a config field: `max_steps` -> `--max-steps`."""
    return "--" + name.replace("_", "-")


def positive(cfg: Any, *names: str) -> None:
    """Refuse, with one line, a field among `names` that is not > 0."""
    for name in names:
        if not getattr(cfg, name) > 0:
            raise UsageError(f"{flag(name)} must be > 0, got {getattr(cfg, name)}")


def non_negative(cfg: Any, *names: str) -> None:
    """Refuse, with one line, a field among `names` that is < 0."""
    for name in names:
        if getattr(cfg, name) < 0:
            raise UsageError(f"{flag(name)} must be >= 0, got {getattr(cfg, name)}")


def fraction(cfg: Any, *names: str) -> None:
    """Refuse, with one line, a field among `names` outside [0, 1)."""
    for name in names:
        if not 0 <= getattr(cfg, name) < 1:
            raise UsageError(f"{flag(name)} must be in [0, 1), got {getattr(cfg, name)}")


def refuse_unused(cfg: Any, names: tuple[str, ...] | None = None, who: str | None = None) -> None:
    """Refuse a field in `names` (default: the class's UNUSED) set away from its default."""
    names = type(cfg).UNUSED if names is None else names
    for f in dataclasses.fields(cfg):
        if f.name in names and getattr(cfg, f.name) != _default(f):
            raise UsageError(
                f"{flag(f.name)} is not supported by {who or type(cfg).DEMO}: leave it out"
            )


def resume_mismatch(cfg: Any, saved: dict[str, Any]) -> str | None:
    """Why a run saved with config `saved` cannot be resumed with `cfg` (None: it can)."""
    free = set(getattr(type(cfg), "RESUMABLE", ()))
    for key, value in to_dict(cfg).items():
        if key in free or key not in saved:
            continue
        before = saved[key]
        if isinstance(value, tuple | list) and isinstance(before, tuple | list):
            value, before = list(value), list(before)  # JSON keeps a tuple as a list
        if value != before:
            return f"{flag(key)} was {saved[key]!r} in the saved run, now {getattr(cfg, key)!r}"
    return None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(cfg)


def build(cls: type[C], **overrides: Any) -> C:
    """A config with a recipe's preset applied, as the CLI would build it (for `main(cfg)` callers)."""
    fields = _defaults(cls, overrides.get(getattr(cls, "PRESET_FIELD", "recipe")))
    fields.update(overrides)
    return _instantiate(cls, fields)


def from_run(cls: type[C], saved: dict[str, Any], **overrides: Any) -> C:
    """The config a run was trained with (its saved dict) rebuilt as `cls`, typed like a config
    file; `resume` and `config` are cleared, keys the class lacks are ignored, `overrides` win."""
    names = {f.name for f in dataclasses.fields(cls)} - {"resume", "config"}
    return _instantiate(cls, {**{k: v for k, v in saved.items() if k in names}, **overrides})


def parse(cls: type[C], argv: list[str], prog: str) -> C:
    """Parse `argv` into `cls`; a usage problem raises UsageError with a one-line message."""
    if any(a in ("-h", "--help") for a in argv):
        return tyro.cli(cls, args=argv, prog=prog)  # prints help and exits 0
    default = None
    if all(f.default is not dataclasses.MISSING for f in dataclasses.fields(cls)):
        file_fields = _load_file(_peek(argv, "--config")) if _peek(argv, "--config") else {}
        key = getattr(cls, "PRESET_FIELD", "recipe")
        fields = _defaults(cls, _peek(argv, "--" + key.replace("_", "-")) or file_fields.get(key))
        fields.update(file_fields)
        default = _instantiate(cls, fields)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            if default is None:  # a command with required arguments (e.g. predict's paths)
                return tyro.cli(cls, args=argv, prog=prog)
            return tyro.cli(cls, args=argv, prog=prog, default=default)
    except SystemExit as exc:
        raise UsageError(_first_message(stderr.getvalue()) or "invalid arguments") from exc


def save(cfg: Any, path: Path) -> None:
    """Write the resolved config as JSON (the run directory keeps what was run)."""
    write_text(path, json.dumps(to_dict(cfg), indent=2) + "\n")


def _defaults(cls: type, recipe: str | None) -> dict[str, Any]:
    fields = {f.name: getattr(cls, f.name) for f in dataclasses.fields(cls) if hasattr(cls, f.name)}
    presets = getattr(cls, "PRESETS", {})
    key = getattr(cls, "PRESET_FIELD", "recipe")
    if recipe is not None:
        if recipe not in presets and not getattr(cls, "PRESETS_OPEN", False):
            raise UsageError(
                f"unknown {key} {recipe!r}: choose from {', '.join(presets) or 'none'}"
            )
        fields.update(presets.get(recipe, {}))
        fields[key] = recipe  # the preset's fields are checked together with its name
    return fields


def _instantiate(cls: type[C], fields: dict[str, Any]) -> C:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise UsageError(f"unknown config key(s) {', '.join(unknown)} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: coerce(k, v, hints[k]) for k, v in fields.items()})


def coerce(key: str, value: Any, kind: Any) -> Any:
    """`value` (from a config file or a preset) as the field's type; a mismatch names the key.

    YAML reads `1e-3` as a string and `(16, 48)` does not exist in it: such values are converted
    where the conversion is exact, and refused otherwise."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(key, value, option)
            except UsageError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:  # the choice itself: YAML's '4' or 4.0 for Literal[2, 4] gives 4
        for choice in args:
            if value == choice or (isinstance(value, str) and value == str(choice)):
                return choice
        raise UsageError(f"config key {key}: {value!r} is not one of {', '.join(map(str, args))}")
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise UsageError(f"config key {key}: expected a list, got {value!r}")
        inner = args[0] if args and (origin is list or args[-1] is Ellipsis) else None
        kinds = [inner] * len(value) if inner is not None else list(args)
        if len(kinds) != len(value):
            raise UsageError(f"config key {key}: expected {len(kinds)} values, got {len(value)}")
        return origin(coerce(key, v, k) for v, k in zip(value, kinds, strict=True))
    if kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"config key {key}: expected true or false, got {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, str):
            try:
                value = float(value) if kind is float else int(value)
            except ValueError:
                raise UsageError(f"config key {key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"config key {key}: expected a number, got {value!r}")
        if kind is int and value != int(value):
            raise UsageError(f"config key {key}: expected a whole number, got {value!r}")
        return kind(value)
    if kind is str and not isinstance(value, str):
        raise UsageError(f"config key {key}: expected text, got {value!r}")
    return value


def _peek(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _load_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(p.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise UsageError(
            f"config file {path} is not valid YAML/JSON: {str(exc).splitlines()[0]}"
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of field names to values")
    fields = {k.replace("-", "_"): v for k, v in data.items()}
    fields.pop("config", None)
    return fields


def _first_message(text: str) -> str:
    """Condense tyro's boxed error to its message lines (the text before the first rule)."""
    lines = []
    for raw in text.splitlines()[1:]:
        line = raw.strip().strip("│╭╮╰╯").strip()
        if not line or re.fullmatch(r"[─━]+", line):
            if lines:
                break
            continue
        lines.append(line)
    return " ".join(lines)


@dataclasses.dataclass
class EvalConfig(ChangesDefaults):
    """Fields every `eval` command shares; domains subclass it and change defaults (`DEFAULTS`)."""

    out_dir: str = "runs/default"
    """Run directory of the trained model; eval.json and plots are written there."""
    data_dir: str | None = None
    """Data root (default: $SHOWCASE_DATA, else the user cache dir)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N | mps."""
    batch_size: int = 1000
    """Samples per evaluation batch."""
    json: bool = False
    """Print the report as one JSON object."""

    def __post_init__(self) -> None:
        positive(self, "batch_size")
