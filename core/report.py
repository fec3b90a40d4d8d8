"""The `metrics.json` that `train` and `eval` leave in the run directory."""

import json
from pathlib import Path
from typing import Any

import torch

from core import config as config_mod
from core import distributed
from core.checkpoint import atomic_write


def write_report(
    cfg: Any,
    task: str,
    metrics: dict[str, float],
    steps: int,
    wall_seconds: float,
    device: torch.device,
) -> dict[str, Any]:
    """Build the run's report and (on rank 0) write it to `<out_dir>/metrics.json`."""
    report = {
        "task": task,
        "metrics": metrics,
        "steps": steps,
        "wall_seconds": round(wall_seconds, 3),
        "device": str(device),
        "config": config_mod.to_dict(cfg),
    }
    if distributed.is_main():
        text = json.dumps(report, indent=2) + "\n"
        atomic_write(Path(cfg.out_dir) / "metrics.json", lambda tmp: Path(tmp).write_text(text))
    return report


def report_eval(
    cfg: Any, task: str, metrics: dict, steps: int, wall_seconds: float, device, summary: str
) -> dict:
    """`write_report` for an `eval` command, then print the report as JSON (`--json`) or `summary`."""
    report = write_report(cfg, task, metrics, steps, wall_seconds, device)
    print(json.dumps(report) if cfg.json else summary)
    return report
