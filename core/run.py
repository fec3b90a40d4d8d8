"""A run's typed state and its checkpoints: what `fit`, the Gibbs sampler and the RL loop share.

    run = Run(cfg, model, optimizer)          # on --resume: restores everything, checks the config
    with run.interruptible():                 # Ctrl-C: a checkpoint at the next step boundary
        while run.state.step < cfg.max_steps:
            ...                               # one step
            run.state.step += 1
            run.end_step()                    # writes a checkpoint every --ckpt-every steps

The run directory holds `config.json`, `checkpoint.safetensors` (weights, optimizer, scheduler,
every rank's RNG states, the loader position and this state), `best.safetensors` and the final
`model.safetensors`. A finished run is read back with `load_run_weights`, `run_config` and
`run_step` (eval, predict, the app).
"""

import contextlib
import dataclasses
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch import nn

from core import config as config_mod
from core import distributed
from core.checkpoint import load_checkpoint, load_weights, read_meta, rng_state, save_checkpoint
from core.errors import ShowcaseError
from core.transfer import freeze, init_from

CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
WEIGHTS = "model.safetensors"
REPORT = "metrics.json"


@dataclasses.dataclass
class RunState:
    """Everything a loop needs to continue exactly where it stopped (besides tensors)."""

    step: int = 0
    """Steps done (optimizer steps, Gibbs sweeps or environment steps)."""
    wall_seconds: float = 0.0
    """Training time so far, summed over every resumed segment."""
    best: float | None = None
    """Best value of the monitored metric so far."""
    best_step: int | None = None
    """The step whose weights scored `best` (kept in best.safetensors)."""
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    """The evaluation that scored `best` (the latest one when no metric is monitored)."""
    bad_evals: int = 0
    """Evaluations in a row without improvement (early stopping)."""
    stopped: bool = False
    """Early stopping ended the run."""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """A loop's own counters (RL: updates, learning curve, solve step)."""


class Run:
    """Holds a run's state and writes and restores its checkpoints.

    `modules` is what the checkpoint holds (a ModuleDict for several networks); `loader` may be
    None, or anything with `state_dict()`/`load_state_dict()`. Every rank constructs it and calls
    `save` (the RNG states of all ranks are gathered); rank 0 writes.
    """

    def __init__(
        self, cfg, modules: nn.Module, optimizer=None, scheduler=None, scaler=None, loader=None
    ) -> None:
        self.cfg, self.dir = cfg, Path(cfg.out_dir)
        self.parts = (modules, optimizer, scheduler, scaler)
        self.loader = loader
        self.state = RunState()
        self.saved_step: int | None = None
        self.interrupted = False
        if cfg.resume:
            where = {"rank": distributed.rank(), "world": distributed.world_size()}
            extra = load_checkpoint(self.dir / CHECKPOINT, *self.parts, **where)
            self.state = RunState(**extra["state"])
            if loader is not None:
                loader.load_state_dict(extra["loader"])
            self.saved_step = self.state.step
            if self.state.stopped and cfg.max_steps > extra["config"]["max_steps"]:
                self.state.stopped, self.state.bad_evals = False, 0  # more steps: train on
        self._t0, self._before = time.perf_counter(), self.state.wall_seconds
        self._ended = self.state.step

    def seconds(self) -> float:
        """Training seconds so far, earlier segments of a resumed run included."""
        return self._before + self.segment_seconds()

    def segment_seconds(self) -> float:
        """Training seconds since this process started or resumed the run."""
        return time.perf_counter() - self._t0

    def save(self) -> None:
        """Write the checkpoint (every rank calls this)."""
        self.state.wall_seconds = self.seconds()
        extra = {"state": dataclasses.asdict(self.state), "config": config_mod.to_dict(self.cfg)}
        if self.loader is not None:
            extra["loader"] = self.loader.state_dict()
        rngs = distributed.all_gather_object(rng_state())  # every rank's random streams
        if distributed.is_main():
            save_checkpoint(self.dir / CHECKPOINT, *self.parts, extra, rngs)
        self.saved_step = self.state.step

    def end_step(self, last: bool = False, before_save: Callable[[], None] | None = None) -> None:
        """After a step: a checkpoint on schedule, at the end, or on Ctrl-C (then re-raised).
        `before_save` runs first (e.g. a check that the weights are still finite)."""
        step, every = self.state.step, self.cfg.ckpt_every
        due = every and step // every > self._ended // every  # a loop may advance several steps
        self._ended = step
        if last or self.interrupted or due:
            if before_save is not None:
                before_save()
            self.save()
        if self.interrupted:
            raise KeyboardInterrupt

    def last_checkpoint(self) -> str:
        """Where the run can continue from, in words."""
        if self.saved_step is None:
            return "none written yet"
        return f"{self.dir / CHECKPOINT} (step {self.saved_step})"

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Turn Ctrl-C into a checkpoint at the next step boundary instead of a torn step.

        In one process only: under torchrun the ranks could see the signal at different steps."""
        if (
            distributed.world_size() > 1
            or threading.current_thread() is not threading.main_thread()
        ):
            yield
            return

        def handler(signum, frame):
            if self.interrupted:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def check_run_dir(cfg) -> None:
    """Refuse to overwrite a finished run, to resume nothing, or to resume with a changed config."""
    run_dir = Path(cfg.out_dir)
    ckpt = run_dir / CHECKPOINT
    if cfg.resume:
        if not ckpt.exists():
            raise ShowcaseError(f"nothing to resume: {ckpt} does not exist")
        meta = read_meta(ckpt)
        why = config_mod.resume_mismatch(cfg, meta.get("config", {}))
        if why:
            raise ShowcaseError(f"cannot resume {run_dir}: {why}; start a new --out-dir instead")
        done = meta.get("state", {}).get("step", 0)
        if cfg.max_steps < done:
            raise ShowcaseError(
                f"cannot resume {run_dir}: it is at step {done}, past --max-steps {cfg.max_steps}"
            )
    elif (run_dir / REPORT).exists() or ckpt.exists():
        raise ShowcaseError(
            f"{run_dir} already holds a run: pass --resume to continue it or choose a new --out-dir"
        )


def finished_weights(run_dir: Path) -> Path:
    """The path of a finished run's weights (`model.safetensors`), or a one-line error."""
    path = Path(run_dir) / WEIGHTS
    if not path.exists():
        raise ShowcaseError(
            f"no trained model in {run_dir}: run `train` first or pass its --out-dir"
        )
    return path


def load_run_weights(model: nn.Module, run_dir: Path) -> dict:
    """Load a finished run's weights into `model`; return their metadata."""
    return load_weights(model, finished_weights(run_dir))


def run_config(run_dir: Path) -> dict:
    """The config a run was trained with, from its weights file's metadata (no tensors read)."""
    return read_meta(finished_weights(run_dir)).get("config", {})


def run_step(run_dir: Path) -> int:
    """The training step a finished run's weights come from (0 for weights that do not say)."""
    return read_meta(finished_weights(run_dir)).get("step", 0)


def check_task(run_dir: Path, task: str) -> None:
    """Refuse, in one line, a folder without a finished run or with another demo's run (as its
    metrics.json names it; a run without one is taken as asked)."""
    finished_weights(run_dir)
    try:
        found = json.loads((Path(run_dir) / REPORT).read_text()).get("task")
    except (OSError, json.JSONDecodeError):
        return
    if found and found != task:
        raise ShowcaseError(
            f"{run_dir} holds a {found} run, not {task}: pass that demo's --out-dir"
        )


def hub_folder(source: str, flag: str, patterns: list[str] | None = None) -> Path:
    """The local copy of the Hub model `hf:owner/name` (fetched once, then cached by
    huggingface_hub); offline, unknown or private, one line naming `flag`."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source.removeprefix("hf:"), allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repository, no access: one line
        raise ShowcaseError(
            f"{flag} {source}: cannot fetch it from the Hugging Face Hub "
            f"({type(exc).__name__}); download the folder and pass its path"
        ) from None


def source_weights(source: str) -> Path:
    """The weights file `source` names: a run folder, a Hub-style model folder (`model.safetensors`
    inside) or a `.safetensors` file; `hf:owner/name` is fetched from the Hugging Face Hub."""
    if source.startswith("hf:"):
        return hub_folder(source, "--init-from", ["*.safetensors", "*.json"]) / WEIGHTS
    path = Path(source)
    path = path / WEIGHTS if path.is_dir() else path
    if not path.is_file():
        raise ShowcaseError(f"--init-from {source}: no {WEIGHTS} there (a finished run's folder?)")
    return path


def start_from(model: nn.Module, cfg) -> None:
    """--init-from (a fresh run only: a resumed one has its checkpoint) and --freeze, before the
    optimizer's first step."""
    if cfg.init_from and not cfg.resume:
        init_from(model, source_weights(cfg.init_from), cfg.init_from)
    if cfg.freeze:
        freeze(model, cfg.freeze)
