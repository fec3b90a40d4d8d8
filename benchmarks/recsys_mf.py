"""recsys: our Bayesian biased MF (Gibbs, implicit feedback) vs scikit-surprise SVD and SVDpp on the
same folds. Protocol A: Surprise's KFold(n_splits=5, random_state=0) on u.data; protocol B:
u1.base -> u1.test. Our defaults were chosen on validation carves of the training ratings
(u1.base and a fold-0 training part, 10% held out); each test fold is used once. Also HR@10 / NDCG@10 under the NCF protocol
for the BPR and the Bayesian rating models, each run twice to show they repeat exactly."""

import statistics
import tempfile
import time

import torch

from core.data import data_root
from core.loop import setup
from core.parse import build
from recsys.mf.data import Ratings, load_ratings
from recsys.mf.model import predict_ratings, rmse_mae
from recsys.mf.train import MFTrainConfig, main, train_model

NEEDS = ("surprise",)  # the peer's library (the bench extra)


def to_ratings(full: Ratings, triples) -> Ratings:
    """(raw user, raw item, rating) triples from surprise as our Ratings over `full`'s ids."""
    uidx = {str(u): k for k, u in enumerate(full.user_ids)}
    iidx = {str(i): k for k, i in enumerate(full.item_ids)}
    users = torch.tensor([uidx[u] for u, _, _ in triples])
    items = torch.tensor([iidx[i] for _, i, _ in triples])
    values = torch.tensor([float(r) for _, _, r in triples])
    zeros = torch.zeros_like(users)
    return Ratings(users, items, values, zeros, full.user_ids, full.item_ids, full.titles)


def ours(args, full: Ratings, trainset, testset) -> tuple[dict, float]:
    """Our default MF trained on a surprise fold: (RMSE and MAE on its test part, fit seconds)."""
    triples = [
        (trainset.to_raw_uid(u), trainset.to_raw_iid(i), r) for u, i, r in trainset.all_ratings()
    ]
    train, test = to_ratings(full, triples), to_ratings(full, testset)
    cfg = build(MFTrainConfig, out_dir=tempfile.mkdtemp(), device=args.device, log_every=10**9)
    device = setup(cfg)
    start = time.perf_counter()
    model, _ = train_model(cfg, train, device)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        pred = predict_ratings(model, test.users.to(device), test.items.to(device))
    return rmse_mae(pred, test.ratings.to(device)), seconds


def surprise_fit(algo, trainset, testset) -> tuple[dict, float]:
    """A surprise algorithm on the same fold: (RMSE and MAE, fit seconds)."""
    from surprise import accuracy

    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    pred = algo.test(testset)
    return {
        "rmse": accuracy.rmse(pred, verbose=False),
        "mae": accuracy.mae(pred, verbose=False),
    }, seconds


def rating_protocols(args, full: Ratings) -> dict:
    """Protocol A (5-fold over u.data) and B (u1.base/u1.test): mean RMSE, MAE and fit seconds
    of ours, SVD and SVD++ on the same folds."""
    from surprise import SVD, Dataset, Reader, SVDpp
    from surprise.model_selection import KFold, PredefinedKFold

    folder = data_root(args.data_dir) / "ml-100k"
    reader = Reader("ml-100k")
    protocols = {
        "A": KFold(n_splits=5, random_state=0).split(
            Dataset.load_from_file(str(folder / "u.data"), reader)
        ),
        "B": PredefinedKFold().split(
            Dataset.load_from_folds([(str(folder / "u1.base"), str(folder / "u1.test"))], reader)
        ),
    }
    agents = {
        "ours": lambda a, b: ours(args, full, a, b),
        "surprise_svd": lambda a, b: surprise_fit(SVD(random_state=0), a, b),
        "surprise_svdpp": lambda a, b: surprise_fit(SVDpp(random_state=0), a, b),
    }
    rows: dict[str, list] = {}
    for name, splits in protocols.items():
        for k, (trainset, testset) in enumerate(splits):
            if args.quick and k:
                break
            for agent, fit in agents.items():
                scores, seconds = fit(trainset, testset)
                rows.setdefault(f"{agent}_{name}", []).append(
                    (scores["rmse"], scores["mae"], seconds)
                )
                said = f"rmse {scores['rmse']:.4f} mae {scores['mae']:.4f} fit {seconds:.1f}s"
                print(f"{name} fold {k} {agent}: {said}", flush=True)
    out = {}
    for key, values in rows.items():
        prefix = key.replace("ours_", "")
        out[f"{prefix}_rmse"] = round(statistics.mean(v[0] for v in values), 4)
        out[f"{prefix}_mae"] = round(statistics.mean(v[1] for v in values), 4)
        out[f"{prefix}_fit_seconds"] = round(statistics.mean(v[2] for v in values), 2)
    out["fit_seconds_per_fold"] = [round(v[2], 2) for v in rows["ours_A"]]
    return out


def ncf_ranking(args) -> dict:
    """Ranking under the NCF protocol: each user's latest rating ranked against 99 unrated items.
    Each method runs twice: the split and the scores must repeat exactly."""
    repeats = []
    for _ in range(2):
        ranks = {}
        for method in ("bpr", "bayes"):
            cfg = build(
                MFTrainConfig,
                method=method,
                split="ncf",
                out_dir=tempfile.mkdtemp(),
                data_dir=args.data_dir,
                device=args.device,
                log_every=10**9,
            )
            metrics = main(cfg)["metrics"]
            ranks[f"ncf_{method}_hr_at_10"] = round(metrics["test_hr_at_10"], 4)
            ranks[f"ncf_{method}_ndcg_at_10"] = round(metrics["test_ndcg_at_10"], 4)
        repeats.append(ranks)
    return {**repeats[0], "ncf_identical_across_runs": repeats[0] == repeats[1]}


def run(args) -> dict:
    full = load_ratings(args.data_dir, "ml-100k")
    # One tiny fit first, so that no fold pays the one-time imports torch.optim makes on first use.
    warm = build(
        MFTrainConfig,
        synthetic=True,
        max_steps=2,
        out_dir=tempfile.mkdtemp(),
        device=args.device,
        log_every=10**9,
    )
    one = to_ratings(full, [(str(full.user_ids[0]), str(full.item_ids[0]), 4.0)] * 64)
    train_model(warm, one, setup(warm))
    return {"device": args.device, **rating_protocols(args, full), **ncf_ranking(args)}
