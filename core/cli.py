"""`showcase`: one CLI for every demo.

    showcase list
    showcase tour [--quick|--full] [--only vision,rl] [--out-dir DIR]   # train + eval every demo, a report
    showcase app [--runs runs] [--port 7860]                          # a web page to try each trained demo
    showcase <domain> <task> <command> [flags]     # e.g. showcase vision classify train --max-steps 3
    python -m <domain>.<task> <command> [flags]    # the same, without the console script

Bad input ends with one line on stderr: exit 2 for usage errors, 1 for everything else.
"""

import sys
from pathlib import Path

from core import registry
from core.checkpoint import read_meta
from core.config import parse
from core.errors import ShowcaseError, UsageError
from core.run import CHECKPOINT

USAGE = (
    "usage: showcase list | showcase tour [flags] | showcase app [flags] | "
    "showcase <domain> <task> <command> [flags] "
    "(--help for flags)"
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `showcase` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "list":
        print_catalog()
        return 0
    if argv[0] == "tour":
        return run_tour(argv[1:])
    if argv[0] == "app":
        return run_app(argv[1:])
    if len(argv) < 2:
        return _fail(
            UsageError(f"expected a domain and a task, got {' '.join(argv)!r}; try `showcase list`")
        )
    return run_demo(argv[0], argv[1], argv[2:])


def run_demo(domain: str, task: str, argv: list[str]) -> int:
    """Run `<command> [flags]` of one demo; return the exit code."""
    cfg = None
    try:
        demo = registry.find(domain, task)
        commands = demo.commands()
        if not argv or argv[0] not in commands:
            got = f"unknown command {argv[0]!r}" if argv else "missing command"
            raise UsageError(f"{got} for {domain} {task}: choose from {', '.join(commands)}")
        command = commands[argv[0]]
        cfg = parse(
            registry.config_class(command), argv[1:], prog=f"showcase {domain} {task} {argv[0]}"
        )
        command(cfg)
    except ShowcaseError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        print(f"interrupted: {resume_hint(cfg)}", file=sys.stderr)
        return 130
    return 0


def run_tour(argv: list[str]) -> int:
    """`showcase tour`: exit 1 if any application failed (skipped ones, for missing data, do not)."""
    from core import tour

    try:
        report = tour.main(parse(tour.TourConfig, argv, prog="showcase tour"))
    except ShowcaseError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        print("interrupted: the tour wrote no report", file=sys.stderr)
        return 130
    return 1 if any(r["status"] == "failed" for r in report["rows"]) else 0


def run_app(argv: list[str]) -> int:
    """`showcase app`: serve the page until Ctrl-C."""
    from core import app

    try:
        app.main(parse(app.AppConfig, argv, prog="showcase app"))
    except ShowcaseError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return 0
    return 0


def resume_hint(cfg) -> str:
    """What an interrupted command can do next, judged by the checkpoint really on disk."""
    if cfg is None or not hasattr(cfg, "resume"):  # not a training command
        return "nothing to continue"
    ckpt = Path(cfg.out_dir) / CHECKPOINT
    if not ckpt.exists():
        return f"no checkpoint was written yet in {cfg.out_dir} (--ckpt-every N writes them)"
    step = read_meta(ckpt).get("state", {}).get("step")
    return f"continue with --resume --out-dir {cfg.out_dir} (checkpoint at step {step})"


def print_catalog() -> None:
    """The table of demos: domain, task, dataset, metric, status."""
    rows = [("domain", "task", "dataset", "metric", "status")]
    rows += [(d.domain, d.task, d.dataset, d.metric, d.status) for d in registry.all_demos()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _fail(exc: ShowcaseError) -> int:
    kind = "usage error" if isinstance(exc, UsageError) else "error"
    message = " ".join(str(exc).split())  # always one line
    print(f"showcase: {kind}: {message}", file=sys.stderr)
    return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
