"""Matrix-factorization recommender on MovieLens.

    showcase recsys mf train                              # biased MF + SVD++ term, ml-100k
    showcase recsys mf train --split u1                   # the canonical u1.base -> u1.test split
    showcase recsys mf eval --out-dir runs/recsys-mf      # RMSE, MAE, HR@10, NDCG@10, embedding plot
    showcase recsys mf recommend --user 42 --top 10
    showcase recsys mf recommend --similar "Star Wars (1977)"

Hyperparameters are chosen on a validation split carved from the training ratings; the test
ratings are touched once, for the reported numbers.
"""

import dataclasses
import time
from typing import ClassVar, Literal

import torch

from core import distributed
from core.config import EvalConfig, TrainConfig
from core.device import pick_device
from core.loop import fit, setup
from core.report import report_eval, write_report
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
    MFConfig,
    bpr_loss,
    hit_rate_ndcg,
    predict_ratings,
    rating_loss,
    rmse_mae,
)
from recsys.mf.predict import load_run, plot_items, recommend

TASK = "recsys.mf"


@dataclasses.dataclass
class MFTrainConfig(TrainConfig):
    PRESET_FIELD: ClassVar[str] = "objective"
    PRESETS: ClassVar[dict] = {"rating": {}, "bpr": {"reg": 1.0, "lr": 0.05}}

    out_dir: str = "runs/recsys-mf"
    dataset: Literal["ml-100k", "ml-1m", "ml-latest-small"] = "ml-100k"
    """MovieLens variant under the data root."""
    split: str | None = None
    """ml-100k split name (u1..u5, ua, ub), or `ncf` (each user's latest rating held out, ranked
    against 99 unrated items: HR@10, NDCG@10); default: fold --fold of a seeded 5-fold split."""
    fold: int = 0
    """Which of 5 random folds is the test set when --split is not given."""
    dim: int = 64
    """Latent factors per user and item."""
    implicit: bool = True
    """Add the SVD++ implicit-feedback term."""
    objective: Literal["rating", "bpr"] = "rating"
    """rating: regress the stars (RMSE); bpr: rank rated above unrated items (use with --split ncf)."""
    reg: float = 15.0
    """L2 weight on the factors (relative to the summed squared error)."""
    bias_reg: float = 0.005
    """L2 weight on the biases."""
    val_fraction: float = 0.05
    """Training ratings held out to pick the best step."""
    max_steps: int = 120
    batch_size: int = 1_000_000
    """Ratings per step; the default exceeds ml-100k, so each step is full-batch."""
    lr: float = 3e-2
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    eval_every: int = 20
    log_every: int = 100
    synthetic: bool = False
    """Use a small planted low-rank matrix instead of MovieLens (smoke tests only)."""


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
    """Fit biased MF on `train` (minus a validation carve-out); return the model and its best val metrics."""
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
        if cfg.objective == "bpr":
            negatives = torch.randint(0, m.num_items, items.shape, device=items.device)
            return bpr_loss(m, users, items, negatives, cfg.reg), {}
        return rating_loss(m, users, items, ratings, cfg.reg, cfg.bias_reg), {}

    val_candidates = None
    if (
        cfg.objective == "bpr" and n_val
    ):  # each validation item against 99 items its user never rated
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

    monitor, mode = ("val_hr_at_10", "max") if cfg.objective == "bpr" else ("val_rmse", "min")
    result = fit(model, step, loader, cfg, device=device, evaluate=evaluate if n_val else None,
                 monitor=monitor if n_val else None, mode=mode)  # fmt: skip
    return model, result


def main(cfg: MFTrainConfig) -> dict:
    """Train on the training ratings; report RMSE and MAE on the test ratings."""
    device = setup(cfg)
    train, test = split_data(cfg)
    model, result = train_model(cfg, train, device)
    model.eval()
    metrics = {**result.best, "fit_seconds": result.wall_seconds}
    if cfg.objective == "rating":  # BPR scores are not stars: no RMSE for them
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
