"""torchrun + DDP, kept out of domain code: rank helpers and metric reduction.

Launch any demo with `torchrun --nproc_per_node N -m vision.classify train ...`; the loop then
wraps the model in DDP, shards the data and averages metrics, and only rank 0 logs and writes.
Work that every rank would repeat whole (decoding a validation or test set) runs on rank 0 alone
through `on_main`.
"""

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from core.errors import ShowcaseError

T = TypeVar("T")


def world_size() -> int:
    """Number of processes (1 without torchrun)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that logs and writes files."""
    return rank() == 0


def launched_processes() -> int:
    """How many processes torchrun started (1 without torchrun), before any process group exists."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def require_single_process(what: str) -> None:
    """Refuse, with one line, a torchrun launch of a job that runs whole on every rank."""
    if launched_processes() > 1:
        raise ShowcaseError(
            f"{what} runs in one process; start it without torchrun (got {launched_processes()} processes)"
        )


def setup(device: torch.device) -> torch.device:
    """Join the process group when started by torchrun; return this rank's device."""
    if launched_processes() <= 1:
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=None)
    return device


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all ranks (identity in one process)."""
    if world_size() == 1:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world_size() > 1:
        dist.barrier()


def broadcast_object(value: Any) -> Any:
    """Rank 0's `value` on every rank (identity in one process): one decision for all ranks."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order (a one-item list in one process)."""
    if world_size() == 1:
        return [value]
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def on_main(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` wrapped to run on rank 0 alone, its result sent to every rank (a plain call in one
    process). For work each rank would repeat whole, such as decoding a test set. `fn` must use
    no collectives, or rank 0 waits for ranks that wait for it (a torchmetrics metric object syncs
    over ranks unless built with `sync_on_compute=False`), and should return plain values (floats,
    strings). If it raises on rank 0, the other ranks raise a one-line ShowcaseError instead of
    waiting."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        if world_size() == 1:
            return fn(*args, **kwargs)
        outcome: tuple[Any, str | None] = (None, None)
        if is_main():
            try:
                outcome = (fn(*args, **kwargs), None)
            except Exception as exc:
                broadcast_object((None, " ".join(str(exc).split()) or type(exc).__name__))
                raise
        result, failure = broadcast_object(outcome)
        if failure is not None:
            raise ShowcaseError(f"rank 0 failed in {fn.__name__}: {failure}")
        return result

    return wrapper
