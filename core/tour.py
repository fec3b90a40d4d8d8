"""`showcase tour`: train and evaluate every ready demo on its real data, then write a report.

    showcase tour --quick                          # each demo's quick configuration (the default)
    showcase tour --full --only vision,rl          # the benchmark configurations (each demo's defaults)
    showcase tour --only speech,vision.detect --out-dir runs/tour --force

The tour knows the demos only through the registry: each `Demo.tour` names the metric of its
`eval.json`, the metric's target and chance level, the quick configuration and the pictures its run
leaves. The report folder holds `index.md`, a self-contained `index.html` (pictures embedded),
`tour.json`, `pictures/`, and per demo its run (`runs/`, each under its default folder name, so
`showcase app --runs <out-dir>/runs` serves them) and its log (`logs/`).
"""

import base64
import contextlib
import dataclasses
import html
import json
import multiprocessing
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from core import registry
from core.config import build, to_dict
from core.errors import MissingData, UsageError
from core.files import copy_file, save_figure, write_text
from core.logger import progress_to

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
        if self.max_steps < 0:
            raise UsageError(f"--max-steps must be >= 0, got {self.max_steps}")


def select(demos: list[registry.Demo], only: str | None) -> list[registry.Demo]:
    """The ready demos with a tour spec that `--only` names (all of them without it)."""
    touring = [d for d in demos if d.status == "ready" and d.tour is not None]
    if not only:
        return touring
    valid = sorted({d.domain for d in touring} | {f"{d.domain}.{d.task}" for d in touring})
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in valid]
    if unknown or not wanted:
        raise UsageError(f"unknown application {', '.join(unknown) or repr(only)} in --only: "
                         f"choose from {', '.join(valid)}")  # fmt: skip
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


def flags(fields: dict[str, Any]) -> str:
    """Config fields as the CLI flags that set them."""
    out = []
    for key, value in fields.items():
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(name if value else "--no-" + name[2:])
        elif value is not None:
            out.append(f"{name} {value}")
    return " ".join(out)


def plan(demo: registry.Demo, cfg: TourConfig, out: Path) -> tuple[dict, dict, dict]:
    """A demo's row before it runs, its train-config overrides and the fields train and eval share."""
    spec = demo.tour
    name = f"{demo.domain}-{demo.task}"
    # runs/ holds each run under its default folder name, so `showcase app --runs <out>/runs` serves them
    run_dir, log = out / "runs" / registry.run_folder(demo), out / "logs" / f"{name}.log"
    overrides = {} if cfg.full else dict(spec.quick)
    overrides |= {"max_steps": cfg.max_steps} if cfg.max_steps else {}
    overrides |= {"synthetic": True} if cfg.synthetic else {}
    shared = {"out_dir": str(run_dir), "data_dir": cfg.data_dir, "device": cfg.device}
    row = {"demo": demo.name, "name": name, "dataset": demo.dataset, "metric": spec.metric,
           "chance": spec.chance, "chance_is": spec.chance_is, "target": spec.target,
           "full": spec.full, "full_source": spec.full_source,
           "lower_is_better": spec.lower_is_better, "log": str(log.relative_to(out)),
           "command": f"showcase {demo.name} train {flags({**overrides, **shared, 'seed': cfg.seed})}",
           "pictures": []}  # fmt: skip
    return row, overrides, shared


def run_demo(demo: registry.Demo, cfg: TourConfig, out: Path) -> dict[str, Any]:
    """Train one demo's configuration, evaluate it and collect its row and pictures. A missing
    dataset skips it; any other failure is recorded with its log, never raised."""
    spec, name = demo.tour, f"{demo.domain}-{demo.task}"
    row, overrides, shared = plan(demo, cfg, out)
    run_dir, log = Path(shared["out_dir"]), out / row["log"]
    commands = demo.commands()
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
            train_cls = registry.config_class(commands["train"])
            with progress_to(terminal, demo.name):
                trained = commands["train"](build(train_cls, **overrides, **shared, seed=cfg.seed))
            print(f"  {demo.name}: evaluating ...", file=terminal, flush=True)
            eval_cls = registry.config_class(commands["eval"])
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
    row |= {"status": "ok", "value": evaluated["metrics"][spec.metric], "steps": trained["steps"],
            "train_seconds": trained["wall_seconds"], "device": trained["device"],
            "seconds": time.perf_counter() - t0}  # fmt: skip
    pictures = out / "pictures"
    curves = pictures / f"{name}-curves.png"
    if plot_curves(run_dir / "log.jsonl", curves, demo.name):
        row["pictures"].append(str(curves.relative_to(out)))
    for picture in spec.pictures:
        if (run_dir / picture).is_file():
            copy_file(run_dir / picture, pictures / f"{name}-{picture}")
            row["pictures"].append(f"pictures/{name}-{picture}")
    return row


def isolated(demo: registry.Demo, cfg: TourConfig, out: Path) -> dict[str, Any]:
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


def _child(send, demo: registry.Demo, cfg: TourConfig, out: Path) -> None:
    send.send(run_demo(demo, cfg, out))
    send.close()


def plot_curves(log: Path, path: Path, title: str) -> bool:
    """Training loss and evaluated metrics over steps, from a run's log.jsonl; False if none."""
    from matplotlib.figure import Figure

    if not log.is_file():
        return False
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    skip = {"kind", "step", "time", "lr", "samples_per_s", "epsilon"}
    panels = {"train": {}, "eval": {}}
    for r in records:
        for key, value in r.items():
            if key not in skip and isinstance(value, int | float) and r.get("kind") in panels:
                panels[r["kind"]].setdefault(key, ([], []))
                panels[r["kind"]][key][0].append(r["step"])
                panels[r["kind"]][key][1].append(value)
    shown = [(kind, series) for kind, series in panels.items() if series]
    if not shown:
        return False
    fig = Figure(figsize=(4.5 * len(shown), 3.2))
    for i, (kind, series) in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), i + 1)
        for key, (steps, values) in list(series.items())[:4]:
            ax.plot(steps, values, label=key, marker="o" if len(steps) < 12 else None)
        ax.set_xlabel("step")
        ax.set_title(f"{title}: {kind}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def summary(row: dict, mode: str, where: str = "BENCHMARKS.md") -> str:
    """One finished demo in words: this run's number beside the full configuration's, e.g.
    `quick: test_acc 0.9942 after 13 s of training (500 steps); full configuration: 0.9952
    (BENCHMARKS.md); chance 0.1, target 0.995`."""
    said = (f"{mode}: {row['metric']} {fmt(row['value'])} after {row['train_seconds']:.0f} s of "
            f"training ({row['steps']} steps)")  # fmt: skip
    if row["full"] is not None:
        said += f"; full configuration: {fmt(row['full'])} ({where})"
    return said + f"; chance {fmt(row['chance'])}, target {fmt(row['target'])}"


def table(rows: list[dict]) -> list[list[str]]:
    """Header and one line per demo: application, dataset, metric, measured, training seconds,
    the full configuration's measured value, chance, target, device, status."""
    lines = [["application", "dataset", "metric", "measured", "train s",
              "full config (BENCHMARKS.md)", "chance", "target (full config)", "device",
              "status"]]  # fmt: skip
    for r in rows:
        sign = "<=" if r["lower_is_better"] else ">="
        status = (
            r["status"] if r["status"] == "ok" else f"{r['status']}: {r['note']} (log: {r['log']})"
        )
        lines.append([r["demo"], r["dataset"], r["metric"], fmt(r.get("value")),
                      fmt(r.get("train_seconds")), fmt(r["full"]),
                      f"{fmt(r['chance'])} ({r['chance_is']})", f"{sign} {fmt(r['target'])}",
                      r.get("device", "-"), status])  # fmt: skip
    return lines


def sentence(row: dict, mode: str) -> str:
    """The report's line under a finished demo's command: its summary and, where the full
    configuration's number comes from, the benchmark that measured it."""
    where = "BENCHMARKS.md"
    if row["full_source"]:
        name, key = row["full_source"].split()
        where += f": python -m benchmarks {name}, {key}"
    said = summary(row, mode, where)
    return said[0].upper() + said[1:] + "."


def write_markdown(report: dict, path: Path) -> None:
    lines = table(report["rows"])
    text = [f"# torch-showcase tour ({report['mode']})", "",
            f"{report['finished']}, {report['seconds']:.0f} s in all. Each row: `train` then `eval` of one "
            "application; the target is the full configuration's, the chance level what guessing scores.", "",
            "| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]  # fmt: skip
    text += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines[1:]]
    for r in report["rows"]:
        text += ["", f"## {r['demo']}", "", f"    {r['command']}", ""]
        if r["status"] == "ok":
            text += [sentence(r, report["mode"]), ""]
        text += [f"![{Path(p).stem}]({p})" for p in r["pictures"]]
    write_text(path, "\n".join(text) + "\n")


def write_html(report: dict, out: Path) -> None:
    """index.html with every picture embedded as a data URI: one file to open or send."""
    e = html.escape
    lines = table(report["rows"])
    head = "".join(f"<th>{e(c)}</th>" for c in lines[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in line) + "</tr>" for line in lines[1:]
    )
    sections = []
    for r in report["rows"]:
        images = []
        for p in r["pictures"]:
            kind = "gif" if p.endswith(".gif") else "png"
            data = base64.b64encode((out / p).read_bytes()).decode()
            images.append(f'<img alt="{e(Path(p).stem)}" src="data:image/{kind};base64,{data}">')
        said = sentence(r, report["mode"]) if r["status"] == "ok" else ""
        sections.append(f"<h2>{e(r['demo'])}</h2><pre>{e(r['command'])}</pre><p>{e(said)}</p>"
                        + "".join(images))  # fmt: skip
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>torch-showcase tour</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; margin: 0.5em 0.5em 0 0; vertical-align: top; }}
pre {{ background: #f6f6f6; padding: 0.5em; overflow-x: auto; }}
</style></head><body>
<h1>torch-showcase tour ({e(report["mode"])})</h1>
<p>{e(report["finished"])}, {report["seconds"]:.0f} s in all. Each row: <code>train</code> then <code>eval</code> of one
application; the target is the full configuration's, the chance level what guessing scores.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{"".join(sections)}
</body></html>
"""
    write_text(out / "index.html", page)


def main(cfg: TourConfig) -> dict:
    """Run the tour; return the report (`rows`: one per demo, with `status` ok/skipped/failed)."""
    demos = select(registry.all_demos(), cfg.only)
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
    report = {"mode": mode, "seconds": round(time.perf_counter() - t0, 1), "rows": rows,
              "finished": time.strftime("%Y-%m-%d %H:%M"), "config": to_dict(cfg)}  # fmt: skip
    write_text(out / "tour.json", json.dumps(report, indent=2) + "\n")
    write_markdown(report, out / "index.md")
    write_html(report, out)
    failed = sum(r["status"] == "failed" for r in rows)
    print(f"wrote {out / 'index.md'} and {out / 'index.html'} ({report['seconds']:.0f} s"
          f"{f', {failed} failed' if failed else ''})")  # fmt: skip
    return report
