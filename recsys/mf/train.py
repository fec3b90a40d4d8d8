"""Matrix-factorization recommender on MovieLens.

    showcase recsys mf train                              # Bayesian biased MF + implicit feedback, ml-100k
    showcase recsys mf train --split u1                   # the canonical u1.base -> u1.test split
    showcase recsys mf train --method map                 # one point estimate by Adam (+ SVD++ term)
    showcase recsys mf train --method bpr --split ncf     # ranking: HR@10, NDCG@10
    showcase recsys mf eval --out-dir runs/recsys-mf      # RMSE, MAE, HR@10, NDCG@10, embedding plot
    showcase recsys mf recommend --user 42 --top 10
    showcase recsys mf recommend --similar "Star Wars (1977)"

Hyperparameters are chosen on a validation split carved from the training ratings; the test
ratings are touched once, for the reported numbers. The Gibbs sampler (`bayes`) draws its
own regularisation, so it needs no held-out step selection and trains on every training rating.
"""

import dataclasses
import time
import warnings
from typing import ClassVar, Literal

import torch

from core import distributed
from core.checkpoint import save_weights
from core.config import EvalConfig, TrainConfig, non_negative, positive, refuse_unused, to_dict
from core.device import pick_device
from core.errors import UsageError
from core.logger import RunLogger
from core.loop import FitResult, fit, setup
from core.report import report_eval, write_report
from core.run import WEIGHTS, Run
from core.tensor_data import TensorLoader
from recsys.mf.data import (
    Ratings,
    kfold,
    leave_latest_out,
    load_ratings,
    sample_negatives,
    synthetic_ratings,
)
from recsys.mf.model import (
    BiasedMF,
    GibbsChain,
    MFConfig,
    bpr_loss,
    draw_bias,
    draw_gamma,
    draw_link,
    draw_prior,
    draw_rows,
    hit_rate_ndcg,
    predict_ratings,
    rating_loss,
    rmse_mae,
)
from recsys.mf.predict import load_run, plot_items, recommend

TASK = "recsys.mf"
# torch flags its sparse CSR tensors as beta on first use; the sampler relies on the stable subset.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


GIBBS_UNUSED = ("lr", "weight_decay", "schedule", "warmup_steps", "grad_clip", "grad_accum", "ema",
                "amp", "amp_dtype", "compile", "patience", "batch_size", "reg", "bias_reg")  # fmt: skip


@dataclasses.dataclass
class MFTrainConfig(TrainConfig):
    DEMO: ClassVar[str] = "recsys mf"
    PRESET_FIELD: ClassVar[str] = "method"
    PRESETS: ClassVar[dict] = {
        "bayes": {},
        "map": {"dim": 64, "val_fraction": 0.05, "max_steps": 120},
        "bpr": {"dim": 64, "val_fraction": 0.05, "max_steps": 120, "reg": 1.0, "lr": 0.05},
    }

    out_dir: str = "runs/recsys-mf"
    dataset: Literal["ml-100k", "ml-1m", "ml-latest-small"] = "ml-100k"
    """MovieLens variant under the data root."""
    split: str | None = None
    """ml-100k split name (u1..u5, ua, ub), or `ncf` (each user's latest rating held out, ranked
    against 99 unrated items: HR@10, NDCG@10); default: fold --fold of a seeded 5-fold split."""
    fold: int = 0
    """Which of 5 random folds (0-4) is the test set when --split is not given."""
    method: Literal["bayes", "map", "bpr"] = "bayes"
    """bayes: Bayesian MF sampled by Gibbs (best RMSE); map: one point estimate by Adam;
    bpr: rank rated above unrated items (use with --split ncf). Each sets its own defaults."""
    dim: int = 8
    """Latent factors per user and item (per draw, for bayes)."""
    implicit: bool = True
    """Use implicit feedback (which items a user rated): the SVD++ term for map, the learned
    prior means of users and items for bayes."""
    burn_in: float = 0.1
    """bayes: fraction of the sweeps (--max-steps) discarded before the draws are averaged."""
    link_reg: float = 1.0
    """bayes: prior precision of the implicit-feedback weights, relative to the factors'."""
    reg: float = 15.0
    """map, bpr: L2 weight on the factors (relative to the summed squared error)."""
    bias_reg: float = 0.005
    """map: L2 weight on the biases."""
    val_fraction: float = 0.0
    """Training ratings held out for validation (map, bpr: to pick the best step)."""
    max_steps: int = 100
    """Gibbs sweeps over all unknowns (bayes), or full-batch Adam steps (map, bpr): not epochs."""
    batch_size: int = 1_000_000
    """Ratings per step; the default exceeds ml-100k, so each step is full-batch."""
    lr: float = 3e-2
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    eval_every: int = 20
    log_every: int = 100
    synthetic: bool = False
    """Use a small planted low-rank matrix instead of MovieLens (smoke tests only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "dim")
        if not 0 <= self.fold < 5:  # -1 would silently train on the test fold
            raise UsageError(f"--fold picks one of 5 folds: 0-4, got {self.fold}")
        non_negative(self, "reg", "bias_reg", "link_reg")
        if not 0 <= self.burn_in < 1:
            raise UsageError(f"--burn-in is a fraction of the sweeps in [0, 1), got {self.burn_in}")
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.method == "bayes":  # the sampler has no optimizer, schedule or early stopping
            refuse_unused(self, GIBBS_UNUSED, "recsys mf --method bayes")
            if self.eval_every <= 0:
                raise UsageError(
                    f"--eval-every must be > 0 with --method bayes, got {self.eval_every}"
                )


def split_data(cfg: MFTrainConfig) -> tuple[Ratings, Ratings]:
    """(train, test) ratings for the configured split."""
    if cfg.synthetic:
        data = synthetic_ratings(seed=cfg.seed)
        folds = kfold(len(data.ratings), 5, cfg.seed)
        return data.subset(torch.cat(folds[1:])), data.subset(folds[0])
    if cfg.split == "ncf":
        return leave_latest_out(load_ratings(cfg.data_dir, cfg.dataset))
    if cfg.split:
        return (load_ratings(cfg.data_dir, cfg.dataset, f"{cfg.split}.base"),
                load_ratings(cfg.data_dir, cfg.dataset, f"{cfg.split}.test"))  # fmt: skip
    data = load_ratings(cfg.data_dir, cfg.dataset)
    folds = kfold(len(data.ratings), 5, seed=0)
    train = torch.cat([f for k, f in enumerate(folds) if k != cfg.fold])
    return data.subset(train), data.subset(folds[cfg.fold])


def carve_validation(cfg: MFTrainConfig, train: Ratings) -> tuple[Ratings, Ratings]:
    """(fit, validation) parts of the training ratings, fixed by the seed."""
    order = torch.randperm(
        len(train.ratings), generator=torch.Generator().manual_seed(cfg.seed + 1)
    )
    n_val = int(cfg.val_fraction * len(order))
    return train.subset(order[n_val:]), train.subset(order[:n_val])


def train_model(cfg: MFTrainConfig, train: Ratings, device: torch.device):
    """Fit biased MF on `train` (minus any validation carve-out); return the model and a FitResult."""
    if cfg.method == "bayes":
        return sample_model(cfg, train, device)
    return fit_model(cfg, train, device)


def fit_model(cfg: MFTrainConfig, train: Ratings, device: torch.device):
    """map / bpr: one point estimate by full-batch Adam through the core loop."""
    fit_part, val = carve_validation(cfg, train)
    n_val = len(val.ratings)
    model = BiasedMF(
        MFConfig(train.num_users, train.num_items, cfg.dim, cfg.implicit),
        fit_part.ratings.mean().item(),
    )
    model.to(device).set_history(fit_part.users.to(device), fit_part.items.to(device))
    tensors = (fit_part.users, fit_part.items, fit_part.ratings)
    batch_size = min(
        cfg.batch_size, len(fit_part.ratings)
    )  # a batch larger than the data: full batch
    loader = TensorLoader(
        tensors, batch_size, grad_accum=cfg.grad_accum, seed=cfg.seed, device=device
    )
    val_users, val_items, val_ratings = (t.to(device) for t in (val.users, val.items, val.ratings))

    def step(m, batch):
        users, items, ratings = batch
        if cfg.method == "bpr":
            negatives = torch.randint(0, m.num_items, items.shape, device=items.device)
            return bpr_loss(m, users, items, negatives, cfg.reg), {}
        return rating_loss(m, users, items, ratings, cfg.reg, cfg.bias_reg), {}

    val_candidates = None
    if cfg.method == "bpr" and n_val:  # each validation item against 99 items its user never rated
        negatives = sample_negatives(train, val.users, 99, cfg.seed)
        val_candidates = torch.cat([val.items[:, None], negatives], 1).to(device)

    def evaluate(m):
        if val_candidates is not None:
            scores = m()[val_users].gather(1, val_candidates)
            return {
                "val_" + k.replace("@", "_at_"): v for k, v in hit_rate_ndcg(scores, 10).items()
            }
        return {
            f"val_{k}": v
            for k, v in rmse_mae(predict_ratings(m, val_users, val_items), val_ratings).items()
        }

    monitor, mode = ("val_hr_at_10", "max") if cfg.method == "bpr" else ("val_rmse", "min")
    result = fit(model, step, loader, cfg, device=device, evaluate=evaluate if n_val else None,
                 monitor=monitor if n_val else None, mode=mode)  # fmt: skip
    return model, result


@dataclasses.dataclass
class Observed:
    """The fitted ratings in the forms one Gibbs sweep needs (all on the device), sorted by user;
    `by_item` reorders them by item."""

    users: torch.Tensor  # (N,)
    items: torch.Tensor  # (N,)
    ratings: torch.Tensor  # (N,) minus the global mean
    user_rows: torch.Tensor  # (U + 1,) CSR row starts of the (U, I) rating matrix
    item_rows: torch.Tensor  # (I + 1,) and of its transpose
    by_item: torch.Tensor  # (N,) permutation: the ratings in item order
    item_cols: torch.Tensor  # (N,) users[by_item]
    user_count: torch.Tensor  # (U,)
    item_count: torch.Tensor  # (I,)
    user_rated: torch.Tensor | None = None  # (U, I) sparse 0/1: who rated what
    item_rated: torch.Tensor | None = None  # (I, U) its transpose
    user_implicit: torch.Tensor | None = None  # (U, I) sparse, row u = 1{j rated by u} / |N(u)|^1/2
    item_implicit: torch.Tensor | None = None  # (I, U) sparse, row i = 1{v rated i} / |R(i)|^1/2
    user_basis: tuple | None = None  # thin SVD of user_implicit
    item_basis: tuple | None = None

    def per_user(self, values: torch.Tensor) -> torch.Tensor:
        """The (U, I) sparse matrix holding `values` (N,) at the rated entries."""
        shape = (len(self.user_count), len(self.item_count))
        return torch.sparse_csr_tensor(
            self.user_rows, self.items, values, shape, check_invariants=False
        )

    def per_item(self, values: torch.Tensor) -> torch.Tensor:
        """The (I, U) sparse matrix holding `values` (N,) at the rated entries."""
        shape = (len(self.item_count), len(self.user_count))
        return torch.sparse_csr_tensor(
            self.item_rows,
            self.item_cols,
            values.index_select(0, self.by_item),
            shape,
            check_invariants=False,
        )


def observe(data: Ratings, global_mean: float, implicit: bool, device) -> Observed:
    num_users, num_items = data.num_users, data.num_items
    users, items, ratings = (t.to(device) for t in (data.users, data.items, data.ratings))
    order = torch.argsort(users * num_items + items)
    users, items, ratings = users[order], items[order], ratings[order]
    by_item = torch.argsort(items * num_users + users)
    user_count = torch.bincount(users, minlength=num_users)
    item_count = torch.bincount(items, minlength=num_items)
    starts = [torch.cat([c.new_zeros(1), c.cumsum(0)]) for c in (user_count, item_count)]
    obs = Observed(users, items, ratings - global_mean, *starts, by_item, users[by_item],
                   user_count.float(), item_count.float())  # fmt: skip
    ones = torch.ones_like(ratings)
    obs.user_rated, obs.item_rated = obs.per_user(ones), obs.per_item(ones)
    if implicit:
        obs.user_implicit = obs.per_user(obs.user_count.clamp(min=1).rsqrt()[users] * ones)
        obs.item_implicit = obs.per_item(obs.item_count.clamp(min=1).rsqrt()[items] * ones)
        obs.user_basis = thin_svd(obs.user_implicit.to_dense())
        obs.item_basis = thin_svd(obs.item_implicit.to_dense())
    return obs


def thin_svd(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(U, S, Vh, Vh^T) of x (N, F), all contiguous, through the eigenvectors of the smaller Gram
    matrix (faster than an SVD); directions with a negligible singular value are dropped."""
    flip = x.shape[0] > x.shape[1]
    x = x.T if flip else x  # (small, large)
    eigenvalues, vectors = torch.linalg.eigh(x @ x.T)
    keep = eigenvalues > eigenvalues.max() * 1e-6
    s = eigenvalues[keep].sqrt()
    u, vh = vectors[:, keep], (vectors[:, keep].T @ x) / s[:, None]
    u, vh = (vh.T, u.T) if flip else (u, vh)
    return u.contiguous(), s, vh.contiguous(), vh.T.contiguous()


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


def kept_draws(cfg: MFTrainConfig) -> int:
    """How many of the Gibbs sweeps' draws are averaged (the rest is burn-in)."""
    return cfg.max_steps - int(cfg.burn_in * cfg.max_steps)


def sample_model(cfg: MFTrainConfig, train: Ratings, device: torch.device):
    """bayes: run the Gibbs chain (checkpointed, resumable); return the posterior-mean model."""
    fit_part, val = carve_validation(cfg, train)
    global_mean = fit_part.ratings.mean().item()
    obs = observe(fit_part, global_mean, cfg.implicit, device)
    kept = kept_draws(cfg)
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


def main(cfg: MFTrainConfig) -> dict:
    """Train on the training ratings; report RMSE and MAE on the test ratings."""
    if cfg.method == "bayes":
        distributed.require_single_process("recsys mf --method bayes")
    device = setup(cfg)
    train, test = split_data(cfg)
    model, result = train_model(cfg, train, device)
    model.eval()
    metrics = {**result.best, "fit_seconds": result.wall_seconds}
    if cfg.method != "bpr":  # BPR scores are not stars: no RMSE for them
        with torch.no_grad():
            pred = predict_ratings(model, test.users.to(device), test.items.to(device))
        scores = rmse_mae(pred, test.ratings.to(device))
        metrics.update(test_rmse=scores["rmse"], test_mae=scores["mae"])
    if cfg.split == "ncf":
        metrics.update(ranking_metrics(model, train, test, device, cfg.seed))
    report = write_report(cfg, TASK, metrics, result.steps, result.wall_seconds, device)
    if distributed.is_main():
        print(
            " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("test_"))
            + f" ({result.wall_seconds:.1f}s)"
        )
    return report


@torch.no_grad()
def ranking_metrics(
    model: BiasedMF, train: Ratings, test: Ratings, device: torch.device, seed: int
) -> dict:
    """HR@10 and NDCG@10: each held-out item ranked against 99 items its user never rated."""
    everything = Ratings(torch.cat([train.users, test.users]), torch.cat([train.items, test.items]),
                         torch.cat([train.ratings, test.ratings]), torch.cat([train.timestamps, test.timestamps]),
                         train.user_ids, train.item_ids, train.titles)  # fmt: skip
    negatives = sample_negatives(everything, test.users, 99, seed)  # (B, 99)
    candidates = torch.cat([test.items[:, None], negatives], 1).to(
        device
    )  # (B, 100), positive first
    scores = model()[test.users.to(device)].gather(1, candidates)  # (B, 100)
    return {"test_" + k.replace("@", "_at_"): v for k, v in hit_rate_ndcg(scores, 10).items()}


@dataclasses.dataclass
class MFEvalConfig(EvalConfig):
    out_dir: str = "runs/recsys-mf"
    batch_size: int = 100_000


def evaluate(cfg: MFEvalConfig) -> dict:
    """Test RMSE/MAE of a trained run, and a 2-D plot of item embeddings with a few titles."""
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    model, train, test = load_run(cfg.out_dir, cfg.data_dir, device)
    model.eval()
    with torch.no_grad():
        scores = rmse_mae(
            predict_ratings(model, test.users.to(device), test.items.to(device)),
            test.ratings.to(device),
        )
    metrics = {"test_rmse": scores["rmse"], "test_mae": scores["mae"]}
    plot_items(model, train, f"{cfg.out_dir}/items.png")
    summary = f"test_rmse {scores['rmse']:.4f} test_mae {scores['mae']:.4f}; wrote {cfg.out_dir}/items.png"
    report = report_eval(cfg, TASK, metrics, 0, time.perf_counter() - t0, device, summary)
    return report


COMMANDS = {"train": main, "eval": evaluate, "recommend": recommend}
