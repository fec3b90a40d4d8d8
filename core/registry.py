"""The catalog of demos. Each domain package lists its demos in `DEMOS`; `pyproject.toml` names
those lists under the `torch_showcase.demos` entry-point group, so `core` imports no domain.

A demo's module maps each command (`train`, `eval`, `predict`, ...) to a function of one typed
config dataclass: `COMMANDS = {"train": main, "eval": evaluate}`.
"""

import dataclasses
import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from core.errors import UsageError

GROUP = "torch_showcase.demos"


@dataclass(frozen=True)
class Tour:
    """What `showcase tour` needs of a demo: the metric of `eval.json` it shows, that metric's
    target (of the full, default configuration), chance level and measured full-configuration
    value, the quick configuration, and the pictures that `train` and `eval` leave in the run
    directory."""

    metric: str
    """Key of `eval.json`'s metrics, e.g. `test_acc`."""
    target: float
    chance: float
    chance_is: str
    """What scores the chance level, e.g. `guessing one of 10 classes`."""
    quick: dict[str, Any] = field(default_factory=dict)
    """Train-config fields of `--quick` (a few minutes on a 2-core CPU); `--full` uses the defaults."""
    pictures: tuple[str, ...] = ()
    lower_is_better: bool = False
    full: float | None = None
    """The metric the full (default) configuration reached, as the latest row of BENCHMARKS.md
    records it (a test holds the two together); the tour shows it beside the quick result."""
    full_source: str = ""
    """Where BENCHMARKS.md records `full`: `<benchmark> <key>`, e.g.
    `vision-classify default_test_acc`; `key[i]` is the i-th entry of a list (seed i)."""


@dataclass(frozen=True)
class Demo:
    domain: str
    task: str
    description: str
    dataset: str
    metric: str
    module: str | None = None
    """Module with COMMANDS, e.g. `vision.classify.train`; None while the demo is planned."""
    tour: Tour | None = field(default=None, compare=False)
    """How `showcase tour` trains, scores and shows it; None: the tour leaves it out."""
    app: str | None = field(default=None, compare=False)
    """`module:function` returning the demo's `core.app.Tab` for `showcase app`; None: no tab."""

    @property
    def name(self) -> str:
        return f"{self.domain} {self.task}"

    @property
    def status(self) -> str:
        return "ready" if self.module else "planned"

    def commands(self) -> dict[str, Callable]:
        if self.module is None:
            raise UsageError(f"{self.domain} {self.task} is planned but not implemented yet")
        return importlib.import_module(self.module).COMMANDS


def all_demos() -> list[Demo]:
    """Every registered demo, in entry-point order."""
    demos: list[Demo] = []
    for ep in entry_points(group=GROUP):
        demos.extend(ep.load())
    return demos


def find(domain: str, task: str) -> Demo:
    """The demo `domain task`, or a usage error listing what exists."""
    demos = all_demos()
    for demo in demos:
        if (demo.domain, demo.task) == (domain, task):
            return demo
    known = ", ".join(f"{d.domain} {d.task}" for d in demos)
    raise UsageError(f"unknown demo {domain!r} {task!r}; known: {known}")


def config_class(command: Callable) -> type:
    """The config dataclass a command takes (its single annotated parameter)."""
    hints = typing.get_type_hints(command)
    hints.pop("return", None)
    (cls,) = hints.values()
    return cls


def run_folder(demo: Demo) -> str:
    """The folder name of the demo's default run directory (`vision-classify`, `translation`, ...):
    the last part of its `train` config's default `--out-dir`."""
    train_cls = config_class(demo.commands()["train"])
    default = next(f.default for f in dataclasses.fields(train_cls) if f.name == "out_dir")
    return Path(default).name
