"""The typed configs every demo shares (`TrainConfig`, `EvalConfig`) and their JSON form in a run
folder; `core.errors` refuses out-of-range values and `core.parse` turns a config class into the CLI."""

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal

from core.demo import Demo
from core.errors import UsageError, check_source, flag, non_negative, positive
from core.files import write_text


class ChangesDefaults:
    """A config subclass changes inherited defaults in one place, without restating a field:
    `DEFAULTS = {"max_steps": 1300, "schedule": "cosine"}` become the subclass's field defaults,
    with the parent's type and `--help` line. A subclass that names its demo (`DEMO = CLASSIFY`)
    gets the demo's run folder as its `out_dir` default."""

    DEMO: ClassVar[Demo | str] = "this demo"
    """The demo's declaration (messages name it as `vision classify`)."""
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        changed = cls.__dict__.get("DEFAULTS", {})
        demo = cls.__dict__.get("DEMO")
        if isinstance(demo, Demo) and "out_dir" not in changed:
            changed = {"out_dir": demo.run_dir, **changed}
        bases = [b for b in cls.__bases__ if dataclasses.is_dataclass(b)]
        inherited = {k: v for b in bases for k, v in typing.get_type_hints(b).items()}
        own = cls.__dict__.get("__annotations__", {})
        wrong = sorted(k for k in changed if k not in inherited or k in own)
        if wrong:
            raise TypeError(
                f"{cls.__name__}.DEFAULTS: {', '.join(wrong)} not inherited or restated"
            )
        cls.__annotations__ = {**own, **{k: inherited[k] for k in changed}}
        kw_only = {f.name for b in bases for f in dataclasses.fields(b) if f.kw_only}
        for name, value in changed.items():
            keyword = dataclasses.field(default=value, kw_only=True)
            setattr(cls, name, keyword if name in kw_only else value)


@dataclasses.dataclass
class TrainConfig(ChangesDefaults):
    """Fields every training demo shares; domains subclass it and change defaults (`DEFAULTS`)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    PRESET_FIELD: ClassVar[str] = "recipe"
    PRESETS_OPEN: ClassVar[bool] = False
    """True: a value of PRESET_FIELD without a preset keeps the plain defaults (else: an error)."""
    LEGACY: ClassVar[dict[str, Any]] = {}
    """What a run saved before a field existed meant by its absence (`{"robust": False}`): resume
    and eval read a missing key as this value, not as today's default."""
    UNUSED: ClassVar[tuple[str, ...]] = ()
    """Shared fields this demo does not honour: setting one is refused, never silently ignored."""
    RESUMABLE: ClassVar[tuple[str, ...]] = (
        "out_dir",
        "data_dir",
        "config",
        "device",
        "max_steps",
        "max_seconds",
        "resume",
        "log_every",
        "ckpt_every",
        "eval_every",
        "patience",
        "tensorboard",
        "compile",
        "init_from",
    )
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
    init_from: str | None = None
    """Start from these weights wherever a name and shape match (transfer learning): a run's
    folder, a model.safetensors file, or hf:owner/name; config.json records it."""
    freeze: str | None = None
    """Keep the parameters whose name matches this regular expression fixed (e.g. `^features`)."""
    tensorboard: bool = False
    """Also log to TensorBoard in the run directory."""
    synthetic: bool = False
    """Tiny made-up data instead of the real dataset (smoke tests only; RL: tiny evaluations)."""
    hf_dataset: str | None = None
    """Train on your own data through Hugging Face datasets: a local file (csv, tsv, json, jsonl,
    parquet) or folder, or a Hub dataset (owner/name, with network); the demo's docs list its
    columns. Without a test split, a seeded fifth is held out as test."""
    hf_columns: list[str] = dataclasses.field(default_factory=list)
    """With --hf-dataset: KEY=COLUMN for each column named otherwise than the demo expects
    (e.g. user=userId)."""
    hf_split: str = "test"
    """With --hf-dataset: the source's split to test on (without a split of that name, a seeded
    fifth of the training split is held out instead; another name must exist)."""

    def __post_init__(self) -> None:
        positive(self, "max_steps", "batch_size", "grad_accum", "log_every", "lr")
        non_negative(
            self,
            "eval_every",
            "ckpt_every",
            "warmup_steps",
            "weight_decay",
            "grad_clip",
            "patience",
            "max_seconds",
        )
        if not 0 <= self.ema < 1:
            raise UsageError(f"--ema is a decay in [0, 1), got {self.ema}")
        refuse_unused(self)
        check_source(self)


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
    saved = {**getattr(type(cfg), "LEGACY", {}), **saved}
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


def save(cfg: Any, path: Path) -> None:
    """Write the resolved config as JSON (the run directory keeps what was run)."""
    write_text(path, json.dumps(to_dict(cfg), indent=2) + "\n")


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
    hf_dataset: str | None = None
    """Score the run on another source through Hugging Face datasets (a file, a folder or a Hub
    dataset, as `train --hf-dataset` takes): its --hf-split split, or every row where it has no
    test split (default: the run's own test data)."""
    hf_columns: list[str] = dataclasses.field(default_factory=list)
    """With --hf-dataset: KEY=COLUMN for each column named otherwise than the demo expects."""
    hf_split: str = "test"
    """With --hf-dataset: the source's split to score."""

    UNUSED: ClassVar[tuple[str, ...]] = ()
    """Shared fields this demo does not honour: setting one is refused, never silently ignored."""

    def __post_init__(self) -> None:
        positive(self, "batch_size")
        refuse_unused(self)
        check_source(self)


@dataclasses.dataclass(kw_only=True)
class InferenceConfig(ChangesDefaults):
    """Fields every command that uses a trained model shares (`predict`, `transcribe`,
    `translate`, `recommend`, `play`); a domain adds its own, positional inputs first."""

    out_dir: str = "runs/default"
    """Run directory of the trained model."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N | mps."""
    json: bool = False
    """Print JSON (one object per input) instead of text."""
