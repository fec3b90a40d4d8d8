"""The catalog of demos. Each domain package lists its demos in `DEMOS`; `pyproject.toml` names
those lists under the `torch_showcase.demos` entry-point group, so `core` imports no domain.

A demo's module maps each command (`train`, `eval`, `predict`, ...) to a function of one typed
config dataclass: `COMMANDS = {"train": main, "eval": evaluate}`.
"""

import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from core.errors import UsageError

GROUP = "torch_showcase.demos"


@dataclass(frozen=True)
class Demo:
    domain: str
    task: str
    description: str
    dataset: str
    metric: str
    module: str | None = None
    """Module with COMMANDS, e.g. `vision.classify.train`; None while the demo is planned."""

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
