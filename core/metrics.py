"""Running means that reduce across ranks, and the few metrics torchmetrics has no better form of."""

import torch

from core import distributed


class Mean:
    """Weighted running means of named scalars; `compute()` sums over all ranks, then resets."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, float] = {}

    def add(self, metrics: dict[str, torch.Tensor | float], n: float = 1.0) -> None:
        """Add each metric's value, weighted by `n` (e.g. the batch size)."""
        for key, value in metrics.items():
            value = value.detach() if torch.is_tensor(value) else torch.tensor(float(value))
            if key in self.sums:
                self.sums[key].add_(value, alpha=n)  # one in-place kernel per metric per step
            else:
                self.sums[key] = value.float() * n
            self.counts[key] = self.counts.get(key, 0.0) + n

    def compute(self) -> dict[str, float]:
        """The means so far, over every rank; clears the accumulator."""
        if not self.sums:
            return {}
        keys = sorted(self.sums)
        device = self.sums[keys[0]].device
        sums = torch.stack([self.sums[k].to(device) for k in keys])
        counts = torch.tensor([self.counts[k] for k in keys], device=device)
        means = distributed.all_reduce_sum(sums) / distributed.all_reduce_sum(counts)
        self.sums, self.counts = {}, {}
        return dict(zip(keys, means.tolist(), strict=True))


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose arg-max equals the target."""
    return (logits.argmax(-1) == targets).float().mean()
