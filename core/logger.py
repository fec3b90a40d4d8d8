"""One log line per interval from rank 0, a progress bar on a terminal, JSON lines on disk."""

import contextlib
import contextvars
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from core.errors import ShowcaseError
from core.files import write_text

# (stream, label) while `progress_to` is in force
_progress: contextvars.ContextVar[tuple[TextIO, str] | None] = contextvars.ContextVar(
    "progress", default=None
)


@contextlib.contextmanager
def progress_to(stream: TextIO, label: str) -> Iterator[None]:
    """Within it, each run's progress also goes to `stream`, named `label`: a bar when `stream` is
    a terminal, else each log line. `showcase tour` sends a run's output to its log file and
    shows its progress on the terminal this way."""
    token = _progress.set((stream, label))
    try:
        yield
    finally:
        _progress.reset(token)


class RunLogger:
    """Writes `log.jsonl` in the run directory and prints (or shows a bar) on rank 0.

    A run starting at step 0 starts a fresh log (a crashed run's lines in the folder go); a resumed
    one keeps the lines up to its checkpoint's step `start` and appends."""

    def __init__(
        self, run_dir: Path, total: int, start: int, enabled: bool, tensorboard: bool = False
    ):
        self.enabled = enabled
        self.bar = None
        self.tb = None
        if not enabled:
            return
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise ShowcaseError(
                    "--tensorboard needs the tensorboard package: pip install 'torch-showcase[tensorboard]'"
                ) from exc

            # TensorBoard hides the events of earlier writers from step `purge_step` on.
            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start + 1)
        path = run_dir / "log.jsonl"
        write_text(path, "".join(_lines_until(path, start)))
        self.file = open(path, "a")  # noqa: SIM115 (closed in close())
        progress = _progress.get()
        stream, label = progress or (sys.stderr, None)
        if stream.isatty():
            self.bar = tqdm(
                total=total,
                initial=start,
                dynamic_ncols=True,
                leave=False,
                file=stream,
                desc=label,
                unit="step",
            )
        # without a bar, the log lines show the progress (also on the terminal under the tour)
        self.echo = progress if progress and self.bar is None else None

    def log(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        """Record `metrics` at `step`; `kind` is `train` or `eval`."""
        if not self.enabled:
            return
        record: dict[str, Any] = {
            "kind": kind,
            "step": step,
            "time": round(time.time(), 3),
            **metrics,
        }
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        line = f"{kind} step {step} | " + " | ".join(_fmt(k, v) for k, v in metrics.items())
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)
        if self.echo is not None:
            stream, label = self.echo
            print(f"  {label}: {line}", file=stream, flush=True)
        if self.tb is not None:
            for key, value in metrics.items():
                self.tb.add_scalar(f"{kind}/{key}", value, step)

    def advance(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        self.file.close()


def _lines_until(path: Path, step: int) -> list[str]:
    """The lines of the log at `path` up to `step` (none when `step` is 0 or there is no log)."""
    if step == 0 or not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return [line.rstrip("\n") + "\n" for line in lines if _step(line) <= step]


def _step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # a line torn by the crash goes too


def _fmt(key: str, value: float) -> str:
    if key == "samples_per_s":
        return f"{value:,.0f} samples/s"
    if key == "lr":
        return f"lr {value:.2e}"
    return f"{key} {value:.4g}"
