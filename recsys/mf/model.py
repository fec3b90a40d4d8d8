"""Biased matrix factorization, optionally with the SVD++ implicit-feedback term.

    r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)

MovieLens' whole user x item matrix fits in memory (943 x 1682 for ml-100k), so the model
returns every prediction at once: one matrix product is far faster on a CPU than gathering
factor rows per rating. Losses and ranking metrics are named functions beside the model.

The same model is fitted three ways: `map`, one point estimate by gradient descent on squared
error + L2 (`rating_loss`); `bpr`, a ranking of rated above unrated items (`bpr_loss`); and
`bayes` (the default), Bayesian MF sampled by Gibbs (`recsys/mf/bayes.py`), whose average of
draws is again a `BiasedMF`.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import DataError


@dataclass
class MFConfig:
    num_users: int
    num_items: int
    dim: int = 64
    implicit: bool = False
    """Add the SVD++ term: each user is also described by the items they rated."""
    init_std: float = 0.05
    """Standard deviation of the random initial factors (0: zeros, drawing no random numbers)."""


def init_factors(rows: int, dim: int, std: float) -> torch.Tensor:
    """(rows, dim) factors ~ N(0, std^2); zeros without touching the random stream when std is 0
    (a model that is about to be overwritten must not shift a Gibbs chain's draws)."""
    return torch.randn(rows, dim) * std if std else torch.zeros(rows, dim)


class BiasedMF(nn.Module):
    """All predicted ratings, (num_users, num_items)."""

    def __init__(self, cfg: MFConfig, global_mean: float = 3.5) -> None:
        super().__init__()
        self.num_items = cfg.num_items
        self.user_bias = nn.Parameter(torch.zeros(cfg.num_users))
        self.item_bias = nn.Parameter(torch.zeros(cfg.num_items))
        self.user_factors = nn.Parameter(init_factors(cfg.num_users, cfg.dim, cfg.init_std))
        self.item_factors = nn.Parameter(init_factors(cfg.num_items, cfg.dim, cfg.init_std))
        self.implicit = nn.Parameter(torch.zeros(cfg.num_items, cfg.dim)) if cfg.implicit else None
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        # N(u) as a row-normalised (num_users, num_items) matrix, for the SVD++ term; set_history
        history = torch.zeros(cfg.num_users, cfg.num_items) if cfg.implicit else None
        self.register_buffer("history", history, persistent=False)

    def set_history(self, users: torch.Tensor, items: torch.Tensor) -> "BiasedMF":
        """Record which items each user rated (the SVD++ term sums over them; without it, no-op)."""
        if self.implicit is None:
            return self
        history = torch.zeros_like(self.history)
        history[users, items] = 1.0
        self.history = history * history.sum(1, keepdim=True).clamp(min=1).rsqrt()
        return self

    def forward(self) -> torch.Tensor:
        users = self.user_factors  # (U, dim)
        if self.implicit is not None:
            users = users + self.history @ self.implicit  # (U, I) @ (I, dim) -> (U, dim)
        bias = self.global_mean + self.user_bias[:, None] + self.item_bias[None, :]  # (U, I)
        return bias + users @ self.item_factors.T  # (U, I)

    def pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The predictions of (user, item) pairs alone, users and items of one shape (...), for
        catalogs whose (U, I) matrix is too large to hold."""
        vectors = self.user_factors  # (U, dim)
        if self.implicit is not None:  # a dense history: a catalog small enough to hold it
            vectors = vectors + self.history @ self.implicit
        dot = (vectors[users] * self.item_factors[items]).sum(-1)  # (...)
        return self.global_mean + self.user_bias[users] + self.item_bias[items] + dot


def select(all_ratings: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """The (B,) entries of a (U, I) matrix at (users, items); one flat index_select."""
    return all_ratings.flatten().index_select(0, users * all_ratings.shape[1] + items)


def rating_loss(
    model: BiasedMF, users, items, targets, reg: float, bias_reg: float, num_ratings: int
) -> torch.Tensor:
    """The objective sum of squared errors + reg * L2(factors) + bias_reg * L2(biases) over all
    `num_ratings` training ratings, divided by `num_ratings`: the batch's mean squared error is an
    unbiased estimate of its first part, so `reg` means the same at any batch size."""
    pred = select(model(), users, items)
    l2 = model.user_factors.pow(2).sum() + model.item_factors.pow(2).sum()
    if model.implicit is not None:
        l2 = l2 + model.implicit.pow(2).sum()
    l2_bias = model.user_bias.pow(2).sum() + model.item_bias.pow(2).sum()
    return F.mse_loss(pred, targets) + (reg * l2 + bias_reg * l2_bias) / num_ratings


def bpr_loss(
    model: BiasedMF, users, pos_items, neg_items, reg: float, num_ratings: int
) -> torch.Tensor:
    """Bayesian personalised ranking: a rated item should score above a sampled one. The L2 term
    is divided by the training set's size, as in `rating_loss`, so `reg` ignores the batch size."""
    scores = model()  # (U, I)
    diff = select(scores, users, pos_items) - select(scores, users, neg_items)  # (B,)
    l2 = (
        model.user_factors.pow(2).sum()
        + model.item_factors.pow(2).sum()
        + model.item_bias.pow(2).sum()
    )
    return -F.logsigmoid(diff).mean() + reg * l2 / num_ratings


@torch.no_grad()
def predict_ratings(
    model: BiasedMF, users, items, low: float = 1.0, high: float = 5.0
) -> torch.Tensor:
    """Predictions for (user, item) pairs, clipped to the rating scale; scored CHUNK pairs at a
    time, never the whole (U, I) matrix."""
    return pair_scores(model, users, items).clamp(low, high)


CHUNK = 1 << 16
"""Pairs scored at once (a chunk's gathered factor rows stay well under a GiB)."""


def pair_scores(model: BiasedMF, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """`model.pairs` over the first dimension of users and items, CHUNK rows at a time."""
    parts = [
        model.pairs(users[s : s + CHUNK], items[s : s + CHUNK]) for s in range(0, len(users), CHUNK)
    ]
    return torch.cat(parts) if parts else users.new_zeros(0, dtype=torch.float)


@torch.no_grad()
def fold_in(
    model: BiasedMF, items: torch.Tensor, ratings: torch.Tensor, penalty: float
) -> torch.Tensor:
    """(num_items,) predicted ratings for a user the model never saw, from their `ratings` of
    `items`, without retraining: the user's bias and factors are the ridge regression (weight
    `penalty`) of their ratings, less the global mean and the item biases, on the trained item factors
    (and a constant), solved in its dual form, a system of one row per rating."""
    x = torch.cat([torch.ones(len(items), 1, device=items.device), model.item_factors[items]], 1)
    y = ratings - model.global_mean - model.item_bias[items]  # (n,)
    gram = x @ x.T + penalty * torch.eye(len(items), device=items.device)  # (n, n)
    user = x.T @ torch.linalg.solve(gram, y)  # (1 + dim,): bias, then factors
    return model.global_mean + model.item_bias + user[0] + model.item_factors @ user[1:]


def rmse_mae(pred: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    err = pred - targets
    return {"rmse": err.pow(2).mean().sqrt().item(), "mae": err.abs().mean().item()}


def hit_rate_ndcg(scores: torch.Tensor, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k when column 0 of `scores` (B, 1 + negatives) is the held-out item.
    A negative scored equal to the positive ranks above it: a constant scorer hits nothing."""
    rank = (scores[:, 1:] >= scores[:, :1]).sum(1)  # (B,) items ranked at or above the positive
    hit = rank < k
    ndcg = torch.where(
        hit, 1.0 / torch.log2(rank.float() + 2.0), torch.zeros_like(rank, dtype=torch.float)
    )
    return {f"hr@{k}": hit.float().mean().item(), f"ndcg@{k}": ndcg.mean().item()}


DENSE_CELLS = 2**28
"""The most users x items the dense matrices (scores, rated history) of map and bpr training, or
an exact implicit-feedback basis, may hold: 1 GiB each."""


def check_size(num_users: int, num_items: int, method: str) -> None:
    """Refuse, in one line, a catalog too large for the dense users x items matrices that
    `method` (map, bpr) trains on."""
    cells = num_users * num_items
    if cells > DENSE_CELLS:
        raise DataError(
            f"{num_users:,} users x {num_items:,} items: --method {method} trains on dense "
            f"users x items matrices ({cells * 4 / 2**30:.1f} GiB each), beyond {DENSE_CELLS:,} "
            "cells; --method bayes (the default) is sparse (docs/recsys-mf.md, Scale)"
        )
