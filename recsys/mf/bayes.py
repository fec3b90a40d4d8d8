"""Bayesian biased MF sampled by Gibbs: the chain's state, the conditional posteriors, one sweep,
and the checkpointed loop that runs it.

Salakhutdinov & Mnih's BPMF with user and item biases, and the implicit feedback as in Macau /
SVD++: a user's prior mean is a learned sum over the items they rated, an item's over its raters.
Every factor, bias and prior precision is drawn in turn from its conditional posterior (`draw_*`);
the prediction averages the kept draws. That average is again a biased MF, with the draws'
factors side by side, so one `BiasedMF` serves both methods.
"""

import warnings

import torch
from torch import nn

from core import distributed
from core.checkpoint import save_weights
from core.config import to_dict
from core.logger import RunLogger
from core.loop import FitResult
from core.run import WEIGHTS, Run
from recsys.mf.data import Ratings
from recsys.mf.model import BiasedMF, MFConfig, predict_ratings, rmse_mae
from recsys.mf.observed import Observed, observe
from recsys.mf.splits import carve_validation

# torch flags its sparse CSR tensors as beta on first use; the sampler relies on the stable subset.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


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
        model = BiasedMF(MFConfig(users.shape[1], items.shape[1], dim, init_std=0.0), global_mean)
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


def at(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values[index] along dim 0; index_select is several times faster than [] on a CPU."""
    return values.index_select(0, index)


def outer_rows(x: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, D * D): each row's outer product with itself, flattened."""
    return (x[:, :, None] * x[:, None, :]).flatten(1)


def gibbs_sweep(chain: GibbsChain, obs: Observed, link_reg: float) -> None:
    """Draw every unknown once from its conditional posterior, in place."""
    c, dim = chain, chain.user_factors.shape[1]
    users, items = obs.users, obs.items
    residual = obs.ratings - at(c.user_bias, users) - at(c.item_bias, items)  # (N,) for the factors
    sides = (  # side, other side, 0/1 rated matrix, values -> sparse, implicit matrix, its SVD
        ("user", "item", obs.user_rated, obs.per_user, obs.user_implicit, obs.user_basis),
        ("item", "user", obs.item_rated, obs.per_item, obs.item_implicit, obs.item_basis),
    )
    for name, other_name, rated, sparse, implicit, basis in sides:
        rows = getattr(c, f"{name}_factors")  # (N_side, D)
        other = getattr(c, f"{other_name}_factors")  # (N_other, D)
        link = getattr(c, f"{name}_link")
        offset = implicit @ link if implicit is not None else 0.0  # (N_side, D) implicit prior mean
        mean, precision = draw_prior(rows - offset)
        if implicit is not None:
            link.copy_(draw_link(basis, rows - mean, precision, link_reg))
            offset = implicit @ link
        gram = (rated @ outer_rows(other)).view(-1, dim, dim)  # (N_side, D, D)
        weighted = sparse(residual) @ other  # (N_side, D): sum of residual * other's factors
        rows.copy_(draw_rows(gram, weighted, mean + offset, precision, c.noise_precision))

    explained = obs.ratings - (at(c.user_factors, users) * at(c.item_factors, items)).sum(1)  # (N,)
    sums = torch.zeros_like(c.user_bias).index_add_(0, users, explained - at(c.item_bias, items))
    c.user_bias.copy_(draw_bias(sums, obs.user_count, c.noise_precision, c.bias_precision[0]))
    sums = torch.zeros_like(c.item_bias).index_add_(0, items, explained - at(c.user_bias, users))
    c.item_bias.copy_(draw_bias(sums, obs.item_count, c.noise_precision, c.bias_precision[1]))
    squares = torch.stack([c.user_bias.pow(2).sum(), c.item_bias.pow(2).sum()])
    counts = torch.tensor([len(c.user_bias), len(c.item_bias)], device=squares.device)
    c.bias_precision.copy_(draw_gamma(1 + counts / 2, 1 + squares / 2))
    error = explained - at(c.user_bias, users) - at(c.item_bias, items)  # (N,)
    c.noise_precision.copy_(draw_gamma(1 + len(error) / 2, 1 + error.pow(2).sum() / 2))


def kept_draws(sweeps: int, burn_in: float) -> int:
    """How many of the Gibbs sweeps' draws are averaged (the rest, a fraction `burn_in`, is burn-in)."""
    return sweeps - int(burn_in * sweeps)


def sample_model(cfg, train: Ratings, device: torch.device):
    """Run the Gibbs chain for `cfg.max_steps` sweeps (checkpointed, resumable); return the
    posterior-mean model and a FitResult. `cfg` is recsys' MFTrainConfig."""
    fit_part, val = carve_validation(train, cfg.val_fraction, cfg.seed)
    global_mean = fit_part.ratings.mean().item()
    obs = observe(fit_part, global_mean, cfg.implicit, device)
    kept = kept_draws(cfg.max_steps, cfg.burn_in)
    burn_in = cfg.max_steps - kept
    chain = GibbsChain(train.num_users, train.num_items, cfg.dim, kept).to(device)
    run = Run(cfg, chain)
    state = run.state
    val_users, val_items = val.users.to(device), val.items.to(device)
    logger = RunLogger(run.dir, cfg.max_steps, state.step, distributed.is_main(), cfg.tensorboard)
    try:
        with run.interruptible():
            while state.step < cfg.max_steps:
                gibbs_sweep(chain, obs, cfg.link_reg)
                state.step = sweep = state.step + 1
                if sweep > burn_in:
                    chain.keep(sweep - burn_in - 1)
                logger.advance(1)
                last = sweep == cfg.max_steps
                if len(val_users) and sweep > burn_in and (sweep % cfg.eval_every == 0 or last):
                    average = chain.posterior_mean(sweep - burn_in, global_mean)  # draws so far
                    pred = predict_ratings(average, val_users, val_items)
                    scores = rmse_mae(pred, val.ratings.to(device))
                    state.metrics = {"val_rmse": scores["rmse"], "val_mae": scores["mae"]}
                    logger.log("eval", sweep, state.metrics)
                if sweep % cfg.log_every == 0 or last:
                    logger.log("train", sweep, {"noise_sd": chain.noise_precision.rsqrt().item()})
                run.end_step(last=last)
    finally:
        logger.close()
    model = chain.posterior_mean(kept, global_mean)
    if distributed.is_main():
        meta = {"config": to_dict(cfg), "step": state.step, "metrics": state.metrics}
        save_weights(model, run.dir / WEIGHTS, meta)
    return model, FitResult(steps=state.step, wall_seconds=run.seconds(), best=dict(state.metrics))
