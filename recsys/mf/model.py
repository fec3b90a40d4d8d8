"""Biased matrix factorization, optionally with the SVD++ implicit-feedback term.

    r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)

MovieLens' whole user x item matrix fits in memory (943 x 1682 for ml-100k), so the model
returns every prediction at once: one matrix product is far faster on a CPU than gathering
factor rows per rating. Losses and ranking metrics are named functions beside the model.

The same model can be fitted two ways. `map`: one point estimate by gradient descent on
squared error + L2 (`rating_loss`). `bayes` (the default): Bayesian MF sampled by Gibbs
(Salakhutdinov & Mnih's BPMF with biases, and the implicit feedback as in Macau / SVD++: a
user's prior mean is a learned sum over the items they rated, an item's over its raters).
Every factor, bias and prior precision is drawn in turn from its conditional posterior
(`draw_*` below); the prediction averages the kept draws. That average is again a biased MF,
with the draws' factors side by side, so one `BiasedMF` serves both.
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
    """All predicted ratings, (num_users, num_items)."""

    def __init__(self, cfg: MFConfig, global_mean: float = 3.5) -> None:
        super().__init__()
        self.num_items = cfg.num_items
        self.user_bias = nn.Parameter(torch.zeros(cfg.num_users))
        self.item_bias = nn.Parameter(torch.zeros(cfg.num_items))
        self.user_factors = nn.Parameter(torch.randn(cfg.num_users, cfg.dim) * cfg.init_std)
        self.item_factors = nn.Parameter(torch.randn(cfg.num_items, cfg.dim) * cfg.init_std)
        self.implicit = nn.Parameter(torch.zeros(cfg.num_items, cfg.dim)) if cfg.implicit else None
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        # N(u) as a row-normalised (num_users, num_items) matrix; set by set_history
        self.register_buffer("history", torch.zeros(cfg.num_users, cfg.num_items), persistent=False)

    def set_history(self, users: torch.Tensor, items: torch.Tensor) -> "BiasedMF":
        """Record which items each user rated (the SVD++ term sums over them)."""
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


def select(all_ratings: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """The (B,) entries of a (U, I) matrix at (users, items); one flat index_select."""
    return all_ratings.flatten().index_select(0, users * all_ratings.shape[1] + items)


def rating_loss(
    model: BiasedMF, users, items, targets, reg: float, bias_reg: float
) -> torch.Tensor:
    """Mean squared error of the rated entries plus L2 on all factors and biases, scaled by
    1 / (number of ratings) so that `reg` means the same at any batch size."""
    pred = select(model(), users, items)
    l2 = model.user_factors.pow(2).sum() + model.item_factors.pow(2).sum()
    if model.implicit is not None:
        l2 = l2 + model.implicit.pow(2).sum()
    l2_bias = model.user_bias.pow(2).sum() + model.item_bias.pow(2).sum()
    return F.mse_loss(pred, targets) + (reg * l2 + bias_reg * l2_bias) / len(targets)


def bpr_loss(model: BiasedMF, users, pos_items, neg_items, reg: float) -> torch.Tensor:
    """Bayesian personalised ranking: a rated item should score above a sampled one."""
    scores = model()  # (U, I)
    diff = select(scores, users, pos_items) - select(scores, users, neg_items)  # (B,)
    l2 = (
        model.user_factors.pow(2).sum()
        + model.item_factors.pow(2).sum()
        + model.item_bias.pow(2).sum()
    )
    return -F.logsigmoid(diff).mean() + reg * l2 / len(users)


def predict_ratings(
    model: BiasedMF, users, items, low: float = 1.0, high: float = 5.0
) -> torch.Tensor:
    """Predictions for (user, item) pairs, clipped to the rating scale."""
    return select(model(), users, items).clamp(low, high)


def rmse_mae(pred: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    err = pred - targets
    return {"rmse": err.pow(2).mean().sqrt().item(), "mae": err.abs().mean().item()}


def hit_rate_ndcg(scores: torch.Tensor, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k when column 0 of `scores` (B, 1 + negatives) is the held-out item."""
    rank = (scores[:, 1:] > scores[:, :1]).sum(1)  # (B,) items ranked above the positive
    hit = rank < k
    ndcg = torch.where(
        hit, 1.0 / torch.log2(rank.float() + 2.0), torch.zeros_like(rank, dtype=torch.float)
    )
    return {f"hr@{k}": hit.float().mean().item(), f"ndcg@{k}": ndcg.mean().item()}


# ---- Bayesian MF: the Gibbs sampler's state and conditional posteriors ------------------------


class GibbsChain(nn.Module):
    """The sampler's state: the current draw of every unknown plus the draws kept so far.
    Buffers only, so a checkpoint holds the whole chain."""

    def __init__(self, num_users: int, num_items: int, dim: int, kept: int) -> None:
        super().__init__()
        self.register_buffer("user_factors", torch.randn(num_users, dim) * 0.1)
        self.register_buffer("item_factors", torch.randn(num_items, dim) * 0.1)
        self.register_buffer("user_bias", torch.zeros(num_users))
        self.register_buffer("item_bias", torch.zeros(num_items))
        # implicit feedback: rated items -> user prior mean, raters -> item prior mean
        self.register_buffer("user_link", torch.zeros(num_items, dim))
        self.register_buffer("item_link", torch.zeros(num_users, dim))
        self.register_buffer("noise_precision", torch.tensor(1.0))  # 1 / rating noise variance
        self.register_buffer("bias_precision", torch.ones(2))  # users', items'
        self.register_buffer("kept_user_factors", torch.zeros(kept, num_users, dim))
        self.register_buffer("kept_item_factors", torch.zeros(kept, num_items, dim))
        self.register_buffer("kept_user_bias", torch.zeros(kept, num_users))
        self.register_buffer("kept_item_bias", torch.zeros(kept, num_items))

    def keep(self, k: int) -> None:
        """Store the current draw as kept draw number k."""
        self.kept_user_factors[k] = self.user_factors
        self.kept_item_factors[k] = self.item_factors
        self.kept_user_bias[k] = self.user_bias
        self.kept_item_bias[k] = self.item_bias

    def posterior_mean(self, kept: int, global_mean: float) -> BiasedMF:
        """The average prediction of the first `kept` draws, as one BiasedMF of dim * kept factors:
        [p_1 .. p_K] . [q_1 .. q_K] / K = mean_k p_k . q_k."""
        users, items = (
            self.kept_user_factors[:kept],
            self.kept_item_factors[:kept],
        )  # (K, U, D), (K, I, D)
        dim = users.shape[0] * users.shape[2]
        model = BiasedMF(MFConfig(users.shape[1], items.shape[1], dim), global_mean)
        scale = kept**-0.5
        with torch.no_grad():
            model.user_factors.copy_(users.permute(1, 0, 2).reshape(-1, dim) * scale)  # (U, K * D)
            model.item_factors.copy_(items.permute(1, 0, 2).reshape(-1, dim) * scale)  # (I, K * D)
            model.user_bias.copy_(self.kept_user_bias[:kept].mean(0))
            model.item_bias.copy_(self.kept_item_bias[:kept].mean(0))
        return model.to(users.device)


def draw_gamma(shape: torch.Tensor | float, rate: torch.Tensor) -> torch.Tensor:
    """Gamma(shape, rate) draws, one per entry of `rate`."""
    return torch.distributions.Gamma(torch.as_tensor(shape).to(rate), rate).sample()


def draw_prior(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and precision of the prior over `rows` (N, D), drawn from their
    Normal-Gamma posterior (hyperprior: precision ~ Gamma(1, 1), mean ~ N(0, 1 / precision))."""
    n = rows.shape[0]
    avg = rows.mean(0)  # (D,)
    spread = (rows - avg).pow(2).sum(0) + n / (n + 1) * avg.pow(2)
    precision = draw_gamma(1 + n / 2, 1 + spread / 2)  # (D,)
    mean = rows.sum(0) / (n + 1) + torch.randn_like(avg) * ((n + 1) * precision).rsqrt()
    return mean, precision


def draw_rows(gram, weighted, prior_mean, prior_precision, noise_precision) -> torch.Tensor:
    """Each row x_n ~ N(A_n^-1 b_n, A_n^-1), the Gaussian posterior of a factor row given the
    other side's factors: A_n = diag(prior_precision) + noise_precision * gram_n (N, D, D),
    b_n = prior_precision * prior_mean_n + noise_precision * weighted_n (N, D)."""
    precision = noise_precision * gram + torch.diag(prior_precision)  # (N, D, D)
    rhs = (noise_precision * weighted + prior_precision * prior_mean).unsqueeze(-1)  # (N, D, 1)
    chol = torch.linalg.cholesky(precision)
    mean = torch.cholesky_solve(rhs, chol)
    noise = torch.linalg.solve_triangular(chol.mT, torch.randn_like(mean), upper=True)  # cov A^-1
    return (mean + noise).squeeze(-1)  # (N, D)


def draw_link(basis, target, precision, link_reg: float) -> torch.Tensor:
    """The implicit-feedback weights W (F, D) given target rows (N, D) ~ N(X W, 1 / precision)
    and the prior W ~ N(0, 1 / (link_reg * precision)): a Bayesian ridge regression per column,
    solved through the thin SVD `basis` = (U, S, Vh, Vh^T) of the feature matrix X (N, F).
    Products are taken as (x^T A)^T with a thin x: several times faster on a CPU than A x."""
    u, s, vh, vh_t = basis
    shrink = s.pow(2) + link_reg  # (R,)
    z = torch.randn(vh.shape[1], target.shape[1], device=target.device)  # (F, D)
    # mean: V diag(s / shrink) U^T target; noise: (X^T X + link_reg I)^-1/2 z, which scales the
    # row space of X by shrink^-1/2 and the rest by link_reg^-1/2
    row_space = (s / shrink)[:, None] * (target.T @ u).T  # (R, D)
    row_space += (shrink.rsqrt() - link_reg**-0.5)[:, None] * (z.T @ vh_t).T * precision.rsqrt()
    return (row_space.T @ vh).T + z * (link_reg * precision).rsqrt()  # (F, D)


def draw_bias(residual_sum, count, noise_precision, prior_precision) -> torch.Tensor:
    """Biases given the residuals they explain: N(noise_precision * sum / A, 1 / A),
    A = prior_precision + noise_precision * count."""
    precision = prior_precision + noise_precision * count
    return (
        noise_precision * residual_sum / precision + torch.randn_like(precision) * precision.rsqrt()
    )
