"""Run one benchmark, append its row to BENCHMARKS.md and print its JSON as the last line.

python -m benchmarks core-overhead [--device cpu]
python -m benchmarks vision-classify [--device cuda]
python -m benchmarks rl-dqn [--device cpu]
python -m benchmarks rl-steady [--device cpu]
python -m benchmarks recsys-foldin [--device cpu]
python -m benchmarks speech-ctc [--device cuda] [--keep-runs DIR] [--no-loso]
python -m benchmarks speech-loso [--device cuda] [--keep-runs DIR]
python -m benchmarks speech-adapt-tune [--device cuda] [--keep-runs DIR]
python -m benchmarks speech-adapt [--device cuda] [--keep-runs DIR]
python -m benchmarks vision-detect [--device cuda] [--keep-runs DIR]
python -m benchmarks translation [--device cuda] [--keep-runs DIR]
python -m benchmarks tour [--device cuda] [--keep-runs DIR]
python -m benchmarks app [--device cpu]
python -m benchmarks deploy [--keep-runs DIR]

The peers come from the bench extra: pip install -e ".[bench]".
"""

import dataclasses
import datetime
import importlib
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Literal

import torch
from tyro.conf import Positional

from core.errors import ShowcaseError, UsageError
from core.files import write_text
from core.parse import parse

BENCHMARKS = {
    "core-overhead": "benchmarks.core_overhead",
    "vision-classify": "benchmarks.vision_classify",
    "rl-dqn": "benchmarks.rl_dqn",
    "rl-steady": "benchmarks.rl_steady",
    "recsys": "benchmarks.recsys_mf",
    "recsys-foldin": "benchmarks.recsys_foldin",
    "recsys-scale": "benchmarks.recsys_scale",
    "speech-ctc": "benchmarks.speech_ctc",
    "speech-loso": "benchmarks.speech_loso",
    "speech-adapt-tune": "benchmarks.speech_adapt_tune",
    "speech-adapt": "benchmarks.speech_adapt",
    "vision-detect": "benchmarks.vision_detect",
    "vision-transfer": "benchmarks.vision_transfer",
    "vision-detect-transfer": "benchmarks.vision_detect_transfer",
    "translation": "benchmarks.translation",
    "tour": "benchmarks.tour",
    "app": "benchmarks.app",
    "deploy": "benchmarks.deploy",
}
RESULTS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = "| date | machine | command | results |\n|---|---|---|---|\n"


def machine() -> str:
    """CPU model and cores, plus the GPU if one is visible."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def commit() -> str:
    """The checked-out commit (with + when the tree has changes), or '' outside git."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f" @ {rev}{'+' if dirty else ''}"


@dataclasses.dataclass
class BenchConfig:
    name: Positional[Literal[tuple(BENCHMARKS)]]
    """The benchmark to run."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N | mps."""
    data_dir: str | None = None
    """Data root (default: $SHOWCASE_DATA, else the user cache dir)."""
    keep_runs: str | None = None
    """Keep each trained run in DIR/<model> (ours with the default config in DIR/default)."""
    quick: bool = False
    """A short run that checks the benchmark works; not recorded."""
    loso: bool = True
    """speech-ctc: also the six leave-one-speaker-out runs (six times the default run)."""


def main() -> None:
    try:
        args = parse(BenchConfig, sys.argv[1:], prog="python -m benchmarks")
    except UsageError as exc:
        print(f"python -m benchmarks: usage error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(BENCHMARKS[args.name])
    # The peers' libraries come with the bench extra: say so before anything trains.
    missing = [m for m in getattr(module, "NEEDS", ()) if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(
            f"python -m benchmarks {args.name} needs {', '.join(missing)}: "
            f'pip install -e ".[bench]"'
        )
    try:
        metrics = module.run(args)
    except ShowcaseError as exc:  # e.g. a --keep-runs DIR that already holds one of its runs
        print(f"python -m benchmarks {args.name}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if not args.quick:
        before = (
            RESULTS.read_text()
            if RESULTS.exists()
            else (
                "# Benchmark results\n\nOne row per run of `python -m benchmarks <name>`.\n\n"
                + HEADER
            )
        )
        row = f"| {datetime.date.today()} | {machine()} | `{command}`{commit()} | {json.dumps(metrics)} |\n"
        write_text(RESULTS, before + row)  # atomic: an interrupted run never truncates the table
    print(json.dumps({"name": args.name, "metrics": metrics}))


if __name__ == "__main__":
    main()
