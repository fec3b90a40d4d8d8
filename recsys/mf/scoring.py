"""How a recommender is scored and shown: rating errors or ranking hits on the test ratings, and
the map of item embeddings."""

import torch

from core.files import save_figure
from recsys.mf.data import Ratings
from recsys.mf.model import BiasedMF, hit_rate_ndcg, pair_scores, predict_ratings, rmse_mae
from recsys.mf.splits import sample_negatives


@torch.no_grad()
def test_metrics(
    model: BiasedMF, train: Ratings, test: Ratings, method: str, split: str | None, seed: int
) -> dict[str, float]:
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
    everything = Ratings(
        torch.cat([train.users, test.users]),
        torch.cat([train.items, test.items]),
        torch.cat([train.ratings, test.ratings]),
        torch.cat([train.timestamps, test.timestamps]),
        train.user_ids,
        train.item_ids,
        train.titles,
    )
    negatives = sample_negatives(everything, test.users, 99, seed)  # (B, 99)
    candidates = torch.cat([test.items[:, None], negatives], 1).to(
        device
    )  # (B, 100), positive first
    users = test.users.to(device)[:, None].expand_as(candidates)
    scores = pair_scores(model, users, candidates)  # (B, 100)
    return {"test_" + k.replace("@", "_at_"): v for k, v in hit_rate_ndcg(scores, 10).items()}


def plot_items(model: BiasedMF, train, path: str, labels: int = 12) -> None:
    """Item factors projected to 2-D (PCA), the most-rated titles labelled."""
    save_figure(item_map(model, train, labels), path)


# Where a label may sit relative to its point, in points: right, left, above, below, farther out.
LABEL_OFFSETS = (
    (6, 3),
    (-6, 3),
    (6, -10),
    (-6, -10),
    (0, 10),
    (0, -16),
    (12, 14),
    (-12, 14),
    (12, -22),
    (-12, -22),
)


def item_map(model: BiasedMF, train, labels: int = 12):
    """The figure of `plot_items`. Titles are placed in order of their rating count, each at the
    first offset where it overlaps no placed title and stays inside the axes; a title that fits
    nowhere is left out, so none overlap. Labelled films are marked and tied to their title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = torch.bincount(train.items, minlength=train.num_items)
    third = counts.sort(descending=True).values[min(2, len(counts) - 1)]
    least = min(20, int(third))  # at least three films: a small catalog's counts are lower
    keep = (counts >= least).nonzero().flatten()
    vectors = model.item_factors.detach().cpu()[keep]
    centered = vectors - vectors.mean(0)
    _, _, v = torch.pca_lowrank(centered, q=2, center=False)
    xy = (centered @ v[:, :2]).tolist()
    fig = Figure(figsize=(8, 7))
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.add_subplot()
    ax.scatter(*zip(*xy, strict=True), s=4, alpha=0.3, color="tab:blue")
    ax.set_title(f"item embeddings (PCA) of movies with >= {least} ratings; red: the most rated")
    fig.tight_layout()
    frame, placed = ax.get_window_extent(renderer), []
    for j in counts[keep].argsort(descending=True).tolist():
        if len(placed) == labels:
            break
        for dx, dy in LABEL_OFFSETS:
            text = ax.annotate(
                train.titles[keep[j]],
                xy[j],
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=8,
                ha="left" if dx >= 0 else "right",
                arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5},
            )
            box = text.get_window_extent(renderer).expanded(1.05, 1.2)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                ax.scatter(*xy[j], s=14, color="tab:red", zorder=3)
                break
            text.remove()
    return fig
