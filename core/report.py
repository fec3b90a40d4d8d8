"""The reports a run directory keeps: `metrics.json` from `train`, `eval.json` from `eval`.

An evaluation never overwrites the training report (its validation metrics, fit seconds and
steps to solve stay), and a second `eval` replaces only the first one's `eval.json`.
"""

import json
from pathlib import Path
from typing import Any

import torch

from core import config as config_mod
from core import distributed
from core.files import write_text


def write_report(
    cfg: Any,
    task: str,
    metrics: dict[str, float],
    steps: int,
    wall_seconds: float,
    device: torch.device,
    name: str = "metrics.json",
) -> dict[str, Any]:
    """Build the run's report and (on rank 0) write it to `<out_dir>/<name>`."""
    report = {
        "task": task,
        "metrics": metrics,
        "steps": steps,
        "wall_seconds": round(wall_seconds, 3),
        "device": str(device),
        "config": config_mod.to_dict(cfg),
    }
    if distributed.is_main():
        write_text(Path(cfg.out_dir) / name, json.dumps(report, indent=2) + "\n")
    return report


def report_eval(
    cfg: Any, task: str, metrics: dict, steps: int, wall_seconds: float, device, summary: str
) -> dict:
    """`write_report` for an `eval` command (to `eval.json`, beside the training report), then
    print the report as JSON (`--json`) or `summary`."""
    report = write_report(cfg, task, metrics, steps, wall_seconds, device, name="eval.json")
    print(json.dumps(report) if cfg.json else summary)
    return report


def report_train(
    cfg: Any,
    task: str,
    metrics: dict,
    result: Any,
    device,
    shown: list[str],
    notes: tuple[str, ...] = (),
) -> dict:
    """`write_report` for a `train` command (`result`: the loop's steps and seconds), then print
    the `shown` metrics with the steps and time it took, and one line per note (rank 0)."""
    report = write_report(cfg, task, metrics, result.steps, result.wall_seconds, device)
    if distributed.is_main():
        values = " ".join(f"{k} {metrics[k]:.4f}" for k in shown)
        print(f"{values} after {result.steps} steps in {result.wall_seconds:.1f}s")
        for note in notes:
            print(f"  {note}")
    return report
