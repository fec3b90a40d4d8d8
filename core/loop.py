"""The one training loop: a domain supplies `step(model, batch) -> (loss, metrics)`.

    device = setup(cfg)                      # device, seeds, process group, run-dir checks
    result = fit(model, step, loader, cfg, device=device, evaluate=evaluate, monitor="val_acc")

`fit` counts in optimizer steps and owns autocast, gradient scaling and accumulation, clipping,
the learning-rate schedule, evaluation with best-weights tracking and early stopping, the
non-finite-loss guard, DDP, logging and checkpoints that resume bit-exactly.
"""

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from core import config as config_mod
from core import distributed
from core.checkpoint import load_checkpoint, load_weights, read_file, save_checkpoint, save_weights
from core.config import TrainConfig
from core.device import amp_dtype, pick_device
from core.errors import ShowcaseError
from core.logger import RunLogger
from core.metrics import Mean
from core.seed import seed_everything

StepFn = Callable[[nn.Module, tuple], tuple[torch.Tensor, dict[str, torch.Tensor]]]
EvalFn = Callable[[nn.Module], dict[str, float]]

CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
WEIGHTS = "model.safetensors"
REPORT = "metrics.json"


@dataclass
class FitResult:
    steps: int
    wall_seconds: float
    best: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


def setup(cfg: TrainConfig) -> torch.device:
    """Pick the device, seed everything, join torchrun's process group, guard the run directory."""
    device = distributed.setup(pick_device(cfg.device))
    seed_everything(cfg.seed, cfg.deterministic)
    run_dir = Path(cfg.out_dir)
    ckpt = run_dir / CHECKPOINT
    if cfg.resume and not ckpt.exists():
        raise ShowcaseError(f"nothing to resume: {ckpt} does not exist")
    if not cfg.resume and ((run_dir / REPORT).exists() or ckpt.exists()):
        raise ShowcaseError(
            f"{run_dir} already holds a run: pass --resume to continue it or choose a new --out-dir"
        )
    if distributed.is_main():
        config_mod.save(cfg, run_dir / "config.json")
    return device


def schedule_fn(cfg: TrainConfig) -> Callable[[int], float]:
    """Multiplier of --lr after `step` optimizer steps: linear warmup, then the decay."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        if cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        if cfg.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 1.0

    return factor


def fit(
    model: nn.Module,
    step: StepFn,
    loader,
    cfg: TrainConfig,
    *,
    device: torch.device,
    evaluate: EvalFn | None = None,
    monitor: str | None = None,
    mode: str = "max",
    optimizer: torch.optim.Optimizer | None = None,
) -> FitResult:
    """Train `model` for `cfg.max_steps` optimizer steps; return steps, time and best metrics.

    When `monitor` names a metric of `evaluate`, the best weights are kept and restored at the end.
    """
    run_dir = Path(cfg.out_dir)
    main_rank = distributed.is_main()
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_fn(cfg))
    dtype = amp_dtype(device, cfg.amp_dtype) if cfg.amp else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    state = {
        "step": 0,
        "best": None,
        "best_metrics": {},
        "bad_evals": 0,
        "stopped": False,
        "wall_seconds": 0.0,
    }
    # An exponential moving average of the weights (and BN statistics) is what gets evaluated and saved.
    ema = None
    if cfg.ema:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    saved = nn.ModuleDict({"net": model, "ema": ema}) if ema else model  # what checkpoints hold
    final = ema.module if ema else model  # what is evaluated and kept
    if cfg.resume:
        extra = load_checkpoint(run_dir / CHECKPOINT, saved, optimizer, scheduler, scaler)
        state.update(extra["state"])
        loader.load_state_dict(extra["loader"])

    ddp = DistributedDataParallel(model) if distributed.world_size() > 1 else None
    train_model = ddp or model
    if cfg.compile:
        train_model = torch.compile(train_model)
    logger = RunLogger(run_dir, cfg.max_steps, state["step"], main_rank, cfg.tensorboard)
    meter = Mean()
    last_ckpt = state["step"] if cfg.resume else None
    batches = iter(loader)
    t_start = t_log = time.perf_counter()
    wall_before, step_at_log = state["wall_seconds"], state["step"]

    def where() -> str:
        return (
            f"{run_dir / CHECKPOINT} (step {last_ckpt})"
            if last_ckpt is not None
            else "none written yet"
        )

    watch = LossWatch(device, where)

    def checkpoint() -> None:
        nonlocal last_ckpt
        watch.check()  # never save weights that a non-finite loss has touched
        state["wall_seconds"] = wall_before + time.perf_counter() - t_start
        if main_rank:
            extra = {
                "state": state,
                "loader": loader.state_dict(),
                "config": config_mod.to_dict(cfg),
            }
            save_checkpoint(run_dir / CHECKPOINT, saved, optimizer, scheduler, scaler, extra)
        last_ckpt = state["step"]

    try:
        while state["step"] < cfg.max_steps and not state["stopped"]:
            train_model.train()
            for micro in range(cfg.grad_accum):
                batch = next(batches)
                syncing = ddp is None or micro == cfg.grad_accum - 1
                with contextlib.nullcontext() if syncing else ddp.no_sync():
                    with torch.autocast(
                        device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None
                    ):
                        loss, metrics = step(train_model, batch)
                    watch.push(state["step"] + 1, loss)
                    scaler.scale(loss / cfg.grad_accum if cfg.grad_accum > 1 else loss).backward()
                meter.add({"loss": loss, **metrics})
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update_parameters(model)
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            state["step"] += 1
            now_step = state["step"]
            logger.advance(1)
            if now_step % cfg.log_every == 0 or now_step == cfg.max_steps:
                watch.check()
                now = time.perf_counter()
                speed = (now_step - step_at_log) * cfg.batch_size / max(now - t_log, 1e-9)
                lr = scheduler.get_last_lr()[0]
                logger.log("train", now_step, {**meter.compute(), "lr": lr, "samples_per_s": speed})
                t_log, step_at_log = time.perf_counter(), now_step
            if evaluate and (
                now_step == cfg.max_steps or (cfg.eval_every and now_step % cfg.eval_every == 0)
            ):
                _evaluate_and_track(evaluate, final, state, monitor, mode, cfg, run_dir, logger)
            if (
                now_step == cfg.max_steps
                or state["stopped"]
                or (cfg.ckpt_every and now_step % cfg.ckpt_every == 0)
            ):
                checkpoint()
        watch.check()
    finally:
        logger.close()

    if monitor and (run_dir / BEST).exists():
        distributed.barrier()
        load_weights(final, run_dir / BEST)
    if ema is not None:
        model.load_state_dict(final.state_dict())  # the caller's model ends with the kept weights
    if main_rank:
        meta = {
            "config": config_mod.to_dict(cfg),
            "step": state["step"],
            "metrics": state["best_metrics"],
        }
        save_weights(final, run_dir / WEIGHTS, meta)
    distributed.barrier()
    return FitResult(
        steps=state["step"],
        wall_seconds=wall_before + time.perf_counter() - t_start,
        best=dict(state["best_metrics"]),
        stopped_early=bool(state["stopped"]) and state["step"] < cfg.max_steps,
    )


class LossWatch:
    """Stops on a non-finite loss, checked one step late so that the GPU never waits on the CPU
    (the value is copied to pinned memory asynchronously and read at the next step)."""

    def __init__(self, device: torch.device, last_checkpoint: Callable[[], str]) -> None:
        self.cuda = device.type == "cuda"
        self.value = torch.zeros((), pin_memory=self.cuda)
        self.event = torch.cuda.Event() if self.cuda else None
        self.step: int | None = None
        self.last_checkpoint = last_checkpoint

    def push(self, step: int, loss: torch.Tensor) -> None:
        self.check()
        self.value.copy_(loss.detach().float(), non_blocking=self.cuda)
        if self.event is not None:
            self.event.record()
        self.step = step

    def check(self) -> None:
        if self.step is None:
            return
        if self.event is not None:
            self.event.synchronize()
        value, step, self.step = self.value.item(), self.step, None
        if not math.isfinite(value):
            raise ShowcaseError(
                f"loss is {value} at step {step}; last good checkpoint: {self.last_checkpoint()}"
            )


def _evaluate_and_track(evaluate, model, state, monitor, mode, cfg, run_dir, logger) -> None:
    model.eval()
    with torch.no_grad():
        metrics = evaluate(model)
    logger.log("eval", state["step"], metrics)
    if monitor is None:
        state["best_metrics"] = metrics
        return
    if monitor not in metrics:
        raise ShowcaseError(f"monitored metric {monitor!r} is not among {sorted(metrics)}")
    value, best = metrics[monitor], state["best"]
    if best is None or (value > best if mode == "max" else value < best):
        state.update(best=value, best_metrics=metrics, bad_evals=0)
        if distributed.is_main():
            save_weights(model, run_dir / BEST, {"step": state["step"], "metrics": metrics})
    else:
        state["bad_evals"] += 1
        if cfg.patience and state["bad_evals"] >= cfg.patience:
            state["stopped"] = True


def load_run_weights(model: nn.Module, run_dir: Path) -> dict:
    """Load a finished run's weights (`model.safetensors`) into `model`; return their metadata."""
    path = Path(run_dir) / WEIGHTS
    if not path.exists():
        raise ShowcaseError(
            f"no trained model in {run_dir}: run `train` first or pass its --out-dir"
        )
    return load_weights(model, path)


def run_config(run_dir: Path) -> dict:
    """The config a run was trained with, read from its weights file."""
    return read_file(Path(run_dir) / WEIGHTS)[1].get("config", {})
