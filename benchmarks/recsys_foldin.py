"""recsys-foldin: recommendations for new users from their first ratings, without retraining.

ml-100k's users in five seeded folds; for each fold, the default model (Bayesian MF) trains on the
other four, and the fold's users are new. Each held-out user's ratings in time order: the first k (5, 10, 20) are what they have told
us, the later ones what they went on to rate. A hit: at least one later rating of 4 or 5 stars
among the top 10 of the user's ranking (their first k excluded). Ours folds the user in
(`recsys.mf.model.fold_in`: ridge regression on the trained item factors) and ranks by the
predicted rating plus `boost` times the log of each film's training count
(`recsys.mf.rank.new_user_scores`: a film a user will like but never watch is no hit); the
peer is the popularity list (most rated in training, their first k excluded), which a large boost
becomes. The penalty and the boost are chosen on half of each fold's users (validation),
and both rankings are scored on the other half (test). Also the time to fold one user in and rank
every film (median, 20 ratings)."""

import dataclasses
import statistics
import tempfile
import time

import torch

from core.device import pick_device
from core.parse import build
from core.seed import seed_everything
from recsys.mf.bayes import sample_model
from recsys.mf.data import Ratings, load_ratings, synthetic_ratings
from recsys.mf.rank import new_user_scores
from recsys.mf.train import MFTrainConfig

KNOWN = (5, 10, 20)
"""How many first ratings a new user has given."""
PENALTIES = (1.0, 3.0, 10.0, 30.0)
"""Ridge penalties tried on the validation users."""
BOOSTS = (0.0, 0.4, 0.8, 1.6, 3.2)
"""Popularity boosts tried on the validation users."""
TOP = 10
FOLDS = 5


def new_users(data: Ratings, folds: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per fold, its (validation, test) user indices: seeded folds of the users, each halved."""
    order = torch.randperm(data.num_users, generator=torch.Generator().manual_seed(seed))
    return [(order[f::folds][::2], order[f::folds][1::2]) for f in range(folds)]


def histories(data: Ratings, users: torch.Tensor, known: int) -> list[tuple]:
    """Per user with more than `known` ratings and a later liked film: (first items, their
    ratings, later liked items), in time order."""
    rows = []
    for u in users.tolist():
        mine = (data.users == u).nonzero().flatten()
        mine = mine[data.timestamps[mine].argsort(stable=True)]
        first, later = mine[:known], mine[known:]
        liked = data.items[later][data.ratings[later] >= 4]
        if len(liked):
            rows.append((data.items[first], data.ratings[first], set(liked.tolist())))
    return rows


def hit_rate(rank, rows: list[tuple]) -> float:
    """The share of users with a liked later film in the top TOP of `rank(items, ratings)`."""
    hits = 0
    for items, ratings, liked in rows:
        scores = rank(items, ratings).clone()
        scores[items] = -float("inf")  # never recommend what the user already rated
        hits += bool(set(scores.topk(TOP).indices.tolist()) & liked)
    return hits / len(rows)


def ranking(model, counts: torch.Tensor, penalty: float | None, boost: float):
    """`rank(items, ratings)` for a new user: ours, or the popularity list when penalty is None."""
    if penalty is None:
        return lambda items, ratings: counts
    return lambda items, ratings: new_user_scores(model, counts, items, ratings, penalty, boost)


def run(args) -> dict:
    device = pick_device(args.device)
    seed_everything(0)
    data = synthetic_ratings(seed=0) if args.quick else load_ratings(args.data_dir, "ml-100k")
    steps = {"max_steps": 10} if args.quick else {}
    cfg = build(MFTrainConfig, out_dir=tempfile.mkdtemp(), data_dir=args.data_dir, **steps)
    val, test, train_seconds = [], [], []  # per fold: (rank of ours, popular, users' histories)
    for val_users, test_users in new_users(data, FOLDS, seed=0):
        held = torch.isin(data.users, torch.cat([val_users, test_users]))
        cfg = dataclasses.replace(cfg, out_dir=tempfile.mkdtemp())
        model, fit = sample_model(cfg, data.subset((~held).nonzero().flatten()), device)
        model = model.cpu().eval()
        counts = torch.bincount(data.items[~held], minlength=data.num_items).float()
        val.append((model, counts, {k: histories(data, val_users, k) for k in KNOWN}))
        test.append((model, counts, {k: histories(data, test_users, k) for k in KNOWN}))
        train_seconds.append(fit.wall_seconds)

    def hits(folds: list, k: int, penalty: float | None, boost: float = 0.0) -> float:
        """Hit rate over every fold's users with `k` first ratings (penalty None: popularity)."""
        found, users = 0.0, 0
        for model, counts, rows in folds:
            found += hit_rate(ranking(model, counts, penalty, boost), rows[k]) * len(rows[k])
            users += len(rows[k])
        return found / users

    on_val = {
        (penalty, boost): statistics.mean(hits(val, k, penalty, boost) for k in KNOWN)
        for penalty in PENALTIES
        for boost in BOOSTS
    }
    penalty, boost = max(on_val, key=on_val.get)
    model, counts, rows = test[0]
    items, ratings, _ = rows[KNOWN[-1]][0]
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        new_user_scores(model, counts, items, ratings, penalty, boost).topk(TOP)
        times.append(time.perf_counter() - t0)
    row = {
        "device": str(device),
        "folds": FOLDS,
        "train_seconds": round(statistics.mean(train_seconds), 1),
        "penalty": penalty,
        "boost": boost,
        "val_hit_rate": {f"{p}/{b}": round(h, 4) for (p, b), h in on_val.items()},
        "val_popular_hit_rate": round(statistics.mean(hits(val, k, None) for k in KNOWN), 4),
        "fold_in_ms": round(1000 * statistics.median(times), 2),
    }
    for k in KNOWN:
        row[f"test_hit@{TOP}_{k}_ratings"] = round(hits(test, k, penalty, boost), 4)
        row[f"popular_hit@{TOP}_{k}_ratings"] = round(hits(test, k, None), 4)
        row[f"test_users_{k}_ratings"] = sum(len(rows[k]) for _, _, rows in test)
    return row
