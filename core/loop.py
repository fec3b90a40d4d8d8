"""The one training loop: a domain supplies `step(model, batch) -> (loss, metrics)`.

    device = setup(cfg)                      # device, seeds, process group, run-dir checks
    result = fit(model, step, loader, cfg, device=device, evaluate=evaluate, monitor="val_acc")

`fit` counts in optimizer steps and owns autocast, gradient scaling and accumulation, clipping,
the learning-rate schedule, evaluation with best-weights tracking and early stopping, the
non-finite-loss guard, DDP, logging and checkpoints that resume bit-exactly.
"""

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from core import config as config_mod
from core import distributed
from core.checkpoint import load_weights, save_weights
from core.config import TrainConfig
from core.device import amp_dtype, pick_device
from core.errors import ShowcaseError
from core.logger import RunLogger
from core.metrics import Mean
from core.run import BEST, CHECKPOINT, REPORT, WEIGHTS, Run, RunState, check_run_dir, start_from
from core.seed import seed_everything
from core.watch import LossWatch, Samples

__all__ = ["BEST", "CHECKPOINT", "REPORT", "WEIGHTS", "FitResult", "fit", "setup"]

StepFn = Callable[[nn.Module, tuple], tuple[torch.Tensor, dict[str, torch.Tensor]]]
EvalFn = Callable[[nn.Module], dict[str, float]]


@dataclass
class FitResult:
    steps: int
    wall_seconds: float
    best: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    weights_step: int = 0
    """The step the returned weights come from (the best one when a metric is monitored)."""


def setup(cfg: TrainConfig) -> torch.device:
    """Pick the device, join torchrun's process group, seed this rank, guard the run directory."""
    device = distributed.setup(pick_device(cfg.device))
    seed_everything(cfg.seed, cfg.deterministic, rank=distributed.rank())
    check_run_dir(cfg)
    if distributed.is_main():
        config_mod.save(cfg, Path(cfg.out_dir) / "config.json")
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


def check_loader(loader, cfg: TrainConfig) -> None:
    """The loader contract: iterable without end, `state_dict`/`load_state_dict` for exact resume,
    and (where it says) built for this config's --grad-accum."""
    missing = [m for m in ("__iter__", "state_dict", "load_state_dict") if not hasattr(loader, m)]
    if missing:
        raise ShowcaseError(
            f"fit needs an endless loader with {', '.join(missing)} for exact resume "
            f"(like core.TensorLoader); got {type(loader).__name__}"
        )
    accum = getattr(loader, "grad_accum", cfg.grad_accum)
    if accum != cfg.grad_accum:
        raise ShowcaseError(
            f"the loader was built for grad_accum {accum} but --grad-accum is {cfg.grad_accum}: "
            "build it with TensorLoader.for_config(tensors, cfg)"
        )


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
    Under torchrun every rank calls `evaluate`; wrap it in `distributed.on_main` for rank 0 alone.
    """
    check_loader(loader, cfg)
    start_from(model, cfg)
    model.to(device)
    ddp = DistributedDataParallel(model) if distributed.world_size() > 1 else None  # rank 0's init
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_fn(cfg))
    dtype = amp_dtype(device, cfg.amp_dtype) if cfg.amp else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    amp = {"dtype": dtype or torch.bfloat16, "enabled": dtype is not None}  # for torch.autocast
    ema = moving_average(model, cfg.ema)
    final = ema.module if ema else model  # what is evaluated and kept
    saved = nn.ModuleDict({"net": model, "ema": ema}) if ema else model
    run = Run(cfg, saved, optimizer, scheduler, scaler, loader)
    state = run.state
    train_model = torch.compile(ddp or model) if cfg.compile else (ddp or model)
    logger = RunLogger(run.dir, cfg.max_steps, state.step, distributed.is_main(), cfg.tensorboard)
    watch = LossWatch(device, run.last_checkpoint)
    meter, samples, batches = Mean(), Samples(), iter(loader)
    timed_out = False  # not saved as `stopped`: a --resume trains on with a fresh time budget
    try:
        with run.interruptible():
            while state.step < cfg.max_steps and not state.stopped and not timed_out:
                train_model.train()
                for micro in range(cfg.grad_accum):
                    batch = next_batch(batches, state.step)
                    samples.add(batch)
                    syncing = ddp is None or micro == cfg.grad_accum - 1
                    with contextlib.nullcontext() if syncing else ddp.no_sync():
                        with torch.autocast(device.type, **amp):
                            loss, metrics = step(train_model, batch)
                        watch.push(state.step + 1, loss)
                        scaler.scale(loss / cfg.grad_accum).backward()
                    meter.add({"loss": loss, **metrics})
                lr = optimizer.param_groups[0]["lr"]  # the rate this step is taken with
                update(model, optimizer, scheduler, scaler, ema, cfg.grad_clip)
                state.step += 1
                logger.advance(1)
                timed_out = out_of_time(run, cfg.max_seconds)
                last = state.step == cfg.max_steps or state.stopped or timed_out
                if state.step % cfg.log_every == 0 or last:
                    watch.check()
                    rates = {"lr": lr, "samples_per_s": samples.rate()}
                    logger.log("train", state.step, {**meter.compute(), **rates})
                if evaluate and (last or (cfg.eval_every and state.step % cfg.eval_every == 0)):
                    metrics = evaluate_on_rank0(evaluate, final)
                    logger.log("eval", state.step, metrics)
                    if track(metrics, state, monitor, mode, cfg.patience) and distributed.is_main():
                        meta = {"step": state.step, "metrics": metrics}
                        save_weights(final, run.dir / BEST, meta)
                run.end_step(last=last or state.stopped, before_save=watch.check)
            watch.check()
    finally:
        logger.close()

    weights_step = keep_weights(run, model, final, monitor is not None)
    return FitResult(
        steps=state.step,
        wall_seconds=run.seconds(),
        best=dict(state.metrics),
        stopped_early=state.step < cfg.max_steps,
        weights_step=weights_step,
    )


def moving_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of the weights and batch-norm statistics, which is then what
    gets evaluated and saved (None for --ema 0)."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def keep_weights(run: Run, model: nn.Module, final: nn.Module, best: bool) -> int:
    """The end of a run: `final` (the model or its average) takes the best evaluated weights when
    a metric was monitored (`best`), the caller's model gets them too, rank 0 writes them as
    model.safetensors. Returns the step they come from."""
    distributed.barrier()  # every rank, always: rank 0 has written best.safetensors by now
    state, weights_step = run.state, run.state.step
    if best and state.best_step is not None:
        load_weights(final, run.dir / BEST)
        weights_step = state.best_step
    if final is not model:
        model.load_state_dict(final.state_dict())  # the caller's model ends with the kept weights
    if distributed.is_main():
        meta = {
            "config": config_mod.to_dict(run.cfg),
            "step": weights_step,
            "metrics": state.metrics,
        }
        save_weights(final, run.dir / WEIGHTS, meta)
    distributed.barrier()
    return weights_step


def out_of_time(run: Run, max_seconds: float) -> bool:
    """True once this segment of the run (since its start or --resume) has trained `max_seconds`
    (rank 0's clock decides for every rank)."""
    return bool(max_seconds) and distributed.broadcast_object(run.segment_seconds() >= max_seconds)


def next_batch(batches, step: int):
    """The next batch; a loader that runs dry breaks the endless-loader contract."""
    try:
        return next(batches)
    except StopIteration:
        raise ShowcaseError(
            f"the loader ran out of batches at step {step}: fit needs an endless loader "
            "(like core.TensorLoader) so that runs count in steps"
        ) from None


def update(model: nn.Module, optimizer, scheduler, scaler, ema, grad_clip: float) -> None:
    """One optimizer step from the accumulated gradients: unscale, clip, step, average, decay."""
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    if ema is not None:
        ema.update_parameters(model)
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()


def evaluate_on_rank0(evaluate: EvalFn, model: nn.Module) -> dict[str, float]:
    """Evaluate in eval mode without gradients, then take rank 0's numbers everywhere, so that
    every rank decides alike. `evaluate` is called on every rank, so that it may shard the data and
    reduce over ranks; one wrapped in `distributed.on_main` runs on rank 0 alone."""
    model.eval()
    with torch.no_grad():
        metrics = evaluate(model)
    return distributed.broadcast_object(metrics)


def track(metrics: dict, state: RunState, monitor: str | None, mode: str, patience: int) -> bool:
    """Record an evaluation in `state`; True when it is the best so far of the monitored metric.
    After `patience` evaluations without improvement the run is marked stopped."""
    if monitor is None:
        state.metrics = metrics
        return False
    if monitor not in metrics:
        raise ShowcaseError(f"monitored metric {monitor!r} is not among {sorted(metrics)}")
    value, best = metrics[monitor], state.best
    if best is None or (value > best if mode == "max" else value < best):
        state.best, state.best_step, state.metrics, state.bad_evals = value, state.step, metrics, 0
        return True
    state.bad_evals += 1
    if patience and state.bad_evals >= patience:
        state.stopped = True
    return False
