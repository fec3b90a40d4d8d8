"""The docs cannot rot: every `python` block of README.md and docs/*.md runs (a page's blocks in
order, sharing names, in a scratch folder), and every `showcase` / `python -m` / `torchrun` line of
their `sh` blocks parses against the command's config."""

import re
import shlex
from pathlib import Path

import pytest

from benchmarks.__main__ import BENCHMARKS
from core.command import config_class
from core.parse import parse
from showcase import catalog

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def blocks(page: Path, language: str) -> list[str]:
    return [code for lang, code in FENCE.findall(page.read_text()) if lang == language]


def commands(page: Path) -> list[list[str]]:
    """The argument lists of the command lines in a page's sh blocks (pipes and && split)."""
    found = []
    for code in blocks(page, "sh"):
        for line in code.splitlines():
            words = shlex.split(line, comments=True)
            part: list[str] = []
            for word in [*words, "|"]:
                if word in ("|", "&&", ";"):
                    if part:
                        found.append(part)
                    part = []
                else:
                    part.append(word)
    return found


def test_every_application_has_a_page():
    names = {f"{d.domain}-{d.task}.md" for d in catalog.all_demos()}
    assert names | {"core.md", "export.md", "README.md"} == {
        p.name for p in (ROOT / "docs").glob("*.md")
    }


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(blocks(page, "python")):
        exec(compile(code, f"{page.name}[python block {i}]", "exec"), namespace)


def check(argv: list[str]) -> None:
    """Parse one command line the way its program would, without running it."""
    if argv[0] == "torchrun":
        argv = argv[argv.index("-m") :]
        argv = ["python", *argv]
    if argv[:2] == ["python", "-m"] and argv[2] == "benchmarks":
        assert argv[3] in BENCHMARKS, argv
        return
    if argv[:2] == ["python", "-m"]:
        domain, task = argv[2].split(".")
        argv = ["showcase", domain, task, *argv[3:]]
    if argv[0] != "showcase" or argv[1] in ("list", "--help"):
        return  # pip, echo, ...: not ours
    if "--config" in argv:  # names a file the reader writes
        i = argv.index("--config")
        argv = argv[:i] + argv[i + 2 :]
    if argv[1] in ("tour", "app"):
        from showcase.app import AppConfig
        from showcase.tour import TourConfig

        parse(TourConfig if argv[1] == "tour" else AppConfig, argv[2:], prog=f"showcase {argv[1]}")
        return
    command = catalog.commands(catalog.find(argv[1], argv[2]))[argv[3]]
    parse(config_class(command), argv[4:], prog=" ".join(argv[:4]))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_command_lines_parse(page):
    lines = commands(page)
    for argv in lines:
        check(argv)
    if page.parent.name == "docs" and page.name not in ("README.md", "core.md"):
        assert any(a[:1] == ["showcase"] for a in lines), f"{page.name} shows no command"
