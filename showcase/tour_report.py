"""The tour's report: each demo's row as planned (its command and targets), its training curves,
the summary line under its command, the table, `index.md` and a self-contained `index.html` (every
picture embedded)."""

import base64
import html
import json
from pathlib import Path
from typing import Any

from core.demo import Demo
from core.files import save_figure, write_text
from showcase import catalog


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
    said = (
        f"{mode}: {row['metric']} {fmt(row['value'])} after {row['train_seconds']:.0f} s of "
        f"training ({row['steps']} steps)"
    )
    if row["full"] is not None:
        said += f"; full configuration: {fmt(row['full'])} ({where})"
    return said + f"; chance {fmt(row['chance'])}, target {fmt(row['target'])}"


def table(rows: list[dict]) -> list[list[str]]:
    """Header and one line per demo: application, dataset, metric, measured, training seconds,
    peak memory, the full configuration's measured value, chance, target, device, status."""
    lines = [
        [
            "application",
            "dataset",
            "metric",
            "measured",
            "train s",
            "peak MiB",
            "full config (BENCHMARKS.md)",
            "chance",
            "target (full config)",
            "device",
            "status",
        ]
    ]
    for r in rows:
        sign = "<=" if r["lower_is_better"] else ">="
        status = (
            r["status"] if r["status"] == "ok" else f"{r['status']}: {r['note']} (log: {r['log']})"
        )
        lines.append(
            [
                r["demo"],
                r["dataset"],
                r["metric"],
                fmt(r.get("value")),
                fmt(r.get("train_seconds")),
                fmt(r.get("peak_mb")),
                fmt(r["full"]),
                f"{fmt(r['chance'])} ({r['chance_is']})",
                f"{sign} {fmt(r['target'])}",
                r.get("device", "-"),
                status,
            ]
        )
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
    text = [
        f"# torch-showcase tour ({report['mode']})",
        "",
        f"{report['finished']}, {report['seconds']:.0f} s in all. Each row: `train` then `eval` of one "
        "application; the target is the full configuration's, the chance level what guessing scores.",
        "",
        "| " + " | ".join(lines[0]) + " |",
        "|" + "---|" * len(lines[0]),
    ]
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
        sections.append(
            f"<h2>{e(r['demo'])}</h2><pre>{e(r['command'])}</pre><p>{e(said)}</p>" + "".join(images)
        )
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


def plan(demo: Demo, cfg, out: Path) -> tuple[dict, dict, dict]:
    """A demo's row before it runs (`cfg`: the `TourConfig`), its train-config overrides and the fields train and eval share."""
    spec = demo.tour
    name = f"{demo.domain}-{demo.task}"
    # runs/ holds each run under its default folder name, so `showcase app --runs <out>/runs` serves them
    run_dir, log = catalog.run_folder(demo, out / "runs"), out / "logs" / f"{name}.log"
    overrides = {} if cfg.full else dict(spec.quick)
    overrides |= {"max_steps": cfg.max_steps} if cfg.max_steps else {}
    overrides |= {"synthetic": True} if cfg.synthetic else {}
    shared = {"out_dir": str(run_dir), "data_dir": cfg.data_dir, "device": cfg.device}
    row = {
        "demo": demo.name,
        "name": name,
        "dataset": demo.dataset,
        "metric": spec.metric,
        "chance": spec.chance,
        "chance_is": spec.chance_is,
        "target": spec.target,
        "full": spec.full,
        "full_source": spec.full_source,
        "lower_is_better": spec.lower_is_better,
        "log": str(log.relative_to(out)),
        "command": f"showcase {demo.name} train {flags({**overrides, **shared, 'seed': cfg.seed})}",
        "pictures": [],
    }
    return row, overrides, shared
