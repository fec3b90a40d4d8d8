"""Small datasets live in tensors on the training device and are batched by indexing.

Every epoch is a fresh permutation drawn from (seed, epoch), so the order is the same on every
rank and after a resume. Each optimizer step consumes `batch_size` samples in total; each rank
takes its own slice of every micro-batch, so N processes see exactly the batches one would.
"""

from collections.abc import Iterator

import torch

from core import distributed
from core.errors import ShowcaseError


class TensorLoader:
    """Endless shuffled micro-batches of aligned tensors, sharded over ranks."""

    def __init__(
        self,
        tensors: tuple[torch.Tensor, ...],
        batch_size: int,
        *,
        grad_accum: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError("all tensors must have the same first dimension")
        world = distributed.world_size()
        if batch_size % (grad_accum * world):
            raise ShowcaseError(
                f"--batch-size {batch_size} must be divisible by --grad-accum x processes "
                f"({grad_accum} x {world})"
            )
        self.chunk = batch_size // grad_accum  # samples per micro-step, all ranks together
        if self.chunk > n:
            raise ShowcaseError(
                f"--batch-size {batch_size} is larger than the dataset ({n} samples)"
            )
        self.per_rank = self.chunk // world
        self.grad_accum = grad_accum
        self.tensors = tuple(t.to(device) if device is not None else t for t in tensors)
        self.shuffle, self.seed = shuffle, seed
        self.epoch, self.pos = 0, 0
        self.steps_per_epoch = n // self.chunk

    @classmethod
    def for_config(
        cls, tensors: tuple[torch.Tensor, ...], cfg, *, shuffle: bool = True, device=None
    ) -> "TensorLoader":
        """A loader with the config's --batch-size, --grad-accum and --seed."""
        return cls(
            tensors,
            cfg.batch_size,
            grad_accum=cfg.grad_accum,
            shuffle=shuffle,
            seed=cfg.seed,
            device=device,
        )

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])

    def _order(self) -> torch.Tensor:
        n = len(self.tensors[0])
        if not self.shuffle:
            return torch.arange(n)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=gen)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        start = distributed.rank() * self.per_rank
        while True:
            order = self._order().to(self.tensors[0].device)
            while self.pos + self.chunk <= len(order):
                idx = order[self.pos + start : self.pos + start + self.per_rank]
                self.pos += self.chunk
                yield tuple(t[idx] for t in self.tensors)
            self.epoch, self.pos = self.epoch + 1, 0
