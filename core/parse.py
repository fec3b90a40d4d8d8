"""A config from its sources: the dataclass defaults, a preset chosen by one field (`--recipe`,
or `--env` for RL), a config file (`--config run.yaml`), then flags on the command line
(through tyro), in that order of precedence.

cfg = parse(TrainConfig, sys.argv[1:], prog="showcase vision classify train")
cfg = build(TrainConfig, max_steps=100)          # as the CLI would, for `main(cfg)` callers
"""

import contextlib
import dataclasses
import io
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import tyro
import yaml

from core.errors import UsageError

C = TypeVar("C")


def build(cls: type[C], **overrides: Any) -> C:
    """A config with a recipe's preset applied, as the CLI would build it (for `main(cfg)` callers)."""
    fields = _defaults(cls, overrides.get(getattr(cls, "PRESET_FIELD", "recipe")))
    fields.update(overrides)
    return _instantiate(cls, fields)


def from_run(cls: type[C], saved: dict[str, Any], **overrides: Any) -> C:
    """The config a run was trained with (its saved dict) rebuilt as `cls`, typed like a config
    file; `resume` and `config` are cleared, keys the class lacks are ignored, keys the run lacks
    take the class's LEGACY values, `overrides` win."""
    names = {f.name for f in dataclasses.fields(cls)} - {"resume", "config"}
    saved = {**getattr(cls, "LEGACY", {}), **saved}
    return _instantiate(cls, {**{k: v for k, v in saved.items() if k in names}, **overrides})


def parse(cls: type[C], argv: list[str], prog: str) -> C:
    """Parse `argv` into `cls`; a usage problem raises UsageError with a one-line message."""
    if any(a in ("-h", "--help") for a in argv):
        return tyro.cli(cls, args=argv, prog=prog)  # prints help and exits 0
    default = None
    missing = dataclasses.MISSING
    if all(
        f.default is not missing or f.default_factory is not missing
        for f in dataclasses.fields(cls)
    ):
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
