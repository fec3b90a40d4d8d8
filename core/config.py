"""Typed config dataclasses become the CLI (through tyro); files and recipes set defaults.

Precedence, lowest first: the dataclass defaults, a preset chosen by one field (`--recipe`,
or `--env` for RL), a config file (`--config run.yaml`), then flags on the command line.
"""

import contextlib
import dataclasses
import io
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import tyro
import yaml

from core.errors import UsageError

C = TypeVar("C")


@dataclasses.dataclass
class TrainConfig:
    """Fields every training demo shares; domains subclass it and change defaults."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    PRESET_FIELD: ClassVar[str] = "recipe"
    PRESETS_OPEN: ClassVar[bool] = False
    """True: a value of PRESET_FIELD without a preset keeps the plain defaults (else: an error)."""

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


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(cfg)


def build(cls: type[C], **overrides: Any) -> C:
    """A config with a recipe's preset applied, as the CLI would build it (for `main(cfg)` callers)."""
    fields = _defaults(cls, overrides.get(getattr(cls, "PRESET_FIELD", "recipe")))
    fields.update(overrides)
    return _instantiate(cls, fields)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_dict(cfg), indent=2) + "\n")


def _defaults(cls: type, recipe: str | None) -> dict[str, Any]:
    fields = {f.name: getattr(cls, f.name) for f in dataclasses.fields(cls) if hasattr(cls, f.name)}
    presets = getattr(cls, "PRESETS", {})
    if recipe is not None:
        if recipe not in presets and not getattr(cls, "PRESETS_OPEN", False):
            key = getattr(cls, "PRESET_FIELD", "recipe")
            raise UsageError(
                f"unknown {key} {recipe!r}: choose from {', '.join(presets) or 'none'}"
            )
        fields.update(presets.get(recipe, {}))
    return fields


def _instantiate(cls: type[C], fields: dict[str, Any]) -> C:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise UsageError(f"unknown config key(s) {', '.join(unknown)} for {cls.__name__}")
    return cls(**fields)


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
class EvalConfig:
    """Fields every `eval` command shares."""

    out_dir: str = "runs/default"
    """Run directory of the trained model; metrics.json and plots are written there."""
    data_dir: str | None = None
    """Data root (default: $SHOWCASE_DATA, else the user cache dir)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N | mps."""
    batch_size: int = 1000
    """Samples per evaluation batch."""
    json: bool = False
    """Print the report as one JSON object."""
