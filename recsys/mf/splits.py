"""Train/test splits of MovieLens ratings: ml-100k's split files, the NCF leave-latest-out
split, seeded k-fold partitions, validation carved from training, and sampled negatives."""

import torch

from core.errors import DataError
from recsys.mf.data import Ratings, load_ratings, synthetic_ratings


def split_data(
    data_dir: str | None,
    dataset: str,
    split: str | None,
    fold: int,
    seed: int,
    synthetic: bool = False,
) -> tuple[Ratings, Ratings]:
    """(train, test) ratings: an ml-100k split file pair (`u1`..`u5`, `ua`, `ub`), the NCF
    leave-latest-out split (`ncf`), or fold `fold` of a fixed 5-fold partition (split None)."""
    if synthetic:
        data = synthetic_ratings(seed=seed)
        folds = kfold(len(data.ratings), 5, seed)
        return data.subset(torch.cat(folds[1:])), data.subset(folds[0])
    if split == "ncf":
        return leave_latest_out(load_ratings(data_dir, dataset))
    if split:
        return (
            load_ratings(data_dir, dataset, f"{split}.base"),
            load_ratings(data_dir, dataset, f"{split}.test"),
        )
    data = load_ratings(data_dir, dataset)
    folds = kfold(len(data.ratings), 5, seed=0)
    train = torch.cat([f for k, f in enumerate(folds) if k != fold])
    return data.subset(train), data.subset(folds[fold])


def carve_validation(train: Ratings, fraction: float, seed: int) -> tuple[Ratings, Ratings]:
    """(fit, validation) parts of the training ratings, fixed by the seed."""
    order = torch.randperm(len(train.ratings), generator=torch.Generator().manual_seed(seed + 1))
    n_val = int(fraction * len(order))
    return train.subset(order[n_val:]), train.subset(order[:n_val])


def kfold(n: int, folds: int, seed: int) -> list[torch.Tensor]:
    """A random partition of range(n) into `folds` index tensors."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(order.chunk(folds))


def leave_latest_out(data: Ratings) -> tuple[Ratings, Ratings]:
    """The NCF protocol's split: each user's latest rating is held out, the rest is training.

    The latest is the rating with the largest timestamp; of several at the same second, the one
    on the later line of the ratings file. A max over unique keys (timestamp, line) per user is
    a deterministic reduction, whatever the thread count.
    """
    n = len(data.ratings)
    key = data.timestamps * n + torch.arange(n)  # unique; larger = later (ties: later line)
    latest = torch.full((data.num_users,), -1, dtype=torch.long)
    latest = latest.scatter_reduce(0, data.users, key, reduce="amax")
    held = torch.zeros(n, dtype=torch.bool)
    held[latest[latest >= 0] % n] = True
    return data.subset((~held).nonzero().flatten()), data.subset(held.nonzero().flatten())


def sample_negatives(data: Ratings, users: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """(B, count) items that each user never rated, drawn uniformly without replacement."""
    rated = torch.zeros(data.num_users, data.num_items, dtype=torch.bool)
    rated[data.users, data.items] = True
    gen = torch.Generator().manual_seed(seed)
    weights = (~rated[users]).float()  # (B, I)
    fewest = int(weights.sum(1).min()) if len(users) else count
    if fewest < count:
        raise DataError(
            f"the ranking protocol ranks each held-out item against {count} items its user never "
            f"rated; a user here has only {fewest} (a larger catalog, or --method bayes or map)"
        )
    return torch.multinomial(weights, count, replacement=False, generator=gen)
