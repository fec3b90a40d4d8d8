"""Errors the CLI turns into one line on stderr instead of a traceback, and the checks that refuse a
config's out-of-range values with one: `positive(cfg, "lr")` says "--lr must be > 0, got -1"."""

import sys
from pathlib import Path
from typing import Any


class ShowcaseError(Exception):
    """A problem with the user's input or environment (exit code 1)."""

    exit_code = 1


class UsageError(ShowcaseError):
    """A malformed command line (exit code 2)."""

    exit_code = 2


class DataError(ShowcaseError):
    """Missing, corrupt or malformed data."""


class MissingData(DataError):
    """A dataset that is not on disk and cannot be downloaded: the message says where to put it."""


def refuse_failed(errors: list[str], answered: int, failed: str) -> None:
    """After a batch of inputs (the answers printed as they came): each input's error on stderr,
    then one error to exit with: the only one, or `failed` counted when others were answered."""
    for line in errors:
        print(f"showcase: error: {line}", file=sys.stderr)
    if errors:
        raise ShowcaseError(f"{len(errors)} {failed}" if answered else errors[0])


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
    within(cfg, "[0, 1)", *names)


def within(cfg: Any, interval: str, *names: str) -> None:
    """Refuse, with one line, a field among `names` outside `interval`, written as in
    mathematics: "[0, 0.5)" takes 0 and leaves out 0.5, "(0, 1]" the other way round."""
    low, high = (float(end) for end in interval[1:-1].split(","))
    for name in names:
        value = getattr(cfg, name)
        above = value >= low if interval[0] == "[" else value > low
        below = value <= high if interval[-1] == "]" else value < high
        if not (above and below):
            raise UsageError(f"{flag(name)} must be in {interval}, got {value}")


def check_source(cfg) -> None:
    """--hf-columns and --hf-split need --hf-dataset; a local source is recorded by its absolute
    path, so a run's eval and predict find it from any folder."""
    if (cfg.hf_columns or cfg.hf_split != "test") and not cfg.hf_dataset:
        raise UsageError("--hf-columns and --hf-split go with --hf-dataset")
    if cfg.hf_dataset and getattr(cfg, "synthetic", False):
        raise UsageError("--synthetic and --hf-dataset name two sources of data: pass one")
    if cfg.hf_dataset and Path(cfg.hf_dataset).expanduser().exists():
        cfg.hf_dataset = str(Path(cfg.hf_dataset).expanduser().resolve())
