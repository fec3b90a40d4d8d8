"""Batches of variable-length samples (speech, text), grouped by length so that little is padding.

    loader = LengthLoader(lengths, collate, cfg.batch_size, max_tokens=20_000, seed=cfg.seed)
    for batch in loader: ...                # endless; collate(indices) builds each padded batch

Every epoch, the samples are shuffled by (seed, epoch), sorted by length inside pools of about 50
batches, cut into batches of at most `batch_size` samples and `max_tokens` padded elements (the
longest sample times the count, all ranks together), and the batches are shuffled again. The order
is the same on every rank and after a resume; each rank collates its own share of every batch, so
N processes see exactly the batches one would.
"""

from collections.abc import Callable, Iterator
from typing import Any

import torch

from core import distributed
from core.errors import ShowcaseError


class LengthLoader:
    """Endless, length-grouped, shuffled batches of sample indices, collated by the caller."""

    def __init__(
        self,
        lengths: torch.Tensor,
        collate: Callable[[torch.Tensor], Any],
        batch_size: int,
        *,
        max_tokens: int = 0,
        grad_accum: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        pool: int = 50,
    ) -> None:
        self.lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
        if len(self.lengths) == 0:
            raise ShowcaseError("no samples to batch")
        world = distributed.world_size()
        if batch_size % grad_accum:
            raise ShowcaseError(
                f"--batch-size {batch_size} must be divisible by --grad-accum {grad_accum}"
            )
        self.chunk = batch_size // grad_accum  # samples per micro-batch, all ranks together
        self.max_tokens = max_tokens // grad_accum if max_tokens else 0
        longest = int(self.lengths.max())
        if self.max_tokens and self.max_tokens < world * longest:
            raise ShowcaseError(
                f"a budget of {self.max_tokens} padded elements per micro-batch cannot hold "
                f"{world} sample(s) of the longest length {longest}: raise it"
            )
        if self.chunk < world:
            raise ShowcaseError(
                f"--batch-size {batch_size} gives a rank no samples ({world} processes)"
            )
        self.collate, self.grad_accum, self.seed, self.shuffle = collate, grad_accum, seed, shuffle
        self.pool = pool * self.chunk
        self.epoch, self.pos = 0, 0

    @classmethod
    def for_config(cls, lengths, collate, cfg, *, max_tokens: int = 0, shuffle: bool = True):
        """A loader with the config's --batch-size, --grad-accum and --seed."""
        return cls(
            lengths,
            collate,
            cfg.batch_size,
            max_tokens=max_tokens,
            grad_accum=cfg.grad_accum,
            seed=cfg.seed,
            shuffle=shuffle,
        )

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])

    def batches(self, epoch: int) -> list[torch.Tensor]:
        """The batches (index tensors, longest first inside each) of one epoch."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = len(self.lengths)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        batches: list[torch.Tensor] = []
        world = distributed.world_size()
        for pool in order.split(self.pool):
            pool = pool[torch.argsort(self.lengths[pool], descending=True, stable=True)]
            start = 0
            while start < len(pool):
                size = min(self.chunk, len(pool) - start)
                if self.max_tokens:  # the first (longest) sample sets the padded length
                    size = min(size, self.max_tokens // int(self.lengths[pool[start]]))
                size = max(size, min(world, len(pool) - start))
                batches.append(pool[start : start + size])
                start += size
        batches = [b for b in batches if len(b) >= world]  # a tail too small to share is dropped
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen)]
        return batches

    def __iter__(self) -> Iterator[Any]:
        rank, world = distributed.rank(), distributed.world_size()
        while True:
            batches = self.batches(self.epoch)
            while self.pos < len(batches):
                batch = batches[self.pos]
                self.pos += 1
                yield self.collate(batch[rank::world])
            self.epoch, self.pos = self.epoch + 1, 0
