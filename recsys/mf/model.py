"""Biased matrix factorization (optionally with an SVD++ implicit term) and BPR for ranking.

    r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)

The losses and ranking metrics are named functions beside the models.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class MFConfig:
    num_users: int
    num_items: int
    dim: int = 64
    implicit: bool = False
    """Add the SVD++ term: each user is also described by the items they rated."""
    init_std: float = 0.05


class BiasedMF(nn.Module):
    """Predicted ratings for (user, item) index pairs."""

    def __init__(self, cfg: MFConfig, global_mean: float = 3.5) -> None:
        super().__init__()
        self.user_bias = nn.Embedding(cfg.num_users, 1)
        self.item_bias = nn.Embedding(cfg.num_items, 1)
        self.user_factors = nn.Embedding(cfg.num_users, cfg.dim)
        self.item_factors = nn.Embedding(cfg.num_items, cfg.dim)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)
        for emb in (self.user_factors, self.item_factors):
            nn.init.normal_(emb.weight, std=cfg.init_std)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        self.implicit = nn.Embedding(cfg.num_items, cfg.dim) if cfg.implicit else None
        if self.implicit is not None:
            nn.init.zeros_(self.implicit.weight)
        # N(u): which items each user rated, row-normalised by |N(u)|^-1/2 (set by set_history)
        self.register_buffer(
            "history",
            torch.sparse_coo_tensor(size=(cfg.num_users, cfg.num_items)),
            persistent=False,
        )

    def set_history(self, users: torch.Tensor, items: torch.Tensor) -> None:
        """Record the rated (user, item) pairs that the SVD++ term sums over."""
        counts = torch.bincount(users, minlength=self.user_bias.num_embeddings).clamp(min=1).float()
        values = counts[users].rsqrt()
        size = (self.user_bias.num_embeddings, self.item_bias.num_embeddings)
        self.history = torch.sparse_coo_tensor(torch.stack([users, items]), values, size).coalesce()

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """p_u, plus the normalised sum of implicit item vectors for SVD++: (B, dim)."""
        p = self.user_factors(users)
        if self.implicit is None:
            return p
        implicit = torch.sparse.mm(self.history, self.implicit.weight)  # (U, dim)
        return p + implicit[users]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:  # (B,), (B,)
        p = self.user_vectors(users)  # (B, dim)
        q = self.item_factors(items)  # (B, dim)
        bias = (
            self.global_mean + self.user_bias(users).squeeze(1) + self.item_bias(items).squeeze(1)
        )  # (B,)
        return bias + (p * q).sum(1)  # (B,) predicted ratings


def rating_loss(
    model: BiasedMF, users, items, targets, reg: float, bias_reg: float
) -> torch.Tensor:
    """Mean squared error plus L2 on the parameters this batch touches (per rating, as in SGD MF)."""
    pred = model(users, items)
    l2 = model.user_factors(users).pow(2).sum(1) + model.item_factors(items).pow(2).sum(1)
    l2_bias = model.user_bias(users).squeeze(1) ** 2 + model.item_bias(items).squeeze(1) ** 2
    return F.mse_loss(pred, targets) + reg * l2.mean() + bias_reg * l2_bias.mean()


def predict_ratings(
    model: BiasedMF, users, items, low: float = 1.0, high: float = 5.0
) -> torch.Tensor:
    """Predictions clipped to the rating scale."""
    return model(users, items).clamp(low, high)


def rmse_mae(pred: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    err = pred - targets
    return {"rmse": err.pow(2).mean().sqrt().item(), "mae": err.abs().mean().item()}


def bpr_loss(model: BiasedMF, users, pos_items, neg_items, reg: float) -> torch.Tensor:
    """Bayesian personalised ranking: rated items should score above unrated ones."""
    diff = model(users, pos_items) - model(users, neg_items)
    l2 = (
        model.user_factors(users).pow(2).sum(1)
        + model.item_factors(pos_items).pow(2).sum(1)
        + model.item_factors(neg_items).pow(2).sum(1)
    )
    return -F.logsigmoid(diff).mean() + reg * l2.mean()


def hit_rate_ndcg(scores: torch.Tensor, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k when column 0 of `scores` (B, 1 + negatives) is the held-out item."""
    rank = (scores[:, 1:] > scores[:, :1]).sum(1)  # (B,) items ranked above the positive
    hit = rank < k
    ndcg = torch.where(
        hit, 1.0 / torch.log2(rank.float() + 2.0), torch.zeros_like(rank, dtype=torch.float)
    )
    return {f"hr@{k}": hit.float().mean().item(), f"ndcg@{k}": ndcg.mean().item()}
