"""`showcase`: one CLI for every demo.

    showcase list
    showcase tour [--quick|--full] [--only vision,rl] [--out-dir DIR]   # train + eval every demo, a report
    showcase app [--runs runs] [--port 7860]                          # a web page to try each trained demo
    showcase <domain> <task> <command> [flags]     # e.g. showcase vision classify train --max-steps 3
    python -m <domain>.<task> <command> [flags]    # the same, without the console script

Bad input ends with one line on stderr: exit 2 for usage errors, 1 for everything else.
"""

import sys

from core.command import fail, run
from core.errors import ShowcaseError, UsageError
from core.parse import parse
from showcase import catalog

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
        return fail(
            UsageError(f"expected a domain and a task, got {' '.join(argv)!r}; try `showcase list`")
        )
    return run_demo(argv[0], argv[1], argv[2:])


def run_demo(domain: str, task: str, argv: list[str]) -> int:
    """Run `<command> [flags]` of one demo; return the exit code."""
    try:
        commands = catalog.commands(catalog.find(domain, task))
    except ShowcaseError as exc:
        return fail(exc)
    return run(commands, argv, prog=f"showcase {domain} {task}")


def run_tour(argv: list[str]) -> int:
    """`showcase tour`: exit 1 if any application failed (skipped ones, for missing data, do not)."""
    from showcase import tour

    try:
        report = tour.main(parse(tour.TourConfig, argv, prog="showcase tour"))
    except ShowcaseError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        print("interrupted: the tour wrote no report", file=sys.stderr)
        return 130
    return 1 if any(r["status"] == "failed" for r in report["rows"]) else 0


def run_app(argv: list[str]) -> int:
    """`showcase app`: serve the page until Ctrl-C."""
    from showcase import app

    try:
        app.main(parse(app.AppConfig, argv, prog="showcase app"))
    except ShowcaseError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        return 0
    return 0


def print_catalog() -> None:
    """The table of demos: domain, task, dataset, metric, status."""
    rows = [("domain", "task", "dataset", "metric", "status")]
    rows += [(d.domain, d.task, d.dataset, d.metric, d.status) for d in catalog.all_demos()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
