"""The catalog of demos: every domain's `DEMOS` (`core.demo.Demo` declarations), found through the
`torch_showcase.demos` entry points that `pyproject.toml` names, so the front names no domain."""

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from core.demo import Demo, Tab
from core.errors import UsageError

GROUP = "torch_showcase.demos"


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


def commands(demo: Demo) -> dict[str, Callable]:
    """The demo's commands (`train`, `eval`, ...): its module's COMMANDS."""
    if demo.module is None:
        raise UsageError(f"{demo.name} is planned but not implemented yet")
    return importlib.import_module(demo.module).COMMANDS


def tab(demo: Demo) -> Tab:
    """The demo's app tab, from the function its `app` names."""
    module, _, name = demo.app.partition(":")
    return getattr(importlib.import_module(module), name)()


def run_folder(demo: Demo, runs: str | Path) -> Path:
    """Where the tour and the app keep the demo's run under `runs`: its run directory's last part
    (`runs/vision-classify`, `<tour>/runs/translation`, ...)."""
    return Path(runs) / Path(demo.run_dir).name
