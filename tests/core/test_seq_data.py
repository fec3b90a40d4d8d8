"""The length-grouped loader: budgets, seeded order, exact resume, sharding over ranks."""

import pytest
import torch

from core.errors import ShowcaseError
from core.seq_data import LengthLoader

LENGTHS = torch.randint(5, 200, (500,), generator=torch.Generator().manual_seed(0))


def take(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def test_batches_respect_the_budget_and_group_lengths():
    loader = LengthLoader(LENGTHS, lambda idx: idx, 32, max_tokens=2000, seed=1)
    epoch = loader.batches(0)
    assert sorted(torch.cat(epoch).tolist()) == list(range(500))  # each sample once
    for batch in epoch:
        assert len(batch) <= 32 and len(batch) * LENGTHS[batch].max() <= 2000
    padded = sum(len(b) * LENGTHS[b].max().item() for b in epoch)
    assert padded < 1.3 * LENGTHS.sum().item()  # sorting inside pools keeps padding small


def test_order_is_seeded_and_resume_is_exact():
    first = take(LengthLoader(LENGTHS, lambda idx: idx, 32, seed=3), 25)  # crosses an epoch
    again = take(LengthLoader(LENGTHS, lambda idx: idx, 32, seed=3), 25)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = take(LengthLoader(LENGTHS, lambda idx: idx, 32, seed=4), 1)
    assert not torch.equal(first[0], other[0])
    loader = LengthLoader(LENGTHS, lambda idx: idx, 32, seed=3)
    take(loader, 20)
    resumed = LengthLoader(LENGTHS, lambda idx: idx, 32, seed=3)
    resumed.load_state_dict(loader.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(take(resumed, 5), first[20:], strict=True))


def test_ranks_share_each_batch(monkeypatch):
    import core.seq_data as seq_data

    whole = take(LengthLoader(LENGTHS, lambda idx: idx, 32, seed=5), 3)
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(seq_data.distributed, "world_size", lambda: 2)
        monkeypatch.setattr(seq_data.distributed, "rank", lambda r=rank: r)
        shares.append(take(LengthLoader(LENGTHS, lambda idx: idx, 32, seed=5), 3))
    for b, batch in enumerate(whole):
        together = torch.cat([shares[0][b], shares[1][b]])
        assert sorted(together.tolist()) == sorted(batch.tolist())


def test_a_budget_below_the_longest_sample_is_refused():
    with pytest.raises(ShowcaseError, match="cannot hold 1 sample"):
        LengthLoader(LENGTHS, lambda idx: idx, 32, max_tokens=100)
