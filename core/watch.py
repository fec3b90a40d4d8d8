"""What the training loop keeps an eye on as it runs: a non-finite loss (read one step late, so the
GPU never waits) and the samples drawn per second."""

import math
import time
from collections.abc import Callable

import torch

from core import distributed
from core.errors import ShowcaseError


class LossWatch:
    """Stops on a non-finite loss, checked one step late so that the GPU never waits on the CPU
    (the value is copied to pinned memory asynchronously and read at the next step). Under
    torchrun the losses are summed over ranks first: one rank's NaN stops every rank together."""

    def __init__(self, device: torch.device, last_checkpoint: Callable[[], str]) -> None:
        self.cuda = device.type == "cuda"
        self.value = torch.zeros((), pin_memory=self.cuda)
        self.event = torch.cuda.Event() if self.cuda else None
        self.step: int | None = None
        self.last_checkpoint = last_checkpoint

    def push(self, step: int, loss: torch.Tensor) -> None:
        self.check()
        self.value.copy_(distributed.all_reduce_sum(loss.detach().float()), non_blocking=self.cuda)
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


class Samples:
    """Counts the samples of the batches really drawn (over all ranks) for samples/s."""

    def __init__(self) -> None:
        self.count, self.time = 0, time.perf_counter()

    def add(self, batch) -> None:
        first = batch
        while isinstance(first, tuple | list | dict):
            first = next(iter(first.values() if isinstance(first, dict) else first))
        self.count += len(first) * distributed.world_size()

    def rate(self) -> float:
        """Samples per second since the last call; resets the count."""
        now = time.perf_counter()
        rate = self.count / max(now - self.time, 1e-9)
        self.count, self.time = 0, now
        return rate
