"""Recommendations for a user, movies similar to a title, and the item-embedding plot."""

import dataclasses
import difflib
import json

import torch

from core.config import positive
from core.device import pick_device
from core.errors import ShowcaseError
from core.files import save_figure
from core.loop import load_run_weights, run_config
from recsys.mf.bayes import kept_draws
from recsys.mf.data import Ratings, carve_validation, sample_negatives, split_data
from recsys.mf.model import BiasedMF, MFConfig, hit_rate_ndcg, predict_ratings, rmse_mae


@dataclasses.dataclass
class RecommendConfig:
    out_dir: str = "runs/recsys-mf"
    """Run directory of the trained model."""
    user: str | None = None
    """Raw user id (as in the dataset) to recommend for."""
    similar: str | None = None
    """A movie title: print the nearest movies by embedding cosine."""
    top: int = 10
    """How many movies to print."""
    data_dir: str | None = None
    """Data root (default: the run's, else $SHOWCASE_DATA)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N | mps."""
    json: bool = False
    """Print one JSON object."""

    def __post_init__(self) -> None:
        positive(self, "top")


def load_run(out_dir: str, data_dir: str | None, device: torch.device):
    """The trained model with its training and test ratings."""
    cfg = run_config(out_dir)
    train, test = split_data(data_dir or cfg["data_dir"], cfg["dataset"], cfg["split"], cfg["fold"],
                             cfg["seed"], cfg["synthetic"])  # fmt: skip
    if cfg["method"] == "bayes":  # the average of the kept draws: their factors side by side
        dim = cfg["dim"] * kept_draws(cfg["max_steps"], cfg["burn_in"])
        shape = MFConfig(train.num_users, train.num_items, dim, init_std=0.0)
    else:
        shape = MFConfig(train.num_users, train.num_items, cfg["dim"], cfg["implicit"], 0.0)
    model = BiasedMF(shape).to(device)
    load_run_weights(model, out_dir)
    if shape.implicit:
        fit_part, _ = carve_validation(train, cfg["val_fraction"], cfg["seed"])
        model.set_history(fit_part.users.to(device), fit_part.items.to(device))
    return model.eval(), train, test


@torch.no_grad()
def test_metrics(model: BiasedMF, train: Ratings, test: Ratings, method: str, split: str | None,
                 seed: int) -> dict[str, float]:  # fmt: skip
    """What a method is for, on its test ratings: RMSE and MAE of the stars a rating method
    predicts; HR@10 and NDCG@10 for bpr (whose scores are no stars) and for any run on `ncf`."""
    device = model.global_mean.device
    metrics = {}
    if method != "bpr":
        pred = predict_ratings(model, test.users.to(device), test.items.to(device))
        scores = rmse_mae(pred, test.ratings.to(device))
        metrics.update(test_rmse=scores["rmse"], test_mae=scores["mae"])
    if method == "bpr" or split == "ncf":
        metrics.update(ranking_metrics(model, train, test, seed))
    return metrics


@torch.no_grad()
def ranking_metrics(model: BiasedMF, train: Ratings, test: Ratings, seed: int) -> dict[str, float]:
    """HR@10 and NDCG@10: each held-out item ranked against 99 items its user never rated."""
    device = model.global_mean.device
    everything = Ratings(torch.cat([train.users, test.users]), torch.cat([train.items, test.items]),
                         torch.cat([train.ratings, test.ratings]), torch.cat([train.timestamps, test.timestamps]),
                         train.user_ids, train.item_ids, train.titles)  # fmt: skip
    negatives = sample_negatives(everything, test.users, 99, seed)  # (B, 99)
    candidates = torch.cat([test.items[:, None], negatives], 1).to(
        device
    )  # (B, 100), positive first
    scores = model()[test.users.to(device)].gather(1, candidates)  # (B, 100)
    return {"test_" + k.replace("@", "_at_"): v for k, v in hit_rate_ndcg(scores, 10).items()}


def closest(name: str, options: list[str], what: str) -> ShowcaseError:
    matches = difflib.get_close_matches(name, options, n=3, cutoff=0.4)
    hint = f"; closest: {', '.join(repr(m) for m in matches)}" if matches else ""
    return ShowcaseError(f"unknown {what} {name!r}{hint}")


@torch.no_grad()
def recommend(cfg: RecommendConfig) -> dict:
    """Top movies for --user (excluding what they rated), or movies --similar to a title."""
    if (cfg.user is None) == (cfg.similar is None):
        raise ShowcaseError("pass exactly one of --user ID or --similar TITLE")
    device = pick_device(cfg.device)
    model, train, test = load_run(cfg.out_dir, cfg.data_dir, device)
    titles = train.titles
    if cfg.similar is not None:
        if cfg.similar not in titles:
            raise closest(cfg.similar, titles, "title")
        item = titles.index(cfg.similar)
        vectors = torch.nn.functional.normalize(model.item_factors, dim=1)
        cosine = vectors @ vectors[item]
        cosine[item] = -2.0
        top = cosine.topk(cfg.top)
        rows = [
            {"title": titles[i], "cosine": round(c, 3)}
            for c, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]
        result = {"similar_to": cfg.similar, "movies": rows}
        lines = [f"movies like {cfg.similar}:"] + [
            f"  {r['cosine']:.3f}  {r['title']}" for r in rows
        ]
    else:
        user_ids = [str(u) for u in train.user_ids]
        counts = torch.bincount(train.items, minlength=train.num_items)
        if cfg.user not in user_ids:
            if cfg.user.isdigit() and int(cfg.user) > 0:  # a new user: no ratings to go on
                return _popular(cfg, train, counts)
            raise closest(cfg.user, user_ids, "user")
        u = user_ids.index(cfg.user)
        # everything the user rated, held-out test ratings included
        rated = torch.cat([train.items[train.users == u], test.items[test.users == u]])
        if len(rated) == 0:
            return _popular(cfg, train, counts)
        scores = model()[u]  # (I,) raw scores: ranked unclamped, so no ties at the top
        scores[rated.to(device)] = -float("inf")  # never recommend what the user already rated
        top = scores.topk(cfg.top)
        stars = run_config(cfg.out_dir)["method"] != "bpr"  # bpr scores order items; no stars
        rows = [
            {"title": titles[i], "predicted": round(min(max(s, 1.0), 5.0), 2)} if stars
            else {"title": titles[i], "score": round(s, 3)}
            for s, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]  # fmt: skip
        result = {"user": cfg.user, "rated": len(rated), "movies": rows}
        lines = [f"top {cfg.top} for user {cfg.user} ({len(rated)} ratings):"] + [
            f"  {r.get('predicted', r.get('score')):.2f}  {r['title']}" for r in rows
        ]
    print(json.dumps(result) if cfg.json else "\n".join(lines))
    return result


def _popular(cfg: RecommendConfig, train, counts: torch.Tensor) -> dict:
    """The fallback for a user with no ratings: well-rated movies that many people rated."""
    sums = torch.zeros(train.num_items).index_add_(0, train.items, train.ratings)
    mean = (sums + 3.0 * 10) / (counts + 10)  # shrunk towards 3 stars by 10 pseudo-ratings
    top = mean.topk(cfg.top)
    rows = [
        {"title": train.titles[i], "mean_rating": round(m, 2)}
        for m, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]
    result = {"user": cfg.user, "rated": 0, "fallback": "popularity", "movies": rows}
    lines = [
        f"user {cfg.user} has no ratings: most popular well-rated movies instead (popularity fallback):"
    ]
    lines += [f"  {r['mean_rating']:.2f}  {r['title']}" for r in rows]
    print(json.dumps(result) if cfg.json else "\n".join(lines))
    return result


def plot_items(model: BiasedMF, train, path: str, labels: int = 15) -> None:
    """Item factors projected to 2-D (PCA), the most-rated titles labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = torch.bincount(train.items, minlength=train.num_items)
    keep = (counts >= 20).nonzero().flatten()
    vectors = model.item_factors.detach().cpu()[keep]
    centered = vectors - vectors.mean(0)
    _, _, v = torch.pca_lowrank(centered, q=2, center=False)
    xy = centered @ v[:, :2]
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.4)
    for j in counts[keep].argsort(descending=True)[:labels].tolist():
        ax.annotate(train.titles[keep[j]], xy[j].tolist(), fontsize=7)
    ax.set_title("item embeddings (PCA), movies with >= 20 ratings")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
