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
from typing import ClassVar, Literal

import torch

from core import distributed
from core.config import EvalConfig, TrainConfig, refuse_unused
from core.device import pick_device
from core.errors import UsageError, fraction, non_negative, positive
from core.hf_data import scored_source
from core.loop import fit, setup
from core.report import report_eval, report_train
from core.run import run_config, run_step
from core.share import push_command
from core.tensor_data import TensorLoader
from recsys import MF
from recsys.mf.bayes import sample_model
from recsys.mf.data import Ratings
from recsys.mf.export import export_model
from recsys.mf.model import (
    BiasedMF,
    MFConfig,
    bpr_loss,
    check_size,
    hit_rate_ndcg,
    predict_ratings,
    rating_loss,
    rmse_mae,
)
from recsys.mf.predict import load_run, recommend
from recsys.mf.scoring import plot_items, test_metrics
from recsys.mf.splits import carve_validation, sample_negatives, split_data
from recsys.mf.tables import hf_ratings, known_ratings

TASK = "recsys.mf"


GIBBS_UNUSED = (
    "lr",
    "weight_decay",
    "schedule",
    "warmup_steps",
    "grad_clip",
    "grad_accum",
    "ema",
    "amp",
    "amp_dtype",
    "compile",
    "patience",
    "batch_size",
    "reg",
    "bias_reg",
    "init_from",
    "freeze",
)


@dataclasses.dataclass
class MFTrainConfig(TrainConfig):
    DEMO = MF
    PRESET_FIELD: ClassVar[str] = "method"
    PRESETS: ClassVar[dict] = {
        "bayes": {},
        "map": {"dim": 64, "val_fraction": 0.05, "max_steps": 120},
        "bpr": {"dim": 64, "val_fraction": 0.05, "max_steps": 120, "reg": 1.0, "lr": 0.05},
    }
    DEFAULTS: ClassVar[dict] = {
        "lr": 3e-2,
        "schedule": "cosine",
        "eval_every": 20,
    }

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
    log_every: int = 5
    """Sweeps (or steps) between log lines: the training curve's points."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "dim")
        if not 0 <= self.fold < 5:  # -1 would silently train on the test fold
            raise UsageError(f"--fold picks one of 5 folds: 0-4, got {self.fold}")
        non_negative(self, "reg", "bias_reg", "link_reg")
        if not 0 <= self.burn_in < 1:
            raise UsageError(f"--burn-in is a fraction of the sweeps in [0, 1), got {self.burn_in}")
        fraction(self, "val_fraction")
        if self.hf_dataset and self.split:
            raise UsageError("--split names a MovieLens split: leave it out with --hf-dataset")
        if self.method == "bayes":  # the sampler has no optimizer, schedule or early stopping
            refuse_unused(self, GIBBS_UNUSED, "recsys mf --method bayes")
            if self.eval_every <= 0:
                raise UsageError(
                    f"--eval-every must be > 0 with --method bayes, got {self.eval_every}"
                )


def train_model(cfg: MFTrainConfig, train: Ratings, device: torch.device):
    """Fit biased MF on `train` (minus any validation carve-out); return the model and a FitResult."""
    if cfg.method == "bayes":  # sparse throughout: any catalog that fits in memory
        return sample_model(cfg, train, device)
    check_size(train.num_users, train.num_items, cfg.method)
    return fit_model(cfg, train, device)


def fit_model(cfg: MFTrainConfig, train: Ratings, device: torch.device):
    """map / bpr: one point estimate by full-batch Adam through the core loop."""
    fit_part, val = carve_validation(train, cfg.val_fraction, cfg.seed)
    n_val, n_fit = len(val.ratings), len(fit_part.ratings)
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
            return bpr_loss(m, users, items, negatives, cfg.reg, n_fit), {}
        return rating_loss(m, users, items, ratings, cfg.reg, cfg.bias_reg, n_fit), {}

    val_candidates = None
    if cfg.method == "bpr" and n_val:  # each validation item against 99 items its user never rated
        negatives = sample_negatives(train, val.users, 99, cfg.seed)
        val_candidates = torch.cat([val.items[:, None], negatives], 1).to(device)

    def validate(m):
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
    result = fit(
        model,
        step,
        loader,
        cfg,
        device=device,
        evaluate=validate if n_val else None,
        monitor=monitor if n_val else None,
        mode=mode,
    )
    return model, result


def main(cfg: MFTrainConfig) -> dict:
    """Train on the training ratings; report the test metrics the method is for."""
    if cfg.method == "bayes":
        distributed.require_single_process("recsys mf --method bayes")
    device = setup(cfg)
    if cfg.hf_dataset:
        train, test = hf_ratings(cfg.hf_dataset, cfg.hf_columns, cfg.seed, cfg.hf_split)
    else:
        train, test = split_data(
            cfg.data_dir, cfg.dataset, cfg.split, cfg.fold, cfg.seed, cfg.synthetic
        )
    model, result = train_model(cfg, train, device)
    metrics = {**result.best, "fit_seconds": result.wall_seconds}
    metrics.update(test_metrics(model.eval(), train, test, cfg.method, cfg.split, cfg.seed))
    shown = [k for k in metrics if k.startswith("test_")]
    if cfg.hf_dataset:  # where the test ratings came from
        metrics["test_ratings"] = test.notes[-1].removeprefix("test: ")
    return report_train(cfg, TASK, metrics, result, device, shown=shown, notes=test.notes[-1:])


@dataclasses.dataclass
class MFEvalConfig(EvalConfig):
    DEMO = MF
    DEFAULTS: ClassVar[dict] = {"batch_size": 100_000}


def evaluate(cfg: MFEvalConfig) -> dict:
    """The test metrics of a trained run, on the split it was trained with (RMSE and MAE for
    rating methods, HR@10 and NDCG@10 for bpr and for any run on the ncf split), and a 2-D plot
    of the item embeddings."""
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    model, train, test = load_run(cfg.out_dir, cfg.data_dir, device)
    run = run_config(cfg.out_dir)
    scored, where = scored_source(cfg, run), {}
    if scored is not run:  # another source: its ratings of the users and films the run knows
        test, where = known_ratings(scored, train)
    metrics = test_metrics(model, train, test, run["method"], run["split"], run["seed"])
    plot_items(model, train, f"{cfg.out_dir}/items.png")
    scores = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    on = f" on {where['test_ratings']}" if where else ""
    summary = f"{scores}{on}; wrote {cfg.out_dir}/items.png"
    metrics |= where
    return report_eval(
        cfg, TASK, metrics, run_step(cfg.out_dir), time.perf_counter() - t0, device, summary
    )


COMMANDS = {
    "train": main,
    "eval": evaluate,
    "recommend": recommend,
    "export": export_model,
    "push": push_command(MF),
}
