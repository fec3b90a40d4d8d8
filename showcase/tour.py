"""`showcase tour`: train and evaluate every ready demo on its real data, then write a report.

    showcase tour --quick                          # each demo's quick configuration (the default)
    showcase tour --full --only vision,rl          # the benchmark configurations (each demo's defaults)
    showcase tour --only speech,vision.detect --out-dir runs/tour --force

The tour knows the demos only through the catalog: each `Demo.tour` names the metric of its
`eval.json`, the metric's target and chance level, the quick configuration and the pictures its run
leaves. The report folder holds `index.md`, a self-contained `index.html` (pictures embedded),
`tour.json`, `pictures/`, and per demo its run (`runs/`, each under its default folder name, so
`showcase app --runs <out-dir>/runs` serves them) and its log (`logs/`).
"""

import contextlib
import dataclasses
import json
import multiprocessing
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from core.command import config_class
from core.config import to_dict
from core.demo import Demo
from core.errors import MissingData, UsageError, non_negative
from core.files import copy_file, write_text
from core.logger import progress_to
from core.parse import build
from showcase import catalog
from showcase.tour_report import plan, plot_curves, summary, write_html, write_markdown

MARKER = ".showcase-tour"  # marks a folder the tour wrote, the only kind --force may replace


@dataclasses.dataclass
class TourConfig:
    quick: bool = False
    """Each demo's quick configuration (the default): about 10 minutes in all on a 2-core CPU."""
    full: bool = False
    """The benchmark configurations (each demo's defaults) instead of the quick ones."""
    only: str | None = None
    """Comma-separated domains or demos to run, e.g. `vision,rl` or `vision.detect` (default: all)."""
    out_dir: str = "runs/tour"
    """Report folder: index.md, index.html, tour.json, pictures/, runs/, logs/."""
    force: bool = False
    """Replace an earlier tour report in --out-dir."""
    data_dir: str | None = None
    """Data root (default: $SHOWCASE_DATA, else the user cache dir)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N | mps."""
    seed: int = 0
    """Seed of every run."""
    max_steps: int = 0
    """Train every demo for this many steps instead (0: as its configuration says)."""
    synthetic: bool = False
    """Tiny made-up data instead of the real datasets (smoke tests only)."""

    def __post_init__(self) -> None:
        if self.quick and self.full:
            raise UsageError("choose one of --quick and --full")
        non_negative(self, "max_steps")


def select(demos: list[Demo], only: str | None) -> list[Demo]:
    """The ready demos with a tour spec that `--only` names (all of them without it)."""
    touring = [d for d in demos if d.status == "ready" and d.tour is not None]
    if not only:
        return touring
    valid = sorted({d.domain for d in touring} | {f"{d.domain}.{d.task}" for d in touring})
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in valid]
    if unknown or not wanted:
        raise UsageError(
            f"unknown application {', '.join(unknown) or repr(only)} in --only: "
            f"choose from {', '.join(valid)}"
        )
    return [d for d in touring if d.domain in wanted or f"{d.domain}.{d.task}" in wanted]


def prepare(out: Path, force: bool) -> None:
    """Make `out` an empty report folder; an existing one is replaced only with --force, and
    only if the tour wrote it."""
    if out.exists() and any(out.iterdir()):
        if not force:
            raise UsageError(
                f"{out} already exists: pass --force to replace it, or another --out-dir"
            )
        if not (out / MARKER).exists():
            raise UsageError(f"{out} is not a tour report folder; --force replaces only those")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()


def run_demo(demo: Demo, cfg: TourConfig, out: Path) -> dict[str, Any]:
    """Train one demo's configuration, evaluate it and collect its row and pictures. A missing
    dataset skips it; any other failure is recorded with its log, never raised."""
    spec, name = demo.tour, f"{demo.domain}-{demo.task}"
    row, overrides, shared = plan(demo, cfg, out)
    run_dir, log = Path(shared["out_dir"]), out / row["log"]
    commands = catalog.commands(demo)
    log.parent.mkdir(parents=True, exist_ok=True)
    terminal = sys.stdout  # the run's output goes to its log; its progress stays on the terminal
    t0 = time.perf_counter()
    with (
        open(log, "w", encoding="utf-8") as f,
        contextlib.redirect_stdout(f),
        contextlib.redirect_stderr(f),
    ):
        print(f"$ {row['command']}", flush=True)
        try:
            train_cls = config_class(commands["train"])
            with progress_to(terminal, demo.name):
                trained = commands["train"](build(train_cls, **overrides, **shared, seed=cfg.seed))
            print(f"  {demo.name}: evaluating ...", file=terminal, flush=True)
            eval_cls = config_class(commands["eval"])
            names = {f.name for f in dataclasses.fields(eval_cls)}
            eval_fields = {
                k: v for k, v in {**shared, "synthetic": cfg.synthetic}.items() if k in names
            }
            evaluated = commands["eval"](eval_cls(**eval_fields))
        except MissingData as exc:
            print(f"skipped: {exc}")
            return row | {"status": "skipped", "note": " ".join(str(exc).split())}
        except Exception as exc:  # one demo's failure must not end the tour
            traceback.print_exc()
            note = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            return row | {"status": "failed", "note": note, "seconds": time.perf_counter() - t0}
    row |= {
        "status": "ok",
        "value": evaluated["metrics"][spec.metric],
        "steps": trained["steps"],
        "train_seconds": trained["wall_seconds"],
        "device": trained["device"],
        "seconds": time.perf_counter() - t0,
        "peak_mb": peak_mb(),
    }
    pictures = out / "pictures"
    curves = pictures / f"{name}-curves.png"
    if plot_curves(run_dir / "log.jsonl", curves, demo.name):
        row["pictures"].append(str(curves.relative_to(out)))
    for picture in spec.pictures:
        if (run_dir / picture).is_file():
            copy_file(run_dir / picture, pictures / f"{name}-{picture}")
            row["pictures"].append(f"pictures/{name}-{picture}")
    return row


def peak_mb() -> float:
    """This process's peak resident memory so far, in MiB (the tour runs each demo in its own)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(kib / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def isolated(demo: Demo, cfg: TourConfig, out: Path) -> dict[str, Any]:
    """`run_demo` in a fresh child process, so that all the memory a demo used (its data, its
    libraries, the allocator's cache) returns to the system before the next one starts. Spawned,
    not forked: a child forked after OpenMP ran in this process can hang in its first parallel
    region. The child writes to the same terminal (file descriptors 1 and 2)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # the child's lines come after this process's
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, demo, cfg, out), name=demo.name)
    child.start()
    send.close()
    try:
        row = receive.recv()
    except EOFError:  # the child died without a row: killed (out of memory?) or crashed
        row = None
    finally:
        child.join()
    if row is None:
        note = f"the process running it ended with exit code {child.exitcode}"
        return plan(demo, cfg, out)[0] | {"status": "failed", "note": note}
    return row


def _child(send, demo: Demo, cfg: TourConfig, out: Path) -> None:
    send.send(run_demo(demo, cfg, out))
    send.close()


def main(cfg: TourConfig) -> dict:
    """Run the tour; return the report (`rows`: one per demo, with `status` ok/skipped/failed)."""
    demos = select(catalog.all_demos(), cfg.only)
    out = Path(cfg.out_dir)
    prepare(out, cfg.force)
    mode = "full" if cfg.full else "quick"
    t0 = time.perf_counter()
    rows = []
    for i, demo in enumerate(demos, 1):
        print(f"[{i}/{len(demos)}] {demo.name}: training ({mode}) ...", flush=True)
        row = isolated(demo, cfg, out)
        rows.append(row)
        if row["status"] == "ok":
            said = summary(row, mode)
        else:
            said = f"{row['status']}: {row['note']}" + (
                f" (log: {out / row['log']})" if row["status"] == "failed" else ""
            )
        print(f"[{i}/{len(demos)}] {demo.name}: {said}", flush=True)
    report = {
        "mode": mode,
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
        "config": to_dict(cfg),
    }
    write_text(out / "tour.json", json.dumps(report, indent=2) + "\n")
    write_markdown(report, out / "index.md")
    write_html(report, out)
    failed = sum(r["status"] == "failed" for r in rows)
    print(
        f"wrote {out / 'index.md'} and {out / 'index.html'} ({report['seconds']:.0f} s"
        f"{f', {failed} failed' if failed else ''})"
    )
    return report
